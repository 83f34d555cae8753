"""The ``proposer_regressor_ner`` component: proposer and regressor (Wen et al. 2023).

spaCy side of the detector: set-prediction training (Algorithm 1, eqs. 23–25)
and prediction (Algorithm 2). The network (eqs. 4–22) is
``heads/proposer_regressor.py``; matching and decoding are
``codecs/proposer_regressor.py``.

Choices and deviations (SEED_ALGORITHMS.md §3):

* Segments: sentences when the doc has sentence starts, else windows of at
  most ``max_length`` tokens overlapping by ``window_overlap`` and stitched.
  One proposal per token of a segment. The authors add up to 64 words of
  neighbouring context; here the shared spaCy encoder sees the whole doc.
* Matching (Algorithm 1): Hungarian assignment on the eq. 24 costs of each
  segment (detached, on the CPU), then, with ``one_to_many`` (the paper), the
  greedy step: every proposal left over takes its arg-min target, padding
  (None) included. ``one_to_many = false`` is the authors' code (leftovers →
  None). A gold entity out of a proposal's pointer reach costs ``-log 1e-8``
  for its location term, as the code floors probabilities.
* More gold entities than proposals (G > n, a very short segment with many
  nested entities): the Hungarian step matches n of them; the others get no
  proposal in that update. They are counted in ``n_unmatched_gold`` and logged
  (the authors' code drops them silently).
* Loss (eq. 25): ``loss_reduction = "sum"`` sums the matched costs over the
  proposals of a segment (the paper) and averages over the segments of the
  batch; ``"mean"`` averages over proposals first (the code).
* Prediction (Algorithm 2): keep a proposal when p_c(t)·p_n(s, e) ≥ p_c(None);
  a span's score is that product; duplicates keep the highest score.
"""
import logging
from typing import Callable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.language import Language
from thinc.api import Model

from ..codecs import proposer_regressor as codec
from ..heads.losses import assigned_costs, matching_costs
from ..models.bridge import get_torch_head
from ..spans import ScoredSpans, Segment
from .base import DEFAULT_SCORE_WEIGHTS, DEFAULT_SCORER, GoldSpans, NestedSpanDetector, default_model, softmax

logger = logging.getLogger("spacy_nested")

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_nested.ProposerRegressor.v1"
hidden_width = 256
encoder_gru = true
kernels = [2, 3]
backward = true
pool = "avg"
query = "bottom"
n_layers = 3
n_heads = 8
spatial = true
gate = "gru"
ffn_width = 1024
category_embedding = true
location_iteration = true
logits_iteration = true
dropout = 0.1
max_width = 16

"""
DEFAULT_MODEL = default_model(DEFAULT_MODEL_CONFIG)
LOSS_REDUCTIONS = ("sum", "mean")


@Language.factory(
    "proposer_regressor_ner",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "nested",
        "max_length": 100,
        "window_overlap": 25,
        "one_to_many": True,
        "loss_reduction": "sum",
        "scorer": DEFAULT_SCORER,
    },
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_proposer_regressor_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    max_length: Optional[int],
    window_overlap: int,
    one_to_many: bool,
    loss_reduction: str,
    scorer: Optional[Callable],
) -> "ProposerRegressorNER":
    """Nested NER by a feature-pyramid proposer and an iterative regressor.

    max_length, window_overlap: window W and overlap for text without sentence starts.
    one_to_many: Algorithm 1's greedy step for proposals left over by the Hungarian step.
    loss_reduction: "sum" over a segment's proposals (eq. 25) or "mean" (the authors' code).
    """
    if loss_reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"[{name}] unknown loss_reduction '{loss_reduction}'; choose one of {LOSS_REDUCTIONS}")
    return ProposerRegressorNER(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        max_length=max_length,
        scorer=scorer,
        window_overlap=window_overlap,
        one_to_many=one_to_many,
        loss_reduction=loss_reduction,
    )


class ProposerRegressorNER(NestedSpanDetector):
    """One proposal per token → regressor layers → joint span pointer and type."""

    n_unmatched_gold = 0  # gold entities left without a proposal, over this process's updates

    @property
    def max_width(self) -> int:
        return int(get_torch_head(self.model).max_width)

    def predict_extras(self, segments: Sequence[Segment]) -> Tuple[numpy.ndarray, ...]:
        return ()

    def train_extras(self, segments: Sequence[Segment], gold: Sequence[GoldSpans]) -> Tuple[Tuple, List[Tuple[int, GoldSpans]]]:
        """Targets: each segment's length (its number of proposals) and gold spans."""
        return (), [(e - s, g.reshape(-1, 3)) for (_, s, e), g in zip(segments, gold)]

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Tuple, targets: Sequence[Tuple[int, GoldSpans]]) -> torch.Tensor:
        pointer_logits, type_logits = outputs
        log_pointer = torch.log_softmax(pointer_logits, dim=-1)
        log_types = torch.log_softmax(type_logits, dim=-1)
        per_segment, offset, unmatched = [], 0, 0
        for n, gold in targets:
            costs = self._segment_costs(log_pointer[offset : offset + n], log_types[offset : offset + n], gold)
            offset += n
            match = codec.assign(*(c.detach().cpu().numpy() for c in costs), one_to_many=self.cfg["one_to_many"])
            unmatched += match.n_unmatched_gold
            terms = assigned_costs(*costs, torch.as_tensor(match.targets, device=log_types.device))
            per_segment.append(terms.sum() if self.cfg["loss_reduction"] == "sum" else terms.mean())
        self._count_unmatched(unmatched)
        return torch.stack(per_segment).mean()

    def _segment_costs(self, log_pointer: torch.Tensor, log_types: torch.Tensor, gold: GoldSpans):
        spans, types = codec.gold_types(gold)
        reach = codec.candidate_index(spans, log_pointer.shape[0], self.max_width)
        device = log_types.device
        return matching_costs(log_pointer, log_types, torch.as_tensor(reach, device=device), torch.as_tensor(types, device=device))

    def _count_unmatched(self, unmatched: int) -> None:
        if unmatched:
            self.n_unmatched_gold += unmatched
            logger.warning(
                "[%s] %d gold entities had no proposal left to match (more entities than tokens in a segment); "
                "%d so far.", self.name, unmatched, self.n_unmatched_gold,
            )

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Tuple, segments: Sequence[Segment]) -> List[ScoredSpans]:
        pointer_logits, type_logits = outputs
        found, offset = [], 0
        for _, s, e in segments:
            n = e - s
            rows = slice(offset, offset + n)
            offset += n
            found.append(codec.decode(softmax(pointer_logits[rows]), softmax(type_logits[rows]), self.max_width))
        return found
