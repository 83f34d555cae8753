"""The ``boundary_offset_ner`` component: Boundary Offset Prediction Network (Tang et al. 2023).

spaCy side of the detector: offset-label grids as targets
(``detectors/boundary_offset/codec.py``), the cell cross-entropy of eq. 7 and
offset-vote decoding. The network (eqs. 1–6) is ``detectors/boundary_offset/head.py``.

Choices and deviations (docs/boundary_offset.md#deviations):

* Segments: sentences when the doc has sentence starts, else windows of at
  most ``segmenter.max_length`` tokens (W, default 100: the authors' chunk
  size) that overlap by ``segmenter.overlap`` tokens and are stitched (``spans.stitch``);
  memory is bounded by W², never by the document length (the default inline
  encoder too runs on bounded pieces at prediction: ``ml/detector.py``).
  The authors pack consecutive sentences into ≤ 100-word chunks (and drop the last chunk and any
  over-long one); we keep sentences apart and drop nothing.
* Loss (eq. 7): cross-entropy averaged over every valid cell of every type.
  Code-only extras, each switchable in ``loss``: ``label_smoothing`` (code
  0.01, paper 0) and ``both_triangles`` (the code also trains the mirrored lower
  triangle; off: the loss reads only cells with start ≤ end, the paper's valid
  spans). No class weights, as in both.
* Decoding: ``decoder.rule`` (``detectors.boundary_offset.codec.DECODE_RULES``), default
  ``"votes"``, the authors' rule behind the reported GENIA 82.20. A span is
  output once per type; the same tokens can carry several types.
* The offset range S lives in the model (it sets the number of output labels
  L = 4S + 2); the component reads it from ``model.attrs["max_offset"]``.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy
import torch
from spacy.language import Language
from spacy.vocab import Vocab
from thinc.api import Model

from spacy_nested.detectors.base import (
    DEFAULT_SCORE_WEIGHTS,
    WINDOWED_DEFAULT_CONFIG,
    Extras,
    GoldScores,
    GoldSpans,
    NestedSpanDetector,
    default_config,
)
from spacy_nested.detectors.boundary_offset import codec
from spacy_nested.detectors.boundary_offset.loss import BoundaryOffsetLoss, cell_cross_entropy
from spacy_nested.spans import ScoredSpans, Segment, Segmenter

DEFAULT_CONFIG = """
[model]
@architectures = "spacy_nested.BoundaryOffset.v1"
max_offset = 2
lstm_hidden = 128
# on the tok2vec output (the authors' 0.5, on BERT, under-trains a tok2vec learnt from scratch):
# dev F1 at 1,000 steps on the CPU tok2vec 60.05 (0.5) -> 66.30 (0.2)
lstm_dropout = 0.2
type_input = true
biaffine_hidden = 150
biaffine_dropout = 0.33
region_width = 20
distance_width = 20
cln_fusion = true
conv_dilations = [1, 2]
conv_stacked = true
conv_residual = true
conv_dropout = 0.2
# padded cells of one length group (speed and memory only; results do not depend on it)
max_cells = 20000
mixed_precision = false
# the head's learning rate over the optimizer's (the encoder's)
learn_rate_scale = 1.0

[loss]
@misc = "spacy_nested.boundary_offset_loss.v1"
label_smoothing = 0.01
both_triangles = true

[decoder]
@misc = "spacy_nested.offset_votes.v1"
rule = "votes"
"""
THRESHOLD = 0.0  # minimum mean probability of a span's votes (0: every span the rule emits)
# The paper's settings where the defaults differ (spacy_nested.paper_settings("boundary_offset_ner")):
# the dropout before the BiLSTM. (Its head learning rate, 200 times BERT's, belongs with a
# transformer's optimizer: configs/genia_boundary_offset.cfg.)
PAPER_SETTINGS: Dict[str, Any] = {"model": {"lstm_dropout": 0.5}}


class GridTargets(NamedTuple):
    """The cells' labels (C,), -1 where the loss does not look, and with soft targets their scores (C,)."""

    labels: numpy.ndarray
    scores: Optional[numpy.ndarray]


