"""The proposer and regressor's set-prediction loss: match costs and assigned costs (pure torch).


The settings are a frozen dataclass registered as the component's ``loss``
(``spacy_nested.proposer_regressor_loss.v1``).
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

LOSS_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class ProposerRegressorLoss:
    """Set-prediction loss, eqs. 23–25 and Algorithm 1 (``spacy_nested.proposer_regressor_loss.v1``).

    ``one_to_many``: Algorithm 1's greedy step for proposals the Hungarian
    step leaves over (off: they go to None, the authors' code).
    ``reduction``: "sum" over a segment's proposals (eq. 25) or "mean" (code).
    ``soft_targets``: a proposal matched to a target span of score s (its
    ``attrs["scores"]`` value: 1.0 for gold, the teacher's score in a distilled
    corpus) learns its type with weight s and None with 1 - s, its location
    with weight s; the matching itself is unchanged. Off, every span counts
    whole (docs/distill.md#soft-targets).
    """

    one_to_many: bool
    reduction: str
    soft_targets: bool = False

    def __post_init__(self) -> None:
        if self.reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"unknown loss reduction '{self.reduction}'; choose one of {LOSS_REDUCTIONS}")


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


def assigned_costs(
    cost: torch.Tensor, none_cost: torch.Tensor, targets: torch.Tensor, target_scores: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Each proposal's cost under an assignment (eq. 25's terms): ``targets`` (P,) holds
    a gold column or -1 for None.

    ``target_scores`` (G,), soft matching targets: a proposal matched to gold g costs
    ``s_g * cost[p, g] + (1 - s_g) * none_cost[p]`` (its type target is s_g on g's type
    and 1 - s_g on None, its location weighted by s_g). All ones is eq. 25.
    """
    if cost.shape[1] == 0:
        return none_cost
    column = targets.clamp(min=0).long()
    picked = cost.gather(1, column.unsqueeze(1)).squeeze(1)
    if target_scores is not None:
        s = target_scores.to(picked.dtype)[column]
        picked = s * picked + (1 - s) * none_cost
    return torch.where(targets >= 0, picked, none_cost)
