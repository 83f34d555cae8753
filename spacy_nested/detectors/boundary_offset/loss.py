"""The Boundary Offset Prediction Network's loss: cross-entropy over grid cells (pure torch).


The settings are a frozen dataclass registered as the component's ``loss``
(``spacy_nested.boundary_offset_loss.v1``).
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class BoundaryOffsetLoss:
    """Eq. 7's cell cross-entropy (``spacy_nested.boundary_offset_loss.v1``).

    ``label_smoothing``: the authors' code uses 0.01, the paper 0.
    ``both_triangles``: also train the mirrored lower triangle (the code);
    off, only the cells with start ≤ end (the paper's valid spans).
    ``soft_targets``: a target span's score s (its ``attrs["scores"]`` value: 1.0
    for gold, the teacher's score in a distilled corpus) makes each cell it
    labels a soft target, s on that label and 1 - s on out-of-range; off, every
    span counts whole (docs/distill.md#soft-targets).
    """

    label_smoothing: float
    both_triangles: bool
    soft_targets: bool = False


def cell_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    cell_scores: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Cross-entropy averaged over the grid cells whose target is not -1 (BOPN eq. 7).

    ``label_smoothing`` > 0 is the authors' code (0.01); eq. 7 has none.
    ``cell_scores`` (soft grid targets): cell c's target is ``cell_scores[c]`` on
    its label and the rest on out-of-range (label 0); the cross-entropy is linear
    in the target, so that is the mix of the two hard terms. All ones is eq. 7.
    """
    keep = targets >= 0
    if not bool(keep.any()):
        return logits.sum() * 0
    kept, labels = logits[keep], targets[keep].long()
    if cell_scores is None:
        return F.cross_entropy(kept, labels, label_smoothing=label_smoothing)
    s = cell_scores[keep].to(kept.dtype)
    on_label = F.cross_entropy(kept, labels, label_smoothing=label_smoothing, reduction="none")
    on_pad = F.cross_entropy(kept, torch.zeros_like(labels), label_smoothing=label_smoothing, reduction="none")
    return (s * on_label + (1 - s) * on_pad).mean()
