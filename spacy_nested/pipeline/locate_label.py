"""The ``locate_label_ner`` component: Locate and Label (Shen et al., ACL 2021).

spaCy side of the detector: seeds and training candidates
(``codecs/locate_label.py``), the composite loss of eqs. 12–17 and decoding
with Soft-NMS. The equations of the network are in ``heads/locate_label.py``.

Loss (eq. 17): ``λ1·L_filter + λ2·(L_smoothL1 + L_overlap) + λ3·L_cls``, each
term a weighted mean over its examples (``heads/losses.py``). The regression
terms are averaged over positives; smooth-L1 is weighted by the soft-example
weight (as in the code), the overlap loss is not. Switches for the paper's
ablation: ``soft_examples`` (η → 0), ``soft_nms`` (plain threshold δ), and in
the model ``use_filter``/``use_regressor``.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.language import Language
from thinc.api import Model

from ..codecs import locate_label as codec
from ..heads.losses import binary_focal_loss, categorical_loss, overlap_loss, smooth_l1
from ..models.bridge import get_torch_head
from ..spans import ScoredSpans, Segment, enumerate_seeds
from .base import DEFAULT_SCORE_WEIGHTS, DEFAULT_SCORER, GoldSpans, NestedSpanDetector, default_model, softmax

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_nested.LocateLabel.v1"
hidden_width = 256
lstm_hidden = 0
dropout = 0.1
use_filter = true
use_regressor = true
filter_threshold = 0.1667

"""
DEFAULT_MODEL = default_model(DEFAULT_MODEL_CONFIG)


@Language.factory(
    "locate_label_ner",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "nested",
        "seed_widths": {"@misc": "spacy_nested.window_seeds.v1", "min_width": 1, "max_width": 10},
        "max_length": None,
        "alpha1": 0.7,
        "alpha2": 1.0,
        "eta": 1.0,
        "soft_examples": True,
        "neg_ratio": 5.0,
        "long_span_anchors": True,
        "filter_gamma": 2.0,
        "classifier_gamma": 0.0,
        "lambda_filter": 1.0,
        "lambda_regressor": 0.1,
        "lambda_classifier": 1.0,
        "soft_nms": True,
        "nms_iou": 0.7,
        "nms_decay": 0.9,
        "threshold": 0.45,
        "drop_crossing": False,
        "seed": 0,
        "scorer": DEFAULT_SCORER,
    },
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_locate_label_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    seed_widths: List[int],
    max_length: Optional[int],
    alpha1: float,
    alpha2: float,
    eta: float,
    soft_examples: bool,
    neg_ratio: float,
    long_span_anchors: bool,
    filter_gamma: float,
    classifier_gamma: float,
    lambda_filter: float,
    lambda_regressor: float,
    lambda_classifier: float,
    soft_nms: bool,
    nms_iou: float,
    nms_decay: float,
    threshold: float,
    drop_crossing: bool,
    seed: int,
    scorer: Optional[Callable],
) -> "LocateLabelNER":
    """Nested NER by Locate and Label. Settings follow the paper (GENIA row of Table 6).

    seed_widths: seed span lengths, the same at training and inference.
    max_length: docs without sentence starts are cut into windows of this many tokens.
    alpha1, alpha2, eta: IoU thresholds of the two stages and the soft-example exponent (eq. 11).
    soft_examples: off sets η = 0 (hard examples).
    neg_ratio: negatives kept per positive seed.
    long_span_anchors: seeds sharing a boundary with an over-long entity regress to it.
    filter_gamma, classifier_gamma: focal γ (classifier 0 = the paper's cross-entropy).
    lambda_*: loss weights λ1..λ3 (eq. 17).
    soft_nms, nms_iou, nms_decay, threshold: Soft-NMS switch, k, u and δ (eq. 18).
    drop_crossing: the authors' code's removal of crossing predictions.
    """
    return LocateLabelNER(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        max_length=max_length,
        scorer=scorer,
        seed_widths=[int(w) for w in seed_widths],
        alpha1=alpha1,
        alpha2=alpha2,
        eta=eta if soft_examples else 0.0,
        neg_ratio=neg_ratio,
        long_span_anchors=long_span_anchors,
        filter_gamma=filter_gamma,
        classifier_gamma=classifier_gamma,
        lambda_filter=lambda_filter,
        lambda_regressor=lambda_regressor,
        lambda_classifier=lambda_classifier,
        soft_nms=soft_nms,
        nms_iou=nms_iou,
        nms_decay=nms_decay,
        threshold=threshold,
        drop_crossing=drop_crossing,
        seed=seed,
    )


