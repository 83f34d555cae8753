"""The ``boundary_offset_ner`` component: Boundary Offset Prediction Network (Tang et al. 2023).

spaCy side of the detector: offset-label grids as targets
(``codecs/boundary_offset.py``), the cell cross-entropy of eq. 7 and
offset-vote decoding. The network (eqs. 1–6) is ``heads/boundary_offset.py``.

Choices and deviations (docs/boundary_offset.md#deviations):

* Segments: sentences when the doc has sentence starts, else windows of at
  most ``segmenter.max_length`` tokens (W, default 100: the authors' chunk
  size) that overlap by ``segmenter.overlap`` tokens and are stitched (``spans.stitch``);
  memory is bounded by W², never by the document length. The authors pack
  consecutive sentences into ≤ 100-word chunks (and drop the last chunk and any
  over-long one); we keep sentences apart and drop nothing.
* Loss (eq. 7): cross-entropy averaged over every valid cell of every type.
  Code-only extras, each switchable in ``loss``: ``label_smoothing`` (code
  0.01, paper 0) and ``both_triangles`` (the code also trains the mirrored lower
  triangle; off: the loss reads only cells with start ≤ end, the paper's valid
  spans). No class weights, as in both.
* Decoding: ``decoder.rule`` (``codecs.boundary_offset.DECODE_RULES``), default
  ``"votes"``, the authors' rule behind the reported GENIA 82.20. A span is
  output once per type; the same tokens can carry several types.
* The offset range S lives in the model (it sets the number of output labels
  L = 4S + 2); the component reads it from ``model.attrs["max_offset"]``.
"""
from typing import Any, List, Sequence, Tuple

import numpy
import torch
from spacy.vocab import Vocab
from thinc.api import Model

from ..codecs import boundary_offset as codec
from ..heads.losses import BoundaryOffsetLoss, cell_cross_entropy
from ..spans import ScoredSpans, Segment
from .base import WINDOWED_DEFAULT_CONFIG, Extras, GoldSpans, NestedSpanDetector, register_detector

DEFAULT_CONFIG = """
[model]
@architectures = "spacy_nested.BoundaryOffset.v1"
max_offset = 2
lstm_hidden = 128
lstm_dropout = 0.5
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
# Settings of configs written before they moved into groups, and where each lives now
# (`python -m spacy_nested upgrade-config` moves them; spaCy refuses them as unexpected).
MOVED = {
    "max_length": "segmenter.max_length",
    "window_overlap": "segmenter.overlap",
    "label_smoothing": "loss.label_smoothing",
    "loss_both_triangles": "loss.both_triangles",
    "decode_rule": "decoder.rule",
}


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

    def train_extras(self, segments: Sequence[Segment], gold: Sequence[GoldSpans]) -> Tuple[Extras, numpy.ndarray]:
        grids = [
            codec.encode(g, e - s, len(self.labels), self.max_offset) for (_, s, e), g in zip(segments, gold)
        ]
        if not self.loss.both_triangles:
            grids = [numpy.where(numpy.tril(numpy.ones(g.shape[1:], dtype=bool), -1), -1, g) for g in grids]
        return (), numpy.concatenate([g.reshape(-1) for g in grids])

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Extras, targets: numpy.ndarray) -> torch.Tensor:
        (logits,) = outputs
        t = torch.as_tensor(targets, device=logits.device)
        return cell_cross_entropy(logits, t, self.loss.label_smoothing)

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Extras, segments: Sequence[Segment]) -> List[ScoredSpans]:
        (logits,) = outputs
        lengths = [e - s for _, s, e in segments]
        return self.decoder.segments(logits, lengths, len(self.labels), self.max_offset, self.threshold)


make_boundary_offset_ner = register_detector(
    "boundary_offset_ner",
    BoundaryOffsetNER,
    DEFAULT_CONFIG + WINDOWED_DEFAULT_CONFIG,
    threshold=THRESHOLD,
    doc="""Nested NER by boundary offset prediction. Settings follow the authors' GENIA run.

    segmenter: windows W and their overlap for text without sentence starts.
    loss: cross-entropy smoothing (authors' code 0.01; eq. 7: 0) and whether the
        mirrored lower triangle is trained too (authors' code).
    decoder: the rule, "votes" (authors), "centre", "all" or "paper" (see codecs.boundary_offset).
    threshold: the minimum mean probability of the cells that voted for a span.
    write_ents: also write the longest non-overlapping spans to doc.ents.
    """,
)