class BoundaryOffsetNER(NestedSpanDetector):
    """Type-aware offset labels over an M×N×N grid → offset-vote decoding."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        loss: BoundaryOffsetLoss,
        decoder: codec.VoteDecoder,
        **common: Any,
    ) -> None:
        super().__init__(vocab, model, name, **common)
        self.loss = loss
        self.decoder = decoder

    @property
    def max_offset(self) -> int:
        return int(self.model.attrs["max_offset"])

    def predict_extras(self, segments: Sequence[Segment]) -> Extras:
        return ()

    def train_extras(
        self, segments: Sequence[Segment], gold: Sequence[GoldSpans], scores: Optional[Sequence[GoldScores]] = None
    ) -> Tuple[Extras, GridTargets]:
        """Grid targets: each cell's label and, with ``loss.soft_targets``, the score of the span
        that labelled it (else every span counts whole)."""
        soft = self.loss.soft_targets and scores is not None
        per_scores: Sequence[Optional[GoldScores]] = scores if soft and scores is not None else [None] * len(gold)
        encoded = [
            codec.encode_scored(g, sc, e - s, len(self.labels), self.max_offset)
            for (_, s, e), g, sc in zip(segments, gold, per_scores)
        ]
        grids = [grid for grid, _ in encoded]
        if not self.loss.both_triangles:
            grids = [numpy.where(numpy.tril(numpy.ones(g.shape[1:], dtype=bool), -1), -1, g) for g in grids]
        labels = numpy.concatenate([g.reshape(-1) for g in grids])
        cell_scores = numpy.concatenate([c.reshape(-1) for _, c in encoded]) if soft else None
        return (), GridTargets(labels, cell_scores)

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Extras, targets: GridTargets) -> torch.Tensor:
        (logits,) = outputs
        t = torch.as_tensor(targets.labels, device=logits.device)
        s = None if targets.scores is None else torch.as_tensor(targets.scores, device=logits.device)
        return cell_cross_entropy(logits, t, self.loss.label_smoothing, s)

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Extras, segments: Sequence[Segment]) -> List[ScoredSpans]:
        (logits,) = outputs
        lengths = [e - s for _, s, e in segments]
        return self.decoder.segments(logits, lengths, len(self.labels), self.max_offset, self.threshold)


@Language.factory(
    "boundary_offset_ner",
    assigns=["doc.spans"],
    default_config=default_config(DEFAULT_CONFIG + WINDOWED_DEFAULT_CONFIG, threshold=THRESHOLD),
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_boundary_offset_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    threshold: float,
    write_ents: bool,
    segmenter: Segmenter,
    scorer: Optional[Callable],
    loss: BoundaryOffsetLoss,
    decoder: codec.VoteDecoder,
) -> BoundaryOffsetNER:
    """Nested NER by boundary offset prediction: the settings measured best on spaCy's CPU tok2vec,
    the paper's one line away (``config=spacy_nested.paper_settings("boundary_offset_ner")``).

    segmenter: windows W and their overlap for text without sentence starts.
    loss: cross-entropy smoothing (authors' code 0.01; eq. 7: 0), whether the
        mirrored lower triangle is trained too (authors' code), and soft targets
        from scored target spans (a distilled corpus).
    decoder: the rule, "votes" (authors), "centre", "all" or "paper" (see detectors.boundary_offset.codec).
    threshold: the minimum mean probability of the cells that voted for a span.
    write_ents: also write the longest non-overlapping spans to doc.ents.
    """
    return BoundaryOffsetNER(
        nlp.vocab, model, name, spans_key=spans_key, threshold=threshold, write_ents=write_ents,
        segmenter=segmenter, scorer=scorer,
        loss=loss, decoder=decoder,
    )  # fmt: skip
