"""Proposer and Regressor (Wen et al. 2023) as a torch head: eqs. 4–22.

Input: padded token vectors ``X`` (B, N, d) of B segments (sentences or
windows) and their ``lengths`` (B,). Every token anchors one proposal (query).
Output: a tuple ``(pointer_logits, type_logits)``:

* ``pointer_logits`` (Q, C), ``Q = Σ lengths`` rows in segment-major,
  token-minor order (padding rows are never output). Column ``c`` scores the
  half-open span ``[t + ds, t + ds + width)`` of ``pointer_table(max_width)[c]
  = (ds, width)`` around the row's anchor token ``t`` (``detectors/proposer_regressor/codec.py``).
  Cells outside ``[0, n_b)`` hold ``finfo(dtype).min``, so a softmax gives them
  exactly 0; the one-token span ``[t, t + 1)`` is always inside.
* ``type_logits`` (Q, M + 1), the last column is None (as in the code).

``n_scored`` (= Q·C pointer cells) and ``n_attended`` (= Σ_b n_b² attention
pairs) count the work of the last forward. ``propose`` exposes the proposer
(encoded tokens, pyramid levels, initial proposals) for inspection.

Choices and deviations (paper first, then the authors' code; docs/proposer_regressor.md#deviations):

* **Encoder** (eq. 4): the paper's char/word/POS/BERT stack is the spaCy
  encoder upstream. ``encoder_gru``: packed BiGRU (``hidden_width`` per
  direction; the code uses the 1118-wide input width) → Linear(2H→H) →
  LayerNorm (the LN is the code's); off: Linear(d→H) → LayerNorm.
* **Feature pyramid forward block** (eqs. 5–6): ``H^f_l = W BiGRU(LN(X_l)) + b``
  (with the code's dropout), ``X_{l+1} = GELU(Conv1d_k(H^f_l))`` as a valid
  convolution, so ``n_{l+1} = max(n_l - k + 1, 0)`` (``level_lengths``) and a
  feature at level l, position i covers tokens ``[i, i + v_l - 1]``,
  ``v_l = 1 + Σ (k - 1)`` (eq. 5, ``level_widths``). The top level gets a
  forward block too (the code). **Depth is decided per segment**: a segment has
  features only where its own level length is positive; a level is skipped for
  the whole batch only when no segment reaches it (the code stops on the padded
  batch length, so a sentence's pyramid depends on its batch mates).
* **Backward block** (eq. 7, switch ``backward``), from each segment's own top
  level down: ``H'_l = [H^f_l ; BiGRU(LN(H^b_l))]`` (the paper's BiGRU output,
  2H wide, without the code's extra Linear), ``H_l = LN(Pool_{v_l}(X) +
  Dropout(W H'_l + b))`` with W: 3H→H, and ``H^b_{l-1} = GELU(ConvTranspose1d_k(H_l))``
  as eq. 7 writes (the code transposes the 2H concatenation ``H'_l`` instead).
  At a segment's top level, where nothing comes down, ``H^b = H^f`` (the code's
  choice). ``pool = "avg"`` is the paper's residual pooling over the encoded
  tokens of each feature's span, ``"max"`` the code's. Features beyond a
  segment's level length are zeroed before every (transposed) convolution and
  every GRU is packed, so padding never leaks into a segment.
* **Proposal fuse** (eqs. 8–10): ``MLP(H→H/2→2)`` scores every feature (start,
  end); for token t the candidates are the valid features whose span contains t
  (≤ Σ v_l of them), softmax per channel over them, and the initial location
  ``n_t = (Σ α^s s_i, Σ α^e e_i)`` is real-valued with inclusive ends, so
  ``t - (v_max - 1) ≤ n^s_t ≤ t ≤ n^e_t ≤ t + v_max - 1``. ``query = "bottom"``:
  the bottom-level feature (paper, eq. 10 text); ``"fused"``: the code's
  ``LN(X_t + Dropout(Σ_k ½(α^s_k + α^e_k) F_k))``. ``c_t = MLP(q_t)``.
* **Regressor** (§3.3), ``n_layers`` times (0 allowed): category embedding
  ``h' = q + softmax(c) E`` (eq. 11, E ~ N(0, 1) as in the code; switch
  ``category_embedding``); spatially modulated self-attention among a
  segment's queries (eqs. 12–14): one MLP shared by the heads maps each head's
  query to Δ (2) and θ (2×2), ``μ = n_i + Δ``, ``Θ = θθᵀ`` and the logit is
  ``q·k/√(H/heads) − (n_j − μ)ᵀΘ(n_j − μ)``. The quadratic form is
  **subtracted** (eq. 12's ``exp(+…)`` is a typo; the code subtracts) and is
  computed as ``‖θᵀ(n_j − μ)‖²`` (no cancellation, so no NaN in half precision);
  the log-prior is clamped at ``finfo.min / 2`` so it stays finite and above
  masked keys. Padded keys are masked with ``finfo.min`` (not −1e12).
  ``spatial = false`` drops the prior (and θ). Location iteration (eqs. 15–16,
  switch ``location_iteration``): ``softmax over heads(MLP(o_m))`` per channel,
  ``n = Σ_m α_m ⊙ μ_m``. Query aggregation is eq. 17 (one Linear over the
  concatenated heads; the code's extra per-head weighting by ``mean(α_m)`` is
  not reproduced). Update: ``gate = "gru"`` is eqs. 18–19,
  ``GRUCell(input = Dropout(q'), hidden = h')``; ``"ffn"`` is the code's
  ``LN(h' + Dropout(q'))`` then ``LN(x + FFN(x))`` (``ffn_width``). Logits
  iteration (eq. 20, switch ``logits_iteration``): ``c ← c + MLP(q)``.
* **Prediction head** (eqs. 21–22): ``type_logits = c + MLP(q)``. Pointer
  ``g(s, e) = (W_s q + b_s)ᵀ(W'_s h_s + b'_s) + (W_e q + b_e)ᵀ(W'_e h_e + b'_e)``
  with **separate** query and token matrices (the code; eq. 22 reuses W_s, W_e),
  h = the encoded tokens of eq. 4 (the paper's h, and the code's ``batch_hiddens``),
  ``r = g/√H + log G(s, e)`` with G from the head's own Δ/θ MLP around the final
  location (dropped with ``spatial = false``).
* **Bounded pointer** (deviation): the paper (and the code) take a softmax over
  all N(N+1)/2 spans of the sentence for each of the N queries (cubic memory).
  Here the pointer only scores spans up to ``max_width`` tokens around each
  proposal's anchor (``pointer_table``: start offsets in ``[-max_width,
  max_width]``, widths in ``[1, max_width]``), so memory is bounded by the
  window, never by the document length: Q·C cells, C = (2W + 1)·W.
* Every "MLP" of the paper is the code's Linear(n→n/2) → GELU → Linear, without
  dropout; ``ffn_width`` is only used by ``gate = "ffn"``.
* **Length groups** (as in the BOPN head): the segments of a batch run in
  groups of similar length (``spans.length_groups``, at most ``MAX_CELLS``
  padded query-key pairs each), each group padded to its own longest member.
  Attention costs B_g·heads·P_g² per group, and the pointer reads its
  start/end scores from one (B_g, P_g, P_g) product per channel and gathers
  the Q·C candidate cells. Padded to the batch's longest sentence instead, a
  training update on GENIA batches of 1,000 words held 460–680 MB more at
  its peak; grouped, 100–130 MB, at the same speed (bench/train_peak.py). Every row is
  masked and every GRU packed, so the grouping never changes an output.
  ``n_attended`` counts the Σ n_b² pairs that matter.
* Parameters of a switched-off part are not created (so every remaining
  parameter receives a gradient). Padding rows of every intermediate tensor are
  zeroed, so the outputs of a segment never depend on its batch mates.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from spacy_nested.detectors.proposer_regressor.codec import pointer_table
from spacy_nested.ml.layers import MLP, rows_by_length_group

# Padded query-key pairs (segments x the longest squared) of one length group; 0: one group.
# With 20,000, 5,000 or 80,000, an update's added peak was 100-130 MB (module docstring);
# 5,000 was slower (266 words per CPU s against 386 on one thread), so the BOPN head's value.
MAX_CELLS = 20000


def level_lengths(n: int, kernels: Sequence[int]) -> List[int]:
    """Lengths of the pyramid levels of an n-token segment: n_{l+1} = max(n_l - k + 1, 0)."""
    out = [max(int(n), 0)]
    for k in kernels:
        out.append(max(out[-1] - int(k) + 1, 0))
    return out


def level_widths(kernels: Sequence[int]) -> List[int]:
    """Span width v_l of a feature at each level (eq. 5): v_0 = 1, v_{l+1} = v_l + k - 1."""
    out = [1]
    for k in kernels:
        out.append(out[-1] + int(k) - 1)
    return out


class Proposals(NamedTuple):
    """The proposer's outputs, padded to P = max(lengths) tokens."""

    tokens: torch.Tensor  # (B, P, H) encoded tokens (eq. 4)
    levels: List[torch.Tensor]  # pyramid features per computed level, (B, P_l, H)
    level_lengths: List[torch.Tensor]  # (B,) per computed level
    queries: torch.Tensor  # (B, P, H)
    locations: torch.Tensor  # (B, P, 2), real-valued (start, inclusive end)
    logits: torch.Tensor  # (B, P, M + 1)
    valid: torch.Tensor  # (B, P) bool


