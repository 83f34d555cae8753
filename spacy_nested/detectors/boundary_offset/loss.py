"""The Boundary Offset Prediction Network's loss: cross-entropy over grid cells (pure torch).


The settings are a frozen dataclass registered as the component's ``loss``
(``spacy_nested.boundary_offset_loss.v1``).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class BoundaryOffsetLoss:
    """Eq. 7's cell cross-entropy (``spacy_nested.boundary_offset_loss.v1``).

    ``label_smoothing``: the authors' code uses 0.01, the paper 0.
    ``both_triangles``: also train the mirrored lower triangle (the code);
    off, only the cells with start ≤ end (the paper's valid spans).
    """

    label_smoothing: float
    both_triangles: bool


def cell_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy averaged over the grid cells whose target is not -1 (BOPN eq. 7).

    ``label_smoothing`` > 0 is the authors' code (0.01); eq. 7 has none.
    """
    keep = targets >= 0
    if not bool(keep.any()):
        return logits.sum() * 0
    return F.cross_entropy(logits[keep], targets[keep].long(), label_smoothing=label_smoothing)
