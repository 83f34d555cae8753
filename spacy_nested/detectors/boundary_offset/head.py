"""Boundary Offset Prediction Network (Tang et al. 2023) as a torch head: eqs. 1–6.

Input: padded token vectors ``X`` (B, N, d) of B segments and their
``lengths``. Output: a 1-tuple with ``logits`` (C, L), the offset-label scores
of every cell of every segment, concatenated segment by segment, each block in
(type, start, end) order: ``C = Σ_b M·n_b²``. Padding cells are never output,
so the loss and the decoder see exactly the cells of each segment.

Choices and deviations (paper first, then the authors' code; docs/boundary_offset.md#deviations):

* **Type input** (§3.1): M learnable type tokens are prepended to the tokens
  and encoded jointly with them by the head's BiLSTM (the paper prepends them
  to BERT's input; behind a shared spaCy encoder the BiLSTM is where tokens and
  types meet). Types come first, so every type state has read the sentence
  backwards and every token state has read the types forwards, as in the code.
  ``type_input = false`` is Table 4's "w/o Type Inp.": free type vectors that
  meet the sentence only in the biaffine.
* **Span representation** (eq. 1): conditional layer norm
  ``V_ij = LN(h_i) ⊙ (γ + W_γ h_j) + (β + W_β h_j)`` with zero-initialised
  W (as in the code; eps 1e-5, not the code's 1e-12, so half precision is safe),
  concatenated with a region embedding (upper/lower triangle; ``region_width``
  0 switches it off) and, optionally, the code's distance-bucket embedding
  (``distance_width``; the buckets of W2NER: log2 of |i - j| in 9 bins per
  triangle plus the diagonal). Layers that read v̂ split their weight into the
  V and embedding columns (``cell_linear``), so the concatenation is never built.
* **Biaffine** (eqs. 2–3): ``s = [h^Y;1]ᵀ U [v̂;1]`` with MLP(ReLU) on both sides.
  The code's extra fusion term ``Linear(CLN(h^Y_m | v̂_ij))`` is optional
  (``cln_fusion``); everything after its normalisation is linear, so it is
  folded into per-type coefficients over v̂ (``TypeFusion``): the same numbers
  without the B×M×N×N×d tensor the code builds (1.25 GiB per 512-word
  sentence) and at a tenth of the work per cell.
* **3D convolution** (eqs. 4–5) over the (type, start, end) volume with the L
  labels as channels: Dropout3d, 1×1×1 conv + GELU, then one depth-wise 3×3×3
  conv + GELU per entry of ``conv_dilations`` (l = its length; empty = "w/o
  3DConv"), concatenated and projected by a Linear. Default as in the code:
  the dilated convs are *stacked* (each reads the previous one) and the result
  is *added* to the scores; ``conv_stacked = false`` runs parallel branches on
  the same input and ``conv_residual = false`` replaces the scores, as eq. 5
  reads. **Padding cells are zeroed before every convolution**, so a segment's
  scores never depend on the lengths of its batch mates (the code leaks
  padding into edge cells).
* **Length buckets**: segments are processed in groups of similar length (a
  group is padded to its longest member), so padding does not make the
  quadratic grid of a short sentence as expensive as that of the longest one in
  the batch. Masking makes the result independent of the grouping.
* Cost counters of the last forward pass: ``n_scored`` (C = Σ_b M·n_b², the
  cells output) and ``n_padded_peak`` (M·B_g·n_g², the largest padded grid
  of one group, ≤ M·max(``max_cells``, n_max²)). Behind the pipe's windows of
  W tokens, C ≤ M·W·Σ_b n_b: linear in the document length.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from spacy_nested.detectors.boundary_offset.codec import n_offset_labels
from spacy_nested.ml.layers import SequenceEncoder, rows_by_length_group


class BoundaryOffsetHead(nn.Module):
    def __init__(
        self,
        *,
        max_offset: int,
        lstm_hidden: int,
        lstm_dropout: float,
        type_input: bool,
        biaffine_hidden: int,
        biaffine_dropout: float,
        region_width: int,
        distance_width: int,
        cln_fusion: bool,
        conv_dilations: Sequence[int],
        conv_stacked: bool,
        conv_residual: bool,
        conv_dropout: float,
        max_cells: int,
        n_inputs: int = 1,
        n_labels: int = 1,
    ):
        super().__init__()
        if lstm_hidden < 1:
            raise ValueError("boundary offset head: lstm_hidden must be positive (types and tokens meet in the BiLSTM)")
        self.max_offset = int(max_offset)
        self.n_offsets = n_offset_labels(self.max_offset)
        self.lstm_hidden = lstm_hidden
        self.lstm_dropout = lstm_dropout
        self.type_input = type_input
        self.biaffine_hidden = biaffine_hidden
        self.biaffine_dropout = biaffine_dropout
        self.region_width = region_width
        self.distance_width = distance_width
        self.cln_fusion = cln_fusion
        self.conv_dilations = [int(d) for d in conv_dilations]
        self.conv_stacked = conv_stacked
        self.conv_residual = conv_residual
        self.conv_dropout = conv_dropout
        self.max_cells = max_cells
        self.n_scored = 0
        self.n_padded_peak = 0
        self.resize(n_inputs, n_labels)

    def dims(self) -> Dict[str, int]:
        return {"n_inputs": self.n_inputs, "n_labels": self.n_labels}

    def resize(self, n_inputs: int, n_labels: int) -> "BoundaryOffsetHead":
        """(Re)build the layers for an encoder width and a type count M."""
        self.n_inputs, self.n_labels = int(n_inputs), int(n_labels)
        M, L, h = self.n_labels, self.n_offsets, 2 * self.lstm_hidden
        self.encoder = SequenceEncoder(self.n_inputs, self.lstm_hidden, self.lstm_dropout)
        width = self.n_inputs if self.type_input else h
        self.types = nn.Parameter(torch.randn(M, width))
        self.span_norm = ConditionalLayerNorm(h, h)
        self.region = nn.Embedding(2, self.region_width) if self.region_width else None
        self.distance = nn.Embedding(20, self.distance_width) if self.distance_width else None
        n_cell = h + self.region_width + self.distance_width
        self.left = _biaffine_mlp(h, self.biaffine_hidden, self.biaffine_dropout)
        self.right = _biaffine_mlp(n_cell, self.biaffine_hidden, self.biaffine_dropout)
        self.biaffine = nn.Parameter(torch.zeros(L, self.biaffine_hidden + 1, self.biaffine_hidden + 1))
        nn.init.xavier_normal_(self.biaffine)
        self.fusion = TypeFusion(h, n_cell, L) if self.cln_fusion else None
        self.conv = OffsetConv3d(L, self.conv_dilations, self.conv_stacked, self.conv_residual, self.conv_dropout)
        return self

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor]:
        self.n_scored = self.n_padded_peak = 0
        if X.shape[0] == 0:
            return (X.new_zeros((0, self.n_offsets)) + 0 * self.types.sum(),)
        h_types, h_tokens = self._encode(X, lengths)

        def run(group: List[int]) -> Tuple[List[torch.Tensor]]:
            n = int(lengths[group[0]])
            self.n_padded_peak = max(self.n_padded_peak, self.n_labels * len(group) * n * n)
            idx = torch.as_tensor(group, device=X.device)
            logits = self._grid(h_types[idx], h_tokens[idx, :n], lengths[idx])
            sizes = [int(lengths[b]) for b in group]
            return ([logits[row, :, :m, :m].reshape(-1, self.n_offsets) for row, m in enumerate(sizes)],)

        (cells,) = rows_by_length_group(lengths.tolist(), self.max_cells, run, [X.new_zeros((0, self.n_offsets))])
        self.n_scored = cells.shape[0]
        return (cells,)

    def _encode(self, X: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """H^Y (B, M, h) and H^X (B, N, h) (§3.1)."""
        B, M = X.shape[0], self.n_labels
        if not self.type_input:
            return self.types.unsqueeze(0).expand(B, -1, -1), self.encoder(X, lengths)
        joint = torch.cat([self.types.unsqueeze(0).expand(B, -1, -1).to(X.dtype), X], dim=1)
        H = self.encoder(joint, lengths + M)
        return H[:, :M], H[:, M:]

    def _grid(self, h_types: torch.Tensor, h_tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Offset-label logits (B, M, n, n, L) of a group padded to n tokens."""
        n = h_tokens.shape[1]
        valid = _cell_mask(lengths, n)
        cells = self._cell_features(h_tokens)
        scores = self._biaffine(h_types, cells)
        if self.fusion is not None:
            scores = scores + self.fusion(h_types, cells)
        return self.conv(scores, valid)

    def _cell_features(self, h: torch.Tensor) -> "Cells":
        """v̂_ij = [CLN(h_i | h_j); region; distance] (eq. 1), kept in two parts:
        V (B, n, n, h) and the position embeddings (n, n, E) shared by the batch."""
        n = h.shape[1]
        V = self.span_norm(h.unsqueeze(2), h.unsqueeze(1))
        i = torch.arange(n, device=h.device)
        parts = []
        if self.region is not None:
            parts.append(self.region((i[:, None] <= i[None, :]).long()))
        if self.distance is not None:
            parts.append(self.distance(distance_buckets(n, h.device)))
        return (V, torch.cat(parts, dim=-1).to(V.dtype) if parts else None)

    def _biaffine(self, h_types: torch.Tensor, cells: "Cells") -> torch.Tensor:
        """s_mij = [l_m; 1]ᵀ U [r_ij; 1] for every label (eqs. 2–3), (B, M, n, n, L)."""
        left = _append_one(self.left(h_types))
        right = self.right[1:](cell_linear(self.right[0], cells))  # type: ignore[index]  # an nn.Sequential
        per_type = torch.einsum("bmx,lxy->bmly", left, self.biaffine.to(left.dtype))  # (B, M, L, H + 1)
        scores = cell_products((right, None), per_type[..., :-1])
        return scores + per_type[..., -1][:, :, None, None, :]


