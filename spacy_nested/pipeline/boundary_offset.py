"""The ``boundary_offset_ner`` component: Boundary Offset Prediction Network (Tang et al. 2023).

spaCy side of the detector: offset-label grids as targets
(``codecs/boundary_offset.py``), the cell cross-entropy of eq. 7 and
offset-vote decoding. The network (eqs. 1–6) is ``heads/boundary_offset.py``.

Choices and deviations (SEED_ALGORITHMS.md §2):

* Segments: sentences when the doc has sentence starts, else windows of at
  most ``max_length`` tokens (W, default 100: the authors' chunk size) that
  overlap by ``window_overlap`` tokens and are stitched (``spans.stitch``);
  memory is bounded by W², never by the document length. The authors pack
  consecutive sentences into ≤ 100-word chunks (and drop the last chunk and any
  over-long one); we keep sentences apart and drop nothing.
* Loss (eq. 7): cross-entropy averaged over every valid cell of every type.
  Code-only extras, each switchable: ``label_smoothing`` (code 0.01, paper 0)
  and ``loss_both_triangles`` (the code also trains the mirrored lower
  triangle; off: the loss reads only cells with start ≤ end, the paper's valid
  spans). No class weights, as in both.
* Decoding: ``decode_rule`` (``codecs.boundary_offset.DECODE_RULES``), default
  ``"votes"``, the authors' rule behind the reported GENIA 82.20. A span is
  output once per type; the same tokens can carry several types.
* The offset range S lives in the model (it sets the number of output labels
  L = 4S + 2); the component reads it from there.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.language import Language
from thinc.api import Model

from ..codecs import boundary_offset as codec
from ..heads.losses import cell_cross_entropy
from ..models.bridge import get_torch_head
from ..spans import ScoredSpans, Segment
from .base import DEFAULT_SCORE_WEIGHTS, DEFAULT_SCORER, GoldSpans, NestedSpanDetector, default_model, softmax

DEFAULT_MODEL_CONFIG = """
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

"""
DEFAULT_MODEL = default_model(DEFAULT_MODEL_CONFIG)


@Language.factory(
    "boundary_offset_ner",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "nested",
        "max_length": 100,
        "window_overlap": 25,
        "label_smoothing": 0.01,
        "loss_both_triangles": True,
        "decode_rule": "votes",
        "scorer": DEFAULT_SCORER,
    },
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_boundary_offset_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    max_length: Optional[int],
    window_overlap: int,
    label_smoothing: float,
    loss_both_triangles: bool,
    decode_rule: str,
    scorer: Optional[Callable],
) -> "BoundaryOffsetNER":
    """Nested NER by boundary offset prediction. Settings follow the authors' GENIA run.

    max_length, window_overlap: window W and overlap for text without sentence starts.
    label_smoothing: cross-entropy smoothing (authors' code 0.01; eq. 7: 0).
    loss_both_triangles: also train the mirrored lower triangle (authors' code).
    decode_rule: "votes" (authors), "centre", "all" or "paper" (see codecs.boundary_offset).
    """
    if decode_rule not in codec.DECODE_RULES:
        raise ValueError(f"[{name}] unknown decode_rule '{decode_rule}'; choose one of {codec.DECODE_RULES}")
    return BoundaryOffsetNER(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        max_length=max_length,
        scorer=scorer,
        window_overlap=window_overlap,
        label_smoothing=label_smoothing,
        loss_both_triangles=loss_both_triangles,
        decode_rule=decode_rule,
    )


class BoundaryOffsetNER(NestedSpanDetector):
    """Type-aware offset labels over an M×N×N grid → offset-vote decoding."""

    @property
    def max_offset(self) -> int:
        return int(get_torch_head(self.model).max_offset)

    def predict_extras(self, segments: Sequence[Segment]) -> Tuple[numpy.ndarray, ...]:
        return ()

    def train_extras(self, segments: Sequence[Segment], gold: Sequence[GoldSpans]) -> Tuple[Tuple, numpy.ndarray]:
        grids = [
            codec.encode(g, e - s, len(self.labels), self.max_offset) for (_, s, e), g in zip(segments, gold)
        ]
        if not self.cfg["loss_both_triangles"]:
            grids = [numpy.where(numpy.tril(numpy.ones(g.shape[1:], dtype=bool), -1), -1, g) for g in grids]
        return (), numpy.concatenate([g.reshape(-1) for g in grids])

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Tuple, targets: numpy.ndarray) -> torch.Tensor:
        (logits,) = outputs
        t = torch.as_tensor(targets, device=logits.device)
        return cell_cross_entropy(logits, t, self.cfg["label_smoothing"])

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Tuple, segments: Sequence[Segment]) -> List[ScoredSpans]:
        (logits,) = outputs
        M, S = len(self.labels), self.max_offset
        found, offset = [], 0
        for _, s, e in segments:
            n = e - s
            block = logits[offset : offset + M * n * n].reshape(M, n, n, -1)
            offset += M * n * n
            found.append(codec.decode(softmax(block), S, self.cfg["decode_rule"]))
        return found

