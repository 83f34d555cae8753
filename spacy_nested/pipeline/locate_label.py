"""The ``locate_label_ner`` component: Locate and Label (Shen et al., ACL 2021).

spaCy side of the detector: seeds and training candidates
(``codecs/locate_label.py``), the composite loss of eqs. 12–17 and decoding
with Soft-NMS. The equations of the network are in ``heads/locate_label.py``.

Loss (eq. 17): ``λ1·L_filter + λ2·(L_smoothL1 + L_overlap) + λ3·L_cls``, each
term a weighted mean over its examples (``heads/losses.py``). The regression
terms are averaged over positives; smooth-L1 is weighted by the soft-example
weight (as in the code), the overlap loss is not. Switches for the paper's
ablation: ``sampling.soft_examples`` (off: every example weighs 1),
``decoder.soft_nms`` (off: plain threshold δ), and in the model
``use_filter``/``use_regressor``.
"""
import functools
import operator
from typing import Any, Dict, List, Sequence, Tuple

import numpy
import torch
from spacy.vocab import Vocab
from thinc.api import Model

from ..codecs import locate_label as codec
from ..heads.losses import LocateLabelLoss, binary_focal_loss, categorical_loss, overlap_loss, smooth_l1
from ..spans import ScoredSpans, Segment, enumerate_seeds, softmax, split_rows
from .base import Extras, GoldSpans, NestedSpanDetector, register_detector

DEFAULT_CONFIG = """
[model]
@architectures = "spacy_nested.LocateLabel.v1"
hidden_width = 256
lstm_hidden = 0
dropout = 0.1
use_filter = true
use_regressor = true
# the filter's keep probability at inference (paper: 1/6)
filter_threshold = 0.1667
mixed_precision = false
# the head's learning rate over the optimizer's (the encoder's)
learn_rate_scale = 1.0

[segmenter]
@misc = "spacy_nested.segments.v1"
max_length = null
overlap = 0

[seed_widths]
@misc = "spacy_nested.window_seeds.v1"
min_width = 1
max_width = 10

[sampling]
@misc = "spacy_nested.locate_label_sampling.v1"
alpha1 = 0.7
alpha2 = 1.0
soft_examples = true
eta = 1.0
neg_ratio = 5.0
long_span_anchors = true
seed = 0

[loss]
@misc = "spacy_nested.locate_label_loss.v1"
lambda_filter = 1.0
lambda_regressor = 0.1
lambda_classifier = 1.0
filter_gamma = 2.0
classifier_gamma = 0.0

[decoder]
@misc = "spacy_nested.soft_nms.v1"
soft_nms = true
iou_threshold = 0.7
decay = 0.9
drop_crossing = false
none_veto = true
"""
THRESHOLD = 0.45  # δ of eq. 18: keep spans whose (decayed) class probability exceeds it
# Settings of configs written before they moved into groups, and where each lives now
# (`python -m spacy_nested upgrade-config` moves them; spaCy refuses them as unexpected).
MOVED = {
    "max_length": "segmenter.max_length",
    "window_overlap": "segmenter.overlap",
    **{key: f"sampling.{key}" for key in ("alpha1", "alpha2", "eta", "soft_examples", "neg_ratio", "long_span_anchors", "seed")},
    **{
        key: f"loss.{key}"
        for key in ("lambda_filter", "lambda_regressor", "lambda_classifier", "filter_gamma", "classifier_gamma")
    },
    "soft_nms": "decoder.soft_nms",
    "nms_iou": "decoder.iou_threshold",
    "nms_decay": "decoder.decay",
    "drop_crossing": "decoder.drop_crossing",
}