class LocateLabelNER(NestedSpanDetector):
    """Seed spans → filter → boundary regressor → classifier → Soft-NMS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng = numpy.random.default_rng(self.cfg["seed"])

    def predict_extras(self, segments: Sequence[Segment]) -> Tuple[numpy.ndarray, ...]:
        seeds = [enumerate_seeds(e - s, self.cfg["seed_widths"]) for _, s, e in segments]
        return (_tag_segments(seeds),)

    def train_extras(self, segments: Sequence[Segment], gold: Sequence[GoldSpans]):
        cfg = self.cfg
        per_segment = [
            codec.encode(
                g,
                e - s,
                cfg["seed_widths"],
                alpha1=cfg["alpha1"],
                eta=cfg["eta"],
                neg_ratio=cfg["neg_ratio"],
                long_span_anchors=cfg["long_span_anchors"],
                rng=self._rng,
            )
            for (_, s, e), g in zip(segments, gold)
        ]
        cands = _tag_segments([t.spans for t in per_segment])
        targets = {f: numpy.concatenate([getattr(t, f) for t in per_segment]) for f in codec.LocateLabelTargets.__dataclass_fields__}
        return (cands,), targets

    def compute_loss(self, outputs, extras, targets: Dict[str, numpy.ndarray]):
        filter_logits, offsets, cls_logits, keep, adjusted = outputs
        cfg = self.cfg
        head = get_torch_head(self.model)
        device = filter_logits.device
        t = {k: torch.as_tensor(v, device=device) for k, v in targets.items()}
        parts: Dict[str, torch.Tensor] = {}
        if head.use_filter:
            parts["filter"] = cfg["lambda_filter"] * binary_focal_loss(
                filter_logits, t["positive"], t["weights"], cfg["filter_gamma"]
            )
        if head.use_regressor:
            pos = t["positive"]
            seeds = t["spans"][pos].to(offsets.dtype)
            reg = smooth_l1(offsets[pos], t["offsets"][pos], t["weights"][pos])
            reg = reg + overlap_loss(seeds + offsets[pos], t["pair_spans"][pos])
            parts["regressor"] = cfg["lambda_regressor"] * reg
        keep_np = keep.cpu().numpy()
        labels, weights = codec.classifier_targets(
            adjusted.cpu().numpy(),
            targets["pair_spans"][keep_np],
            targets["pair_labels"][keep_np],
            alpha2=cfg["alpha2"],
            eta=cfg["eta"],
        )
        parts["classifier"] = cfg["lambda_classifier"] * categorical_loss(
            cls_logits, torch.as_tensor(labels, device=device), torch.as_tensor(weights, device=device), cfg["classifier_gamma"]
        )
        return sum(parts.values())

    def decode(self, outputs, extras, segments: Sequence[Segment]) -> List[ScoredSpans]:
        _, _, cls_logits, keep, adjusted = outputs
        (seeds,) = extras
        probs = softmax(cls_logits)
        seg_of = seeds[keep, 0]
        cfg = self.cfg
        return [
            codec.decode(
                adjusted[seg_of == i],
                probs[seg_of == i],
                use_soft_nms=cfg["soft_nms"],
                nms_iou=cfg["nms_iou"],
                nms_decay=cfg["nms_decay"],
                threshold=cfg["threshold"],
                drop_crossing=cfg["drop_crossing"],
            )
            for i in range(len(segments))
        ]


def _tag_segments(spans: Sequence[numpy.ndarray]) -> numpy.ndarray:
    """Stack per-segment (n, 2) span arrays into (N, 3) rows of (segment, start, end)."""
    rows = [numpy.concatenate([numpy.full((len(x), 1), i), x], axis=1) for i, x in enumerate(spans)]
    return numpy.concatenate(rows).astype("int64") if rows else numpy.zeros((0, 3), dtype="int64")

