"""Locate and Label's loss: filter, regressor and classifier terms (pure torch).

Every term takes per-example weights and returns a *mean over examples*
(``sum_i w_i * l_i / n``), so that the relative size of the terms does not
depend on how many candidates a batch holds. The authors' code sums the
classification terms and averages the regression terms, which weights
classification hundreds of times more (docs/locate_label.md#loss-reduction); the λ
weights of our configs are chosen for the mean reduction.

The settings are a frozen dataclass registered as the component's ``loss``
(``spacy_nested.locate_label_loss.v1``).
"""
from dataclasses import dataclass
from typing import Optional

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
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: Optional[torch.Tensor] = None,
    gamma: float = 0.0,
    confidence: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Weighted cross-entropy over a softmax (Locate and Label eq. 16).

    With ``gamma > 0`` this is the multi-class focal loss the authors' code uses. ``confidence``
    (soft targets) puts ``c_i`` of example i's target on its class and ``1 - c_i`` on class 0
    (None): ``c_i·l_i(target) + (1 - c_i)·l_i(None)``; all 1 is the hard loss.
    """
    log_probs = F.log_softmax(logits, dim=-1)

    def class_losses(log_pt: torch.Tensor) -> torch.Tensor:
        return -log_pt * (1 - log_pt.exp()) ** gamma if gamma > 0 else -log_pt

    losses = class_losses(log_probs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1))
    if confidence is not None:
        confidence = confidence.to(losses.dtype)
        losses = confidence * losses + (1 - confidence) * class_losses(log_probs[:, 0])
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
