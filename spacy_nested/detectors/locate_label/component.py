"""The ``locate_label_ner`` component: Locate and Label (Shen et al., ACL 2021).

spaCy side of the detector: seeds and training candidates
(``detectors/locate_label/codec.py``), the composite loss of eqs. 12–17 and decoding
with Soft-NMS. The equations of the network are in ``detectors/locate_label/head.py``.

Loss (eq. 17): ``λ1·L_filter + λ2·(L_smoothL1 + L_overlap) + λ3·L_cls``, each
term a weighted mean over its examples (``loss.py``). The regression
terms are averaged over positives; smooth-L1 is weighted by the soft-example
weight (as in the code), the overlap loss is not. Switches for the paper's
ablation: ``sampling.soft_examples`` (off: every example weighs 1),
``decoder.soft_nms`` (off: plain threshold δ), and in the model
``use_filter``/``use_regressor``.

Segments: sentences when the doc has sentence starts, else windows of at most
``segmenter.max_length`` tokens (default 512) that overlap by
``segmenter.overlap`` (default 64) and are stitched (``spans.stitch``), so
that an unbroken line of any length costs a bounded working set (with the
blocked encoder of ``ml/detector.py``). The head looks at nothing beyond a
segment (seeds, max-pools, the optional BiLSTM and the sentinels at its edges
are all per segment), so a segment shorter than the window, every GENIA
sentence (at most 204 tokens) among them, is predicted as without windows;
only spans within a few tokens of a window edge of a longer unit can differ.
The window is long (seeds grow linearly with it, not quadratically), and the
overlap is three times the longest GENIA train entity (20 tokens), so a span
near an edge is seen whole by the neighbouring window, which owns it.
"""
import functools
import operator
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.language import Language
from spacy.vocab import Vocab
from thinc.api import Model

from spacy_nested.detectors.base import DEFAULT_SCORE_WEIGHTS, Extras, GoldScores, GoldSpans, NestedSpanDetector, default_config
from spacy_nested.detectors.locate_label import codec
from spacy_nested.detectors.locate_label.loss import LocateLabelLoss, binary_focal_loss, categorical_loss, overlap_loss, smooth_l1
from spacy_nested.detectors.locate_label.seeds import enumerate_seeds
from spacy_nested.spans import ScoredSpans, Segment, Segmenter, softmax, split_rows

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

# Text without sentence starts is cut into windows of 512 tokens that overlap by 64 (GENIA's
# longest sentence has 204 tokens: no sentence is cut); null: one segment per unit, any length.
[segmenter]
@misc = "spacy_nested.segments.v1"
max_length = 512
overlap = 64

[seed_widths]
@misc = "spacy_nested.window_seeds.v1"
min_width = 1
max_width = 10

[sampling]
@misc = "spacy_nested.locate_label_sampling.v1"
alpha1 = 0.7
alpha2 = 1.0
# hard examples (every weight 1; the paper: soft examples) with all negatives: +0.7 dev F1 on the
# CPU tok2vec at 2 epochs (74.0 against 73.3, each at its best threshold)
soft_examples = false
eta = 1.0
# every negative seed (the paper samples 1:5): +5 dev F1 on the CPU tok2vec at 2 epochs (66.9 -> 72.1)
neg_ratio = 0.0
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
# The paper's settings where the defaults differ (spacy_nested.paper_settings("locate_label_ner")):
# its sampling and its head sizes, tuned on BERT-large (configs/genia_locate_label.cfg).
PAPER_SETTINGS: Dict[str, Any] = {
    "sampling": {"soft_examples": True, "neg_ratio": 5.0},
    "model": {"hidden_width": 1024, "lstm_hidden": 512, "dropout": 0.5},
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

    def train_extras(
        self, segments: Sequence[Segment], gold: Sequence[GoldSpans], scores: Optional[Sequence[GoldScores]] = None
    ) -> Tuple[Extras, Dict[str, numpy.ndarray]]:
        per_scores: Sequence[Optional[GoldScores]] = scores if scores is not None else [None] * len(gold)
        per_segment = [
            codec.encode(g, e - s, self.seed_widths, self.sampling, self._rng, scores=sc)
            for (_, s, e), g, sc in zip(segments, gold, per_scores)
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
            # soft targets: a seed paired with a span scoring s is positive with probability s
            positive = t["positive"].to(filter_logits.dtype) * t["pair_scores"].to(filter_logits.dtype)
            parts["filter"] = weights.lambda_filter * binary_focal_loss(
                filter_logits, positive, t["weights"], weights.filter_gamma
            )
        if attrs["use_regressor"]:
            pos = t["positive"]
            seeds = t["spans"][pos].to(offsets.dtype)
            reg_weights = t["weights"][pos] * t["pair_scores"][pos]
            reg = smooth_l1(offsets[pos], t["offsets"][pos], reg_weights)
            reg = reg + overlap_loss(seeds + offsets[pos], t["pair_spans"][pos], t["pair_scores"][pos])
            parts["regressor"] = weights.lambda_regressor * reg
        keep_np = keep.cpu().numpy()
        labels, cls_weights = codec.classifier_targets(
            adjusted.cpu().numpy(), targets["pair_spans"][keep_np], targets["pair_labels"][keep_np], self.sampling
        )
        confidence = numpy.where(labels > 0, targets["pair_scores"][keep_np], 1.0)  # None targets stay hard
        parts["classifier"] = weights.lambda_classifier * categorical_loss(
            cls_logits,
            torch.as_tensor(labels, device=device),
            torch.as_tensor(cls_weights, device=device),
            weights.classifier_gamma,
            confidence=torch.as_tensor(confidence, device=device),
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


@Language.factory(
    "locate_label_ner",
    assigns=["doc.spans"],
    default_config=default_config(DEFAULT_CONFIG, threshold=THRESHOLD),
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_locate_label_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    threshold: float,
    write_ents: bool,
    segmenter: Segmenter,
    scorer: Optional[Callable],
    seed_widths: List[int],
    sampling: codec.Sampling,
    loss: LocateLabelLoss,
    decoder: codec.SoftNMSDecoder,
) -> LocateLabelNER:
    """Nested NER by Locate and Label: the settings measured best on spaCy's CPU tok2vec, the paper's
    one line away (``config=spacy_nested.paper_settings("locate_label_ner")``).

    segmenter: how docs are cut: sentences, else windows of 512 tokens overlapping by 64.
    seed_widths: seed span lengths, the same at training and inference.
    sampling: training candidates and their weights (α1, α2, soft examples, η, negatives).
    loss: the weights λ1..λ3 of eq. 17 and the focal γ of the filter and classifier.
    decoder: Soft-NMS (k and u of eq. 18) and the authors' crossing filter.
    threshold: δ of eq. 18, the score a span must exceed.
    write_ents: also write the longest non-overlapping spans to doc.ents.
    """
    return LocateLabelNER(
        nlp.vocab, model, name, spans_key=spans_key, threshold=threshold, write_ents=write_ents,
        segmenter=segmenter, scorer=scorer,
        seed_widths=seed_widths, sampling=sampling, loss=loss, decoder=decoder,
    )  # fmt: skip
