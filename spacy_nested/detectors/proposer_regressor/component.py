"""The ``proposer_regressor_ner`` component: proposer and regressor (Wen et al. 2023).

spaCy side of the detector: set-prediction training (Algorithm 1, eqs. 23–25)
and prediction (Algorithm 2). The network (eqs. 4–22) is
``detectors/proposer_regressor/head.py``; matching and decoding are
``detectors/proposer_regressor/codec.py``.

Choices and deviations (docs/proposer_regressor.md#deviations):

* Segments: sentences when the doc has sentence starts, else windows of at
  most ``segmenter.max_length`` tokens overlapping by ``segmenter.overlap``
  and stitched.
  One proposal per token of a segment. The authors add up to 64 words of
  neighbouring context; here the spaCy encoder's vectors are those of the whole
  doc (an inline tok2vec is run on bounded pieces at prediction, with its
  receptive field as context, which gives the same vectors: ``ml/detector.py``).
* Matching (Algorithm 1): Hungarian assignment on the eq. 24 costs of each
  segment (detached, on the CPU), then, with ``one_to_many`` (the paper), the
  greedy step: every proposal left over takes its arg-min target, padding
  (None) included. ``loss.one_to_many = false`` is the authors' code
  (leftovers → None). A gold entity out of a proposal's pointer reach costs ``-log 1e-8``
  for its location term, as the code floors probabilities.
* More gold entities than proposals (G > n, a very short segment with many
  nested entities): the Hungarian step matches n of them; the others get no
  proposal in that update. They are counted in ``n_unmatched_gold`` and logged
  (the authors' code drops them silently).
* Loss (eq. 25): ``loss.reduction = "sum"`` sums the matched costs over the
  proposals of a segment (the paper) and averages over the segments of the
  batch; ``"mean"`` averages over proposals first (the code).
* Prediction (Algorithm 2): keep a proposal when p_c(t)·p_n(s, e) ≥ p_c(None);
  a span's score is that product; duplicates keep the highest score.
  ``decoder.none_veto = false`` (not the paper) drops the comparison with
  p_c(None) and leaves the decision to the threshold.
"""
import logging
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
from spacy_nested.detectors.proposer_regressor import codec
from spacy_nested.detectors.proposer_regressor.loss import ProposerRegressorLoss, assigned_costs, matching_costs
from spacy_nested.spans import ScoredSpans, Segment, Segmenter, softmax, split_rows

logger = logging.getLogger("spacy_nested")

DEFAULT_CONFIG = """
[model]
@architectures = "spacy_nested.ProposerRegressor.v1"
# narrower than the paper's 768 (BERT's width) to fit a CPU: the head's BiGRUs' backward dominates
# a training step, and 128 trains about twice as fast as 256
hidden_width = 128
encoder_gru = true
kernels = [2, 3]
backward = true
pool = "avg"
query = "bottom"
n_layers = 3
n_heads = 8
spatial = true
gate = "gru"
# narrower with hidden_width (the paper's 2048 with 768)
ffn_width = 512
category_embedding = true
location_iteration = true
logits_iteration = true
dropout = 0.1
max_width = 16
mixed_precision = false
# the head's learning rate over the optimizer's (the encoder's)
learn_rate_scale = 1.0

[loss]
@misc = "spacy_nested.proposer_regressor_loss.v1"
one_to_many = true
reduction = "sum"

[decoder]
@misc = "spacy_nested.proposal_decoder.v1"
none_veto = true
"""
THRESHOLD = 0.0  # minimum p_c·p_n of a kept proposal (0: Algorithm 2's rule alone)
# The paper's settings where the defaults differ (spacy_nested.paper_settings("proposer_regressor_ner")):
# its head widths, BERT's (configs/genia_proposer_regressor.cfg).
PAPER_SETTINGS: Dict[str, Any] = {"model": {"hidden_width": 768, "ffn_width": 2048}}


class SegmentTargets(NamedTuple):
    """One segment's targets: its number of proposals, its gold rows and, with soft targets, their scores."""

    n_proposals: int
    gold: GoldSpans
    scores: Optional[GoldScores]