Cells = Tuple[torch.Tensor, Optional[torch.Tensor]]


def cell_products(cells: Cells, coef: torch.Tensor) -> torch.Tensor:
    """``s_bmijl = coef_bml · [V_bij; p_ij]`` for per-type coefficients ``coef`` (B, M, L, F)."""
    V, positions = cells
    width = V.shape[-1]
    out = torch.einsum("bijf,bmlf->bmijl", V, coef[..., :width])
    if positions is not None:
        out = out + torch.einsum("ijf,bmlf->bmijl", positions, coef[..., width:])
    return out


def cell_linear(linear: nn.Linear, cells: Cells) -> torch.Tensor:
    """``linear([V_ij; p_ij])`` without building the concatenation: the weight is split
    into its V and position columns, and the position part is computed once per (i, j)."""
    V, positions = cells
    width = V.shape[-1]
    out = F.linear(V, linear.weight[:, :width], linear.bias)
    if positions is not None:
        out = out + F.linear(positions, linear.weight[:, width:])
    return out


class ConditionalLayerNorm(nn.Module):
    """LN(x) ⊙ (γ + W_γ c) + (β + W_β c) with zero-initialised W (Liu et al. 2021)."""

    def __init__(self, width: int, cond_width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(width))
        self.beta = nn.Parameter(torch.zeros(width))
        self.to_gamma = nn.Linear(cond_width, width, bias=False)
        self.to_beta = nn.Linear(cond_width, width, bias=False)
        nn.init.zeros_(self.to_gamma.weight)
        nn.init.zeros_(self.to_beta.weight)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.normalize(x) * (self.gamma + self.to_gamma(cond)) + (self.beta + self.to_beta(cond))


