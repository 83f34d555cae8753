"""Building blocks shared by the heads (pure torch, no spaCy)."""
from typing import Callable, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from spacy_nested.spans import length_groups


class MLP(nn.Module):
    """Two linear layers with a GELU between (Locate and Label eqs. 3, 5, 10)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(n_in, n_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(n_hidden, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_parts(
        self, dense: torch.Tensor, table: torch.Tensor, rows: Sequence[Tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """``self(cat([dense, table[rows[0]], table[rows[1]], ...], -1))`` without the concatenation.

        The first layer is linear, so its weight splits by input columns into one block per
        part. A part gathered from ``table`` (a boundary token's vector, shared by many
        candidates) is projected once per row of the table and the projection gathered, so
        K candidates over T table rows cost T·d·hidden multiply-adds per part instead of
        K·d·hidden (K is about 10·T for Locate-and-Label's seeds). The same function up to
        float rounding. Only with dropout off (inference): dropout masks each candidate's
        concatenation on its own, which projecting shared rows cannot do, so training takes
        the concatenation.
        """
        if self.training and any(m.p > 0 for m in self.net if isinstance(m, nn.Dropout)):
            return self(torch.cat([dense, *(table[index] for index in rows)], dim=-1))
        first: nn.Linear = self.net[1]  # type: ignore[assignment]
        d, w = dense.shape[-1], table.shape[-1]
        hidden = F.linear(dense, first.weight[:, :d], first.bias)
        flat = table.reshape(-1, w)
        for k, (b, p) in enumerate(rows):
            projected = F.linear(flat, first.weight[:, d + k * w : d + (k + 1) * w])
            hidden.add_(projected.index_select(0, b * table.shape[1] + p))
        return self.net[4](self.net[3](self.net[2](hidden)))


class SequenceEncoder(nn.Module):
    """Optional BiLSTM over the encoder output; identity when ``hidden == 0``.

    Padding is packed away, so a row's output never depends on the lengths of
    its batch mates.
    """

    def __init__(self, n_in: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True, bidirectional=True) if hidden else None
        self.n_out = 2 * hidden if hidden else n_in

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        if self.lstm is None or x.shape[1] == 0:
            return x
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class SpanMaxPool(nn.Module):
    """Max-pool token vectors over arbitrary spans without an O(K·N·d) tensor.

    A sparse table (range-maximum query) holds the max over every window of
    length 2^j starting at every token: ``log2 N`` tensors of shape (B, N, d).
    The max over ``[s, e)`` is then ``max(T_j[s], T_j[e - 2^j])`` with
    ``j = floor(log2(e - s))``: two gathers per span. Memory grows with
    ``B·N·log N·d + K·d``, never with ``K·N·d`` (the authors' code materialises
    a B×K×N×d tensor: ~11 GiB for one 512-word sentence). Gradients flow to the
    maximal tokens through ``torch.maximum``/``gather``.
    """

    def forward(self, h: torch.Tensor, batch: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        if batch.numel() == 0:
            return h.new_zeros((0, h.shape[-1]))
        lengths = (ends - starts).clamp(min=1)
        levels = self._table(h, int(lengths.max().item()))
        j = torch.floor(torch.log2(lengths.to(torch.float64))).long()
        table = torch.stack(levels, dim=0)  # (J, B, N, d)
        left = table[j, batch, starts]
        right = table[j, batch, ends - torch.pow(2, j)]
        return torch.maximum(left, right)

    @staticmethod
    def _table(h: torch.Tensor, max_len: int):
        levels = [h]
        width = 1
        while width * 2 <= max_len:
            prev = levels[-1]
            shifted = torch.cat([prev[:, width:], prev[:, -width:]], dim=1)
            levels.append(torch.maximum(prev, shifted))
            width *= 2
        return levels


def pad_edges(h: torch.Tensor, lengths: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Put learned sentinel vectors before the first and after the last token.

    Returns (B, N + 2, d) where position ``p + 1`` holds token ``p``, position 0
    holds ``left`` and position ``lengths[b] + 1`` holds ``right``. Outer
    boundary words (Locate and Label eq. 4) then always exist; the authors' code
    clamps them to the inner word at sentence edges instead.
    """
    B, N, d = h.shape
    out = torch.cat([left.expand(B, 1, d), h, right.expand(B, 1, d)], dim=1)
    positions = torch.arange(N + 2, device=h.device).unsqueeze(0)
    is_right = positions == (lengths.unsqueeze(1) + 1)
    return torch.where(is_right.unsqueeze(-1), right.expand(B, N + 2, d), out)



def rows_by_length_group(
    lengths: List[int],
    max_cells: int,
    run: Callable[[List[int]], Sequence[Sequence[torch.Tensor]]],
    empty: Sequence[torch.Tensor],
) -> List[torch.Tensor]:
    """Run a padded computation one length group at a time; its rows back in segment order.

    ``run(group)`` computes the segments ``group`` (indices from ``spans.length_groups``,
    longest first), padded to the group's longest, and returns for each of its outputs one
    tensor of rows per member, in the group's order. The result holds, for each output, the
    rows of every segment concatenated in segment order: what one batch padded to the
    longest segment of all gives, with less padding. ``empty[k]`` stands for the rows of
    output k of a segment that ``run`` gave none (zero rows of the right width).
    ``max_cells`` 0 runs all segments as one group.
    """
    groups = length_groups(lengths, max_cells) if max_cells else [list(range(len(lengths)))]
    rows = [[none] * len(lengths) for none in empty]
    for group in groups:
        for output, members in zip(rows, run(group)):
            for b, member_rows in zip(group, members):
                output[b] = member_rows
    return [torch.cat(output) for output in rows]
