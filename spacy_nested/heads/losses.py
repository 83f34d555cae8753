"""Loss functions shared by the heads (pure torch).

Every loss takes per-example weights and returns a *mean over examples*
(``sum_i w_i * l_i / n``), so that the relative size of the terms does not
depend on how many candidates a batch holds. The authors' Locate-and-Label code
sums the classification terms and averages the regression terms, which weights
classification hundreds of times more (docs/locate_label.md#loss-reduction); the λ weights
of our configs are chosen for the mean reduction.

The loss settings of each detector are a frozen dataclass here, registered
(``registrations.py``) as the component's ``loss``.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LocateLabelLoss:
    """Eq. 17: ``λ1·L_filter + λ2·(L_smoothL1 + L_overlap) + λ3·L_cls``, with focal γ per stage.

    ``spacy_nested.locate_label_loss.v1``; ``classifier_gamma`` 0 is the
    paper's cross-entropy, > 0 the authors' code's focal loss.
    """

    lambda_filter: float
    lambda_regressor: float
    lambda_classifier: float
    filter_gamma: float
    classifier_gamma: float


@dataclass(frozen=True)
class BoundaryOffsetLoss:
    """Eq. 7's cell cross-entropy (``spacy_nested.boundary_offset_loss.v1``).

    ``label_smoothing``: the authors' code uses 0.01, the paper 0.
    ``both_triangles``: also train the mirrored lower triangle (the code);
    off, only the cells with start ≤ end (the paper's valid spans).
    """

    label_smoothing: float
    both_triangles: bool


LOSS_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class ProposerRegressorLoss:
    """Set-prediction loss, eqs. 23–25 and Algorithm 1 (``spacy_nested.proposer_regressor_loss.v1``).

    ``one_to_many``: Algorithm 1's greedy step for proposals the Hungarian
    step leaves over (off: they go to None, the authors' code).
    ``reduction``: "sum" over a segment's proposals (eq. 25) or "mean" (code).
    """

    one_to_many: bool
    reduction: str

    def __post_init__(self) -> None:
        if self.reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"unknown loss reduction '{self.reduction}'; choose one of {LOSS_REDUCTIONS}")


def _reduce(losses: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    if losses.numel() == 0:
        return losses.sum()
    if weights is not None:
        losses = losses * weights
    return losses.sum() / losses.shape[0]


def binary_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: Optional[torch.Tensor] = None, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss of a sigmoid output (Locate and Label eq. 12; Lin et al. 2017).

    ``l_i = -(1-p)^γ log p`` for positives and ``-p^γ log(1-p)`` for negatives,
    computed from logits with ``logsigmoid`` for stability. γ = 0 is plain BCE.
    """
    targets = targets.to(logits.dtype)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos = -((1 - p) ** gamma) * log_p
    neg = -(p**gamma) * log_not_p
    return _reduce(targets * pos + (1 - targets) * neg, weights)


def categorical_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: Optional[torch.Tensor] = None, gamma: float = 0.0
) -> torch.Tensor:
    """Weighted cross-entropy over a softmax (Locate and Label eq. 16).

    With ``gamma > 0`` this is the multi-class focal loss the authors' code uses.
    """
    log_probs = F.log_softmax(logits, dim=-1)
    log_pt = log_probs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    losses = -log_pt
    if gamma > 0:
        losses = losses * (1 - log_pt.exp()) ** gamma
    return _reduce(losses, weights)


def smooth_l1(
    pred: torch.Tensor, target: torch.Tensor, weights: Optional[torch.Tensor] = None, beta: float = 1.0
) -> torch.Tensor:
    """Smooth-L1 summed over the left and right offsets (Locate and Label eq. 14)."""
    losses = F.smooth_l1_loss(pred, target.to(pred.dtype), reduction="none", beta=beta).sum(-1)
    return _reduce(losses, weights)


def overlap_loss(pred_spans: torch.Tensor, gold_spans: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Overlap loss of continuous predicted spans (Locate and Label eq. 15).

    ``1 - (min(ends) - max(starts)) / (max(ends) - min(starts))`` on half-open
    spans. The numerator is clamped at 0 (the code leaves it free, so the loss
    can exceed 1 and keeps pushing spans that are already disjoint apart).
    """
    gold_spans = gold_spans.to(pred_spans.dtype)
    inter = torch.minimum(pred_spans[:, 1], gold_spans[:, 1]) - torch.maximum(pred_spans[:, 0], gold_spans[:, 0])
    union = torch.maximum(pred_spans[:, 1], gold_spans[:, 1]) - torch.minimum(pred_spans[:, 0], gold_spans[:, 0])
    return _reduce(1 - inter.clamp(min=0) / union.clamp(min=1e-6), weights)


def cell_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy averaged over the grid cells whose target is not -1 (BOPN eq. 7).

    ``label_smoothing`` > 0 is the authors' code (0.01); eq. 7 has none.
    """
    keep = targets >= 0
    if not bool(keep.any()):
        return logits.sum() * 0
    return F.cross_entropy(logits[keep], targets[keep].long(), label_smoothing=label_smoothing)


def matching_costs(
    log_pointer: torch.Tensor, log_types: torch.Tensor, reach: torch.Tensor, gold_types: torch.Tensor, floor: float = 1e-8
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Match costs of eq. 24 for P proposals and G gold entities (Wen et al. 2023).

    ``cost[p, g] = -log p_c(t_g) - log p_n(s_g, e_g)`` from log-probabilities
    ``log_pointer`` (P, C) and ``log_types`` (P, T+1, None last); ``reach`` (P, G)
    is the pointer column of gold entity g for proposal p, or -1 where g is out
    of that proposal's reach: its location term is then ``-log floor`` (the
    authors' code floors every probability at 1e-8). Returns ``cost`` (P, G)
    and the padding cost ``-log p_c(None)`` (P,).
    """
    none_cost = -log_types[:, -1]
    if reach.shape[1] == 0:
        return log_types.new_zeros((log_types.shape[0], 0)), none_cost
    type_term = -log_types[:, gold_types.long()]
    pointer = log_pointer.gather(1, reach.clamp(min=0).long())
    out_of_reach = torch.full_like(pointer, -math.log(floor))
    return type_term + torch.where(reach >= 0, -pointer, out_of_reach), none_cost


def assigned_costs(cost: torch.Tensor, none_cost: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each proposal's cost under an assignment (eq. 25's terms): ``targets`` (P,) holds
    a gold column or -1 for None."""
    if cost.shape[1] == 0:
        return none_cost
    picked = cost.gather(1, targets.clamp(min=0).long().unsqueeze(1)).squeeze(1)
    return torch.where(targets >= 0, picked, none_cost)