class TypeFusion(nn.Module):
    """The code's extra term ``Linear(CLN(h^Y_m | v̂_ij))`` without its B×M×N×N×d tensor.

    With ``A_m = LN(h^Y_m)``, the output weight ``W`` (L×d) and the CLN maps
    ``W_γ``, ``W_β`` (d×F), everything after the normalisation is linear in v̂::

        W (A_m ⊙ (γ + W_γ v̂) + β + W_β v̂) + b
          = [(W ⊙ A_m) W_γ + W W_β] v̂ + (W ⊙ A_m) γ + W β + b

    so the bracket is folded into per-type coefficients (M×L×F, once per
    segment) and each cell costs one F × M·L product instead of two d×F maps
    and a d × M·L product: the same numbers, about a tenth of the work.
    """

    def __init__(self, width: int, cond_width: int, n_out: int):
        super().__init__()
        self.norm = ConditionalLayerNorm(width, cond_width)
        self.out = nn.Linear(width, n_out)

    def forward(self, h_types: torch.Tensor, cells: Cells) -> torch.Tensor:
        W = self.out.weight  # (L, d)
        WA = self.norm.normalize(h_types).unsqueeze(2) * W  # (B, M, L, d)
        coef = WA @ self.norm.to_gamma.weight + W @ self.norm.to_beta.weight  # (B, M, L, F)
        const = WA @ self.norm.gamma + W @ self.norm.beta + self.out.bias  # (B, M, L)
        return cell_products(cells, coef) + const[:, :, None, None, :]