class ProposerRegressorHead(nn.Module):
    def __init__(
        self,
        *,
        hidden_width: int,
        encoder_gru: bool,
        kernels: Sequence[int],
        backward: bool,
        pool: str,
        query: str,
        n_layers: int,
        n_heads: int,
        spatial: bool,
        gate: str,
        ffn_width: int,
        category_embedding: bool,
        location_iteration: bool,
        logits_iteration: bool,
        dropout: float,
        max_width: int,
        n_inputs: int = 1,
        n_labels: int = 1,
    ):
        super().__init__()
        _check_choice("pool", pool, ("avg", "max"))
        _check_choice("query", query, ("bottom", "fused"))
        _check_choice("gate", gate, ("gru", "ffn"))
        if hidden_width < 1 or n_heads < 1 or hidden_width % n_heads:
            raise ValueError("proposer regressor head: hidden_width must be a positive multiple of n_heads")
        if any(int(k) < 1 for k in kernels) or n_layers < 0:
            raise ValueError("proposer regressor head: kernels must be >= 1 and n_layers >= 0")
        self.hidden_width = int(hidden_width)
        self.encoder_gru = encoder_gru
        self.kernels = [int(k) for k in kernels]
        self.backward = backward
        self.pool = pool
        self.query = query
        self.n_layers = int(n_layers)
        self.n_heads = int(n_heads)
        self.spatial = spatial
        self.gate = gate
        self.ffn_width = int(ffn_width)
        self.category_embedding = category_embedding
        self.location_iteration = location_iteration
        self.logits_iteration = logits_iteration
        self.dropout = dropout
        self.max_width = int(max_width)
        self.table = torch.from_numpy(pointer_table(self.max_width))
        self.max_cells = MAX_CELLS
        self.n_scored = 0
        self.n_attended = 0
        self.resize(n_inputs, n_labels)

    def dims(self) -> Dict[str, int]:
        return {"n_inputs": self.n_inputs, "n_labels": self.n_labels}

    def resize(self, n_inputs: int, n_labels: int) -> "ProposerRegressorHead":
        """(Re)build every layer for an encoder width d and a type count M."""
        self.n_inputs, self.n_labels = int(n_inputs), int(n_labels)
        d, H, M = self.n_inputs, self.hidden_width, self.n_labels
        self.input_dropout = nn.Dropout(self.dropout)
        self.encoder_rnn = nn.GRU(d, H, batch_first=True, bidirectional=True) if self.encoder_gru else None
        self.encoder_out = nn.Sequential(nn.Linear(2 * H if self.encoder_gru else d, H), nn.LayerNorm(H))
        self.pyramid = FeaturePyramid(H, self.kernels, self.backward, self.pool, self.dropout)
        self.proposer = ProposalFuse(H, M, self.pyramid.widths, self.query, self.dropout)
        self.regressor = nn.ModuleList([RegressorLayer(self) for _ in range(self.n_layers)])
        self.predictor = PointerHead(H, M, self.spatial)
        return self


    @property
    def n_pointer(self) -> int:
        """C, the pointer columns."""
        return int(self.table.shape[0])

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        lengths = lengths.to(device=X.device, dtype=torch.long)
        if X.shape[0] == 0 or int(lengths.max()) == 0:
            return self._empty(X)

        def run(group: List[int]) -> Tuple[Sequence[torch.Tensor], ...]:
            idx = torch.as_tensor(group, device=X.device)
            sizes = lengths[idx].tolist()
            if not max(sizes):  # empty segments have no rows
                return ()
            g_pointer, g_types = self._forward_padded(X[idx], lengths[idx])
            return g_pointer.split(sizes), g_types.split(sizes)

        empty = [X.new_zeros((0, self.n_pointer)), X.new_zeros((0, self.n_labels + 1))]
        pointer, types = rows_by_length_group(lengths.tolist(), self.max_cells, run, empty)
        self.n_scored = pointer.numel()
        self.n_attended = int((lengths * lengths).sum())
        return pointer, types

    def _forward_padded(self, X: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 4–22 over one padded batch of segments."""
        p = self.propose(X, lengths)
        q, n, c = p.queries, p.locations, p.logits
        for layer in self.regressor:
            q, n, c = layer(q, n, c, p.valid)
        return self.predictor(q, n, c, p.tokens, lengths, p.valid, self.table.to(X.device))

    def propose(self, X: torch.Tensor, lengths: torch.Tensor) -> Proposals:
        """Encoder, feature pyramid and proposal fuse (eqs. 4–10)."""
        lengths = lengths.to(device=X.device, dtype=torch.long)
        X = X[:, : int(lengths.max())]
        tokens = self.encode(X, lengths)
        levels, sizes = self.pyramid(tokens, lengths)
        queries, locations, logits = self.proposer(tokens, levels, sizes)
        return Proposals(tokens, levels, sizes, queries, locations, logits, sizes[0][:, None] > _arange(tokens))

    def encode(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Eq. 4: (packed BiGRU →) Linear → LayerNorm, zero beyond each length."""
        x = self.input_dropout(X)
        if self.encoder_rnn is not None:
            x = packed_gru(self.encoder_rnn, x, lengths)
        return zero_padding(self.encoder_out(x), lengths)

    def _empty(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        self.n_scored = self.n_attended = 0
        anchor = 0 * sum(p.sum() for p in self.parameters())
        pointer = X.new_zeros((0, self.n_pointer)) + anchor
        return pointer, X.new_zeros((0, self.n_labels + 1)) + anchor


class GRUBlock(nn.Module):
    """LN → Dropout → packed BiGRU (→ Linear(2H→H) → Dropout).

    With ``project`` this is eq. 6's forward block; without, eq. 7's BiGRU(LN(·)) (2H wide)."""

    def __init__(self, width: int, dropout: float, project: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * width, width) if project else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = packed_gru(self.gru, self.dropout(self.norm(x)), lengths)
        if self.project is None:
            return h
        return zero_padding(self.dropout(self.project(h)), lengths)


class FeaturePyramid(nn.Module):
    """Forward (eqs. 5–6) and backward (eq. 7) blocks over a batch of segments."""

    def __init__(self, width: int, kernels: Sequence[int], backward: bool, pool: str, dropout: float):
        super().__init__()
        self.kernels = list(kernels)
        self.widths = level_widths(self.kernels)
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.forward_blocks = nn.ModuleList([GRUBlock(width, dropout) for _ in self.widths])
        self.convs = nn.ModuleList([nn.Conv1d(width, width, k) for k in self.kernels])
        self.backward = backward
        if backward:
            self.backward_grus = nn.ModuleList([GRUBlock(width, dropout, project=False) for _ in self.widths])
            self.backward_out = nn.ModuleList([nn.Linear(3 * width, width) for _ in self.widths])
            self.backward_norms = nn.ModuleList([nn.LayerNorm(width) for _ in self.widths])
            self.deconvs = nn.ModuleList([nn.ConvTranspose1d(width, width, k) for k in self.kernels])

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """``X`` (B, P, H) encoded tokens → features (B, P_l, H) and lengths (B,) of each
        level that at least one segment reaches (P_l > 0)."""
        depth = sum(1 for n in level_lengths(X.shape[1], self.kernels) if n > 0)
        sizes = [(lengths - (v - 1)).clamp(min=0) for v in self.widths[:depth]]
        forward = self._forward(X, sizes)
        return (self._backward(X, forward, sizes) if self.backward else forward), sizes

    def _forward(self, X: torch.Tensor, sizes: List[torch.Tensor]) -> List[torch.Tensor]:
        features: List[torch.Tensor] = []
        x = X
        for level, n in enumerate(sizes):
            if level:
                x = zero_padding(_conv(self.convs[level - 1], features[-1]), n)
            features.append(self.forward_blocks[level](x, n))
        return features

    def _backward(self, X: torch.Tensor, forward: List[torch.Tensor], sizes: List[torch.Tensor]) -> List[torch.Tensor]:
        top = len(forward) - 1
        out: List[torch.Tensor] = [X] * len(forward)
        down: Optional[torch.Tensor] = None
        for level in range(top, -1, -1):
            signal = forward[level]
            if down is not None:  # a segment's own top level gets H^b = H^f, like the batch top
                reached = (sizes[level + 1] > 0)[:, None, None]
                signal = torch.where(reached, down, signal)
            context = self.backward_grus[level](signal, sizes[level])
            mixed = self.backward_out[level](torch.cat([forward[level], context], dim=-1))
            h = self.backward_norms[level](self._pool(X, self.widths[level]) + self.dropout(mixed))
            out[level] = zero_padding(h, sizes[level])
            if level:
                down = _conv(self.deconvs[level - 1], out[level])
        return out

    def _pool(self, X: torch.Tensor, width: int) -> torch.Tensor:
        """Average (paper) or max (code) of the encoded tokens of each width-``width`` span."""
        if width == 1:
            return X
        pool = F.avg_pool1d if self.pool == "avg" else F.max_pool1d
        return pool(X.transpose(1, 2), width, stride=1).transpose(1, 2)


class ProposalFuse(nn.Module):
    """Initial proposals from the pyramid (eqs. 8–10): query, location, category logits."""

    def __init__(self, width: int, n_labels: int, widths: Sequence[int], query: str, dropout: float):
        super().__init__()
        self.widths = list(widths)
        self.query = query
        self.scorer = MLP(width, max(1, width // 2), 2)
        self.classifier = MLP(width, max(1, width // 2), n_labels + 1)
        if query == "fused":
            self.norm = nn.LayerNorm(width)
            self.dropout = nn.Dropout(dropout)

    def forward(
        self, tokens: torch.Tensor, levels: List[torch.Tensor], sizes: List[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores, spans, inside, index = self._candidates(tokens, levels, sizes)
        scores = scores.masked_fill(~inside[..., None], torch.finfo(scores.dtype).min)
        alpha = torch.softmax(scores, dim=2)  # (B, P, K, 2), per channel over N_t (eq. 8)
        locations = (alpha * spans.to(alpha.dtype)).sum(dim=2)  # eq. 9
        if self.query == "fused":
            fused = self._gather_features(levels, index, alpha.mean(dim=-1) * inside)
            queries = self.norm(tokens + self.dropout(fused))
        else:
            queries = levels[0]
        queries = zero_padding(queries, sizes[0])
        return queries, zero_padding(locations, sizes[0]), zero_padding(self.classifier(queries), sizes[0])

    def _candidates(self, tokens: torch.Tensor, levels: List[torch.Tensor], sizes: List[torch.Tensor]):
        """For each token t and level l, the features i = t - o, o < v_l, whose span holds t:
        scores (B, P, K, 2), spans (P, K, 2), inside (B, P, K), and per-level gather indices."""
        t = torch.arange(tokens.shape[1], device=tokens.device)[:, None]
        scores, spans, inside, index = [], [], [], []
        for level, (h, n) in enumerate(zip(levels, sizes)):
            v = self.widths[level]
            i = t - torch.arange(v, device=t.device)[None, :]  # (P, v)
            ok = (i >= 0)[None] & (i[None] < n[:, None, None])
            i = i.clamp(0, h.shape[1] - 1)
            scores.append(self.scorer(h)[:, i])
            spans.append(torch.stack([i, i + v - 1], dim=-1))
            inside.append(ok)
            index.append(i)
        return torch.cat(scores, 2), torch.cat(spans, 1), torch.cat(inside, 2), index

    @staticmethod
    def _gather_features(levels: List[torch.Tensor], index: List[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        """Σ_k w_k F_k over each token's candidates, level by level."""
        out, start = weights.new_zeros(()), 0
        for h, i in zip(levels, index):
            w = weights[:, :, start : start + i.shape[1]]
            out = out + torch.einsum("bpk,bpkh->bph", w, h[:, i])
            start += i.shape[1]
        return out


class Locator(nn.Module):
    """MLP(x) → offset Δ (…, 2) and/or shape factor θ (…, 2, 2), Θ = θθᵀ (eq. 13)."""

    def __init__(self, width: int, offset: bool = True, shape: bool = True):
        super().__init__()
        self.offset, self.shape = offset, shape
        self.mlp = MLP(width, max(1, width // 2), 2 * offset + 4 * shape)

    def forward(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        out = self.mlp(x)
        delta = out[..., :2] if self.offset else None
        theta = out[..., -4:].unflatten(-1, (2, 2)) if self.shape else None
        return delta, theta


def gaussian_log_prior(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """log G(x) = −(x − μ)ᵀ θθᵀ (x − μ) = −‖θᵀ(x − μ)‖² (eq. 12 with the sign of the code),
    broadcast over the leading dims; clamped at finfo.min / 2 so it stays finite.

    Written out per coordinate: ``u_j = d_0 θ_0j + d_1 θ_1j``. Broadcasting ``d`` against ``θ``
    and summing the 2×2 products instead builds a (…, 2, 2) tensor per query-key pair and reduces
    over its short axes, which took 62% of the CPU time of a prediction (one thread, batches of
    128 GENIA dev sentences); a training update's time and peak memory did not change measurably.
    The arithmetic is the same, in the same order: the values are bit-identical.
    """
    d0, d1 = x[..., 0] - mu[..., 0], x[..., 1] - mu[..., 1]
    u0 = d0 * theta[..., 0, 0] + d1 * theta[..., 1, 0]
    u1 = d0 * theta[..., 0, 1] + d1 * theta[..., 1, 1]
    return (-(u0 * u0 + u1 * u1)).clamp(min=torch.finfo(u0.dtype).min / 2)


class SpatialAttention(nn.Module):
    """Spatially modulated multi-head self-attention with location iteration (eqs. 12–17)."""

    def __init__(self, width: int, n_heads: int, spatial: bool, location_iteration: bool, dropout: float):
        super().__init__()
        self.n_heads, self.head_width = n_heads, width // n_heads
        self.spatial = spatial
        self.qkv = nn.Linear(width, 3 * width)
        needs_offset = spatial or location_iteration
        self.locator = Locator(self.head_width, offset=True, shape=spatial) if needs_offset else None
        self.head_scores = MLP(self.head_width, max(1, self.head_width // 2), 2) if location_iteration else None
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, n: torch.Tensor, valid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``h`` (B, P, H) queries, ``n`` (B, P, 2) locations → q' (B, P, H) (eq. 17), new locations (eq. 16)."""
        B, P, H = h.shape
        q, k, v = self.qkv(h).view(B, P, 3, self.n_heads, self.head_width).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_width)  # (B, heads, P, P)
        mu = None
        if self.locator is not None:
            delta, theta = self.locator(q)
            mu = n[:, None] + delta  # (B, heads, P, 2)
            if self.spatial:
                logits = logits + gaussian_log_prior(n[:, None, None], mu[..., None, :], theta[..., None, :, :])
        logits = logits.masked_fill(~valid[:, None, None, :], torch.finfo(logits.dtype).min)
        o = self.dropout(torch.softmax(logits, dim=-1)) @ v  # (B, heads, P, dh)
        if self.head_scores is not None and mu is not None:
            alpha = torch.softmax(self.head_scores(o), dim=1)  # over heads, per channel (eq. 15)
            n = (alpha * mu).sum(dim=1)
        return self.out(o.transpose(1, 2).reshape(B, P, H)), n


class RegressorLayer(nn.Module):
    """One refinement: category embedding, attention, gated (or FFN) update, logits iteration."""

    def __init__(self, head: "ProposerRegressorHead"):
        """A layer of ``head``, built from its settings (``hidden_width``, ``n_heads``, ``gate``, ...)."""
        super().__init__()
        width, n_labels, ffn_width, dropout = head.hidden_width, head.n_labels, head.ffn_width, head.dropout
        self.types = nn.Parameter(torch.randn(n_labels + 1, width)) if head.category_embedding else None
        self.attention = SpatialAttention(width, head.n_heads, head.spatial, head.location_iteration, dropout)
        self.dropout = nn.Dropout(dropout)
        self.gate: Optional[nn.GRUCell] = None
        if head.gate == "gru":
            self.gate = nn.GRUCell(width, width)
        else:
            self.norm = nn.LayerNorm(width)
            self.ffn = nn.Sequential(
                nn.Linear(width, ffn_width),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(ffn_width, width),
                nn.Dropout(dropout),
            )
            self.ffn_norm = nn.LayerNorm(width)
        self.classifier = MLP(width, max(1, width // 2), n_labels + 1) if head.logits_iteration else None

    def forward(
        self, q: torch.Tensor, n: torch.Tensor, c: torch.Tensor, valid: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = q if self.types is None else q + torch.softmax(c, dim=-1) @ self.types  # eq. 11
        update, n = self.attention(h, n, valid)
        q = self._update(h, self.dropout(update))
        if self.classifier is not None:
            c = c + self.classifier(q)  # eq. 20
        pad = ~valid[..., None]
        return q.masked_fill(pad, 0.0), n.masked_fill(pad, 0.0), c.masked_fill(pad, 0.0)

    def _update(self, h: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:  # eqs. 18–19: input q', hidden h'
            return self.gate(update.reshape(-1, h.shape[-1]), h.reshape(-1, h.shape[-1])).view_as(h)
        x = self.norm(h + update)
        return self.ffn_norm(x + self.ffn(x))


class PointerHead(nn.Module):
    """Type logits (eq. 21) and the joint pointer (eq. 22) at the candidate spans of ``pointer_table``."""

    def __init__(self, width: int, n_labels: int, spatial: bool):
        super().__init__()
        self.width = width
        self.classifier = MLP(width, max(1, width // 2), n_labels + 1)
        self.query_proj = nn.Linear(width, 2 * width)  # W_s, W_e
        self.token_proj = nn.Linear(width, 2 * width)  # W'_s, W'_e (the code's separate matrices)
        self.locator = Locator(width) if spatial else None

    def forward(
        self,
        q: torch.Tensor,
        n: torch.Tensor,
        c: torch.Tensor,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        valid: torch.Tensor,
        table: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        types = (c + self.classifier(q))[valid]
        qs, qe = self.query_proj(q).chunk(2, dim=-1)
        hs, he = self.token_proj(tokens).chunk(2, dim=-1)
        batch, anchor = valid.nonzero(as_tuple=True)
        starts, ends, inside = candidate_spans(anchor, lengths[batch], table)
        last = tokens.shape[1] - 1
        g = (qs @ hs.transpose(1, 2))[valid].gather(1, starts.clamp(0, last))
        g = g + (qe @ he.transpose(1, 2))[valid].gather(1, ends.clamp(0, last))
        scores = g / math.sqrt(self.width)
        if self.locator is not None:
            delta, theta = self.locator(q[valid])
            x = torch.stack([starts, ends], dim=-1).to(scores.dtype)
            scores = scores + gaussian_log_prior(x, (n[valid] + delta)[:, None], theta[:, None])
        return scores.masked_fill(~inside, torch.finfo(scores.dtype).min), types


def candidate_spans(anchor: torch.Tensor, length: torch.Tensor, table: torch.Tensor):
    """Start and inclusive end (Q, C) of each proposal's candidates, and whether they lie in the segment."""
    starts = anchor[:, None] + table[None, :, 0]
    ends = starts + table[None, :, 1] - 1
    return starts, ends, (starts >= 0) & (ends < length[:, None])


def packed_gru(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A batch-first bidirectional GRU over packed rows; zeros beyond each length
    (rows of length 0 are all zeros), so padding never reaches a row's outputs."""
    B, P = x.shape[:2]
    if P == 0:
        return x.new_zeros((B, 0, 2 * gru.hidden_size))
    packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=P)
    return zero_padding(out, lengths)


def zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero the rows of (B, P, …) ``x`` at positions >= lengths[b]."""
    return x.masked_fill(~(lengths[:, None] > _arange(x))[..., None], 0.0)


def _arange(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[1], device=x.device)[None, :]


def _conv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """GELU(conv) over the position axis of (B, P, H)."""
    return F.gelu(conv(x.transpose(1, 2))).transpose(1, 2)


def _check_choice(name: str, value: str, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"proposer regressor head: {name} must be one of {allowed}, got {value!r}")