class LocateLabelNER(NestedSpanDetector):
    """Seed spans → filter → boundary regressor → classifier → Soft-NMS."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        seed_widths: List[int],
        sampling: codec.Sampling,
        loss: LocateLabelLoss,
        decoder: codec.SoftNMSDecoder,
        **common: Any,
    ) -> None:
        super().__init__(vocab, model, name, **common)
        self.seed_widths = [int(w) for w in seed_widths]
        self.sampling = sampling
        self.loss = loss
        self.decoder = decoder
        self._rng = numpy.random.default_rng(sampling.seed)

    def predict_extras(self, segments: Sequence[Segment]) -> Extras:
        seeds = [enumerate_seeds(e - s, self.seed_widths) for _, s, e in segments]
        return (_tag_segments(seeds),)

    def train_extras(self, segments: Sequence[Segment], gold: Sequence[GoldSpans]) -> Tuple[Extras, Dict[str, numpy.ndarray]]:
        per_segment = [
            codec.encode(g, e - s, self.seed_widths, self.sampling, self._rng) for (_, s, e), g in zip(segments, gold)
        ]
        cands = _tag_segments([t.spans for t in per_segment])
        fields = codec.LocateLabelTargets.__dataclass_fields__
        targets = {f: numpy.concatenate([getattr(t, f) for t in per_segment]) for f in fields}
        return (cands,), targets

    def compute_loss(
        self, outputs: Sequence[torch.Tensor], extras: Extras, targets: Dict[str, numpy.ndarray]
    ) -> torch.Tensor:
        filter_logits, offsets, cls_logits, keep, adjusted = outputs
        weights, attrs = self.loss, self.model.attrs
        device = filter_logits.device
        t = {k: torch.as_tensor(v, device=device) for k, v in targets.items()}
        parts: Dict[str, torch.Tensor] = {}
        if attrs["use_filter"]:
            parts["filter"] = weights.lambda_filter * binary_focal_loss(
                filter_logits, t["positive"], t["weights"], weights.filter_gamma
            )
        if attrs["use_regressor"]:
            pos = t["positive"]
            seeds = t["spans"][pos].to(offsets.dtype)
            reg = smooth_l1(offsets[pos], t["offsets"][pos], t["weights"][pos])
            reg = reg + overlap_loss(seeds + offsets[pos], t["pair_spans"][pos])
            parts["regressor"] = weights.lambda_regressor * reg
        keep_np = keep.cpu().numpy()
        labels, cls_weights = codec.classifier_targets(
            adjusted.cpu().numpy(), targets["pair_spans"][keep_np], targets["pair_labels"][keep_np], self.sampling
        )
        parts["classifier"] = weights.lambda_classifier * categorical_loss(
            cls_logits,
            torch.as_tensor(labels, device=device),
            torch.as_tensor(cls_weights, device=device),
            weights.classifier_gamma,
        )
        return functools.reduce(operator.add, parts.values())  # λ1·L_f + λ2·L_r + λ3·L_c (those switched on)

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Extras, segments: Sequence[Segment]) -> List[ScoredSpans]:
        _, _, cls_logits, keep, adjusted = outputs
        (seeds,) = extras
        per_segment = numpy.bincount(seeds[keep, 0], minlength=len(segments))  # kept rows stay in segment order
        rows = zip(split_rows(adjusted, per_segment), split_rows(softmax(cls_logits), per_segment))
        return [self.decoder(spans, probs, self.threshold) for spans, probs in rows]


def _tag_segments(spans: Sequence[numpy.ndarray]) -> numpy.ndarray:
    """Stack per-segment (n, 2) span arrays into (N, 3) rows of (segment, start, end)."""
    rows = [numpy.concatenate([numpy.full((len(x), 1), i), x], axis=1) for i, x in enumerate(spans)]
    return numpy.concatenate(rows).astype("int64") if rows else numpy.zeros((0, 3), dtype="int64")


make_locate_label_ner = register_detector(
    "locate_label_ner",
    LocateLabelNER,
    DEFAULT_CONFIG,
    threshold=THRESHOLD,
    doc="""Nested NER by Locate and Label. Settings follow the paper (GENIA row of Table 6).

    segmenter: how docs are cut (by default whole sentences or docs, no windows).
    seed_widths: seed span lengths, the same at training and inference.
    sampling: training candidates and their weights (α1, α2, soft examples, η, negatives).
    loss: the weights λ1..λ3 of eq. 17 and the focal γ of the filter and classifier.
    decoder: Soft-NMS (k and u of eq. 18) and the authors' crossing filter.
    threshold: δ of eq. 18, the score a span must exceed.
    write_ents: also write the longest non-overlapping spans to doc.ents.
    """,
)