class OffsetConv3d(nn.Module):
    """Dilated 3D convolutions over (type, start, end) with labels as channels (eqs. 4–5)."""

    def __init__(self, n_labels: int, dilations: Sequence[int], stacked: bool, residual: bool, dropout: float):
        super().__init__()
        self.dilations = list(dilations)
        self.stacked = stacked
        self.residual = residual
        if not self.dilations:
            return
        L = n_labels
        self.dropout = nn.Dropout3d(dropout)
        self.base = nn.Conv3d(L, L, kernel_size=1)
        self.dilated = nn.ModuleList(
            [nn.Conv3d(L, L, kernel_size=3, padding=d, dilation=d, groups=L) for d in self.dilations]
        )
        self.project = nn.Linear(L * len(self.dilations), L)

    def forward(self, scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``scores`` (B, M, n, n, L), ``valid`` (B, n, n) -> refined (B, M, n, n, L)."""
        if not self.dilations:
            return scores
        mask = valid[:, None, None].to(scores.dtype)  # (B, 1, 1, n, n)
        # Channels (labels) last in memory: torch's CPU kernels for these convolutions run
        # 4x faster on that layout than on the strided one the permute and mask give, with
        # the same results (measured with bench/head_speed.py).
        x = self.dropout(scores.permute(0, 4, 1, 2, 3) * mask).contiguous(memory_format=torch.channels_last_3d)
        x = (F.gelu(self.base(x)) * mask).contiguous(memory_format=torch.channels_last_3d)
        outputs: List[torch.Tensor] = []
        for conv in self.dilated:
            q = F.gelu(conv(x if not self.stacked or not outputs else outputs[-1])) * mask
            outputs.append(q.contiguous(memory_format=torch.channels_last_3d))
        refined = self.project(torch.cat(outputs, dim=1).permute(0, 2, 3, 4, 1))
        return scores + refined if self.residual else refined


def distance_buckets(n: int, device: torch.device) -> torch.Tensor:
    """W2NER/BOPN distance ids (n, n): diagonal 19, i > j 1..9, i < j 10..18 (log2 bins)."""
    i = torch.arange(n, device=device)
    d = i[:, None] - i[None, :]
    bins = torch.floor(torch.log2(d.abs().clamp(min=1).double())).long().clamp(max=8) + 1
    return torch.where(d == 0, torch.full_like(d, 19), torch.where(d > 0, bins, bins + 9))


def _cell_mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    inside = torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]  # (B, n)
    return inside[:, :, None] & inside[:, None, :]


def _biaffine_mlp(n_in: int, n_out: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout))


def _append_one(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