class ProposerRegressorNER(NestedSpanDetector):
    """One proposal per token → regressor layers → joint span pointer and type."""

    n_unmatched_gold = 0  # gold entities left without a proposal, over this process's updates

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        loss: ProposerRegressorLoss,
        decoder: codec.ProposalDecoder,
        **common: Any,
    ) -> None:
        super().__init__(vocab, model, name, **common)
        self.loss = loss
        self.decoder = decoder

    @property
    def max_width(self) -> int:
        return int(self.model.attrs["max_width"])

    def predict_extras(self, segments: Sequence[Segment]) -> Extras:
        return ()

    def train_extras(
        self, segments: Sequence[Segment], gold: Sequence[GoldSpans], scores: Optional[Sequence[GoldScores]] = None
    ) -> Tuple[Extras, List[SegmentTargets]]:
        """Targets: each segment's length (its number of proposals), gold spans and, with
        ``loss.soft_targets``, the gold spans' scores (else every span counts whole)."""
        soft = self.loss.soft_targets and scores is not None
        per_scores: Sequence[Optional[GoldScores]] = scores if soft and scores is not None else [None] * len(gold)
        return (), [
            SegmentTargets(e - s, g.reshape(-1, 3), sc) for (_, s, e), g, sc in zip(segments, gold, per_scores)
        ]

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Extras, targets: Sequence[SegmentTargets]) -> torch.Tensor:
        pointer_logits, type_logits = outputs
        sizes = [t.n_proposals for t in targets]
        log_pointer = split_rows(torch.log_softmax(pointer_logits, dim=-1), sizes)
        log_types = split_rows(torch.log_softmax(type_logits, dim=-1), sizes)
        per_segment, unmatched = [], 0
        for pointer, types, target in zip(log_pointer, log_types, targets):
            cost, none_cost = self._segment_costs(pointer, types, target.gold)
            match = codec.assign(cost.detach().cpu().numpy(), none_cost.detach().cpu().numpy(), self.loss.one_to_many)
            unmatched += match.n_unmatched_gold
            device = types.device
            soft = None if target.scores is None else torch.as_tensor(target.scores, device=device)
            terms = assigned_costs(cost, none_cost, torch.as_tensor(match.targets, device=device), soft)
            per_segment.append(terms.sum() if self.loss.reduction == "sum" else terms.mean())
        self._count_unmatched(unmatched)
        return torch.stack(per_segment).mean()

    def _segment_costs(
        self, log_pointer: torch.Tensor, log_types: torch.Tensor, gold: GoldSpans
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        spans, types = codec.gold_types(gold)
        reach = codec.candidate_index(spans, log_pointer.shape[0], self.max_width)
        device = log_types.device
        reach_t, types_t = torch.as_tensor(reach, device=device), torch.as_tensor(types, device=device)
        return matching_costs(log_pointer, log_types, reach_t, types_t)

    def _count_unmatched(self, unmatched: int) -> None:
        if unmatched:
            self.n_unmatched_gold += unmatched
            logger.warning(
                "[%s] %d gold entities had no proposal left to match (more entities than tokens in a segment); "
                "%d so far.", self.name, unmatched, self.n_unmatched_gold,
            )

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Extras, segments: Sequence[Segment]) -> List[ScoredSpans]:
        pointer_logits, type_logits = outputs
        sizes = [e - s for _, s, e in segments]
        rows = zip(split_rows(pointer_logits, sizes), split_rows(type_logits, sizes))
        threshold = self.threshold
        return [self.decoder(softmax(pointer), softmax(types), self.max_width, threshold) for pointer, types in rows]


@Language.factory(
    "proposer_regressor_ner",
    assigns=["doc.spans"],
    default_config=default_config(DEFAULT_CONFIG + WINDOWED_DEFAULT_CONFIG, threshold=THRESHOLD),
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_proposer_regressor_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    threshold: float,
    write_ents: bool,
    segmenter: Segmenter,
    scorer: Optional[Callable],
    loss: ProposerRegressorLoss,
    decoder: codec.ProposalDecoder,
) -> ProposerRegressorNER:
    """Nested NER by a feature-pyramid proposer and an iterative regressor: the settings measured best
    on spaCy's CPU tok2vec, the paper's one line away (``config=spacy_nested.paper_settings("proposer_regressor_ner")``).

    segmenter: windows W and their overlap for text without sentence starts.
    loss: Algorithm 1's greedy step for leftover proposals, the reduction
        over a segment's proposals, "sum" (eq. 25) or "mean" (the authors' code),
        and soft targets from scored target spans (a distilled corpus).
    decoder: Algorithm 2, with or without its None veto (p_c·p_n ≥ p_c(None)).
    threshold: the minimum p_c·p_n of a kept proposal, on top of the None veto.
    write_ents: also write the longest non-overlapping spans to doc.ents.
    """
    return ProposerRegressorNER(
        nlp.vocab, model, name, spans_key=spans_key, threshold=threshold, write_ents=write_ents,
        segmenter=segmenter, scorer=scorer,
        loss=loss, decoder=decoder,
    )  # fmt: skip
