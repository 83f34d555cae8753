"""The proposer and regressor's set-prediction loss: match costs and assigned costs (pure torch).


The settings are a frozen dataclass registered as the component's ``loss``
(``spacy_nested.proposer_regressor_loss.v1``).
"""
import math
from dataclasses import dataclass
from typing import Tuple

import torch

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
