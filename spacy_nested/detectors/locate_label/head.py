"""Locate and Label (Shen et al., ACL 2021) as a torch head: eqs. 1–10.

Input: padded token vectors ``X`` (S, N, d) of S segments, their ``lengths``
and candidate spans ``cands`` (K, 3) = (segment, start, end), half-open. At
training time the candidates are the positives plus sampled negatives (built
on the spaCy side, ``detectors/locate_label/codec.py``); at inference, all seeds.

Output tuple:
``filter_logits`` (K,), ``offsets`` (K', 2), ``cls_logits`` (K', M+1) with
class 0 = None, ``keep`` (K',) the candidate each of these rows belongs to, and
``adjusted`` (K', 2) the span the classifier saw. While training K' = K.

Choices and deviations (paper first, then the authors' code; docs/locate_label.md#deviations):

* Encoder: the paper's word/char/POS embeddings and BioBERT are replaced by
  the spaCy encoder (tok2vec or transformer listener); the paper's BiLSTM over
  them is kept as an option (``lstm_hidden``, 0 = off). No [CLS] context
  vector (a code-only extra; a tok2vec has none).
* Span representations (eqs. 1, 2, 4, 8, 9): max-pool + inner boundaries for
  filter and classifier, max-pool + outer boundaries for the regressor. Max
  pooling uses a sparse table (``layers.SpanMaxPool``), never a K×N×d tensor.
  Outer boundary words outside the sentence are learned sentinel vectors
  (the code clamps them to the inner word).
* Filter (eq. 3): a single sigmoid logit, as in the paper (the code uses a
  2-way softmax). **At inference the regressor and classifier run only on the
  seeds the filter keeps** (p > ``filter_threshold``; default 1/6, the code's
  rule p_ent > p_none/5); the code scores every seed. The filter's and the
  regressor's max-pools are one (the same seeds), and at inference each MLP's
  first layer projects the boundary words once per token, not once per seed
  (``layers.MLP.forward_parts``: the same function up to float rounding).
* Regressor (eq. 5): linear offsets, so boundaries move both ways (the code's
  sigmoid×N cannot move left). Adjustment (eqs. 6–7): ``floor(t + 1/2)``
  (the code rounds half-to-even) and clamping to the segment; a span that
  collapses (start ≥ end) falls back to its seed (the code drops it).
* Classifier (eq. 10): softmax over M+1 classes on the adjusted spans; at
  training time on every candidate (the filter gates only inference).
* Switches: ``use_filter`` (off: every seed is classified, no filter loss),
  ``use_regressor`` (off: offsets are 0, spans are classified as seeded).
* Cost counters of the last forward pass: ``n_scored`` (K, the candidates the
  filter and regressor score) and ``n_classified`` (K', those the classifier
  scores). With seeds of widths 1..w, K ≤ w·N for N tokens: linear in the
  document, which the long-document tests check.
"""
from typing import Dict, Tuple

import torch
from torch import nn

from spacy_nested.ml.layers import MLP, SequenceEncoder, SpanMaxPool, pad_edges


class LocateLabelHead(nn.Module):
    def __init__(
        self,
        *,
        hidden_width: int,
        lstm_hidden: int,
        dropout: float,
        use_filter: bool,
        use_regressor: bool,
        filter_threshold: float,
        n_inputs: int = 1,
        n_labels: int = 1,
    ):
        super().__init__()
        self.hidden_width = hidden_width
        self.lstm_hidden = lstm_hidden
        self.dropout = dropout
        self.use_filter = use_filter
        self.use_regressor = use_regressor
        self.filter_threshold = filter_threshold
        self.pool = SpanMaxPool()
        self.n_scored = 0
        self.n_classified = 0
        self.resize(n_inputs, n_labels)

    def dims(self) -> Dict[str, int]:
        return {"n_inputs": self.n_inputs, "n_labels": self.n_labels}

    def resize(self, n_inputs: int, n_labels: int) -> "LocateLabelHead":
        """(Re)build the layers for an encoder width and a label count."""
        self.n_inputs, self.n_labels = int(n_inputs), int(n_labels)
        self.encoder = SequenceEncoder(self.n_inputs, self.lstm_hidden, self.dropout)
        d = self.encoder.n_out
        self.sentinels = nn.Parameter(torch.randn(2, d) * 0.02)
        self.filter = MLP(3 * d, self.hidden_width, 1, self.dropout) if self.use_filter else None
        self.regressor = MLP(3 * d, self.hidden_width, 2, self.dropout) if self.use_regressor else None
        self.classifier = MLP(3 * d, self.hidden_width, self.n_labels + 1, self.dropout)
        return self

    def forward(self, X: torch.Tensor, lengths: torch.Tensor, cands: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        h = self.encoder(X, lengths)
        # Position p + 1 of h_pad holds token p; 0 and length + 1 hold the sentinels.
        h_pad = pad_edges(h, lengths, self.sentinels[0], self.sentinels[1])
        seg, starts, ends = cands[:, 0], cands[:, 1], cands[:, 2]
        pooled = self.pool(h, seg, starts, ends)  # shared by the filter and the regressor
        filter_logits = self._filter(pooled, h_pad, seg, starts, ends)
        keep = self._kept(filter_logits)
        if keep.shape[0] < seg.shape[0]:  # inference: the seeds the filter drops are not regressed either
            pooled, seg, starts, ends = pooled[keep], seg[keep], starts[keep], ends[keep]
        offsets = self._regress(pooled, h_pad, seg, starts, ends)
        adjusted = adjust_spans(starts, ends, offsets, lengths[seg])
        new_starts, new_ends = adjusted[:, 0], adjusted[:, 1]
        cls_logits = self.classifier.forward_parts(
            self.pool(h, seg, new_starts, new_ends), h_pad, self._inner(seg, new_starts, new_ends)
        )
        self.n_scored, self.n_classified = int(cands.shape[0]), int(cls_logits.shape[0])
        return filter_logits, offsets, cls_logits, keep, adjusted

    # A span's representation is [maxpool(h[s:e]); two boundary words of h_pad]; each MLP
    # takes the pooled part and the rows of h_pad where its boundary words sit.
    @staticmethod
    def _inner(seg, starts, ends) -> Tuple[Tuple[torch.Tensor, torch.Tensor], ...]:
        """Rows of h_s and h_{e-1}: [maxpool(h[s:e]); h_s; h_{e-1}] (eqs. 1–2 and 8–9)."""
        return (seg, starts + 1), (seg, ends)

    @staticmethod
    def _outer(seg, starts, ends) -> Tuple[Tuple[torch.Tensor, torch.Tensor], ...]:
        """Rows of h_{s-1} and h_e: [maxpool(h[s:e]); h_{s-1}; h_e] (eq. 4)."""
        return (seg, starts), (seg, ends + 1)

    def _filter(self, pooled, h_pad, seg, starts, ends) -> torch.Tensor:
        if self.filter is None:
            return pooled.new_zeros(seg.shape[0]) + 0 * self.sentinels.sum()
        return self.filter.forward_parts(pooled, h_pad, self._inner(seg, starts, ends)).squeeze(-1)

    def _regress(self, pooled, h_pad, seg, starts, ends) -> torch.Tensor:
        if self.regressor is None:
            return pooled.new_zeros((seg.shape[0], 2)) + 0 * self.sentinels.sum()
        return self.regressor.forward_parts(pooled, h_pad, self._outer(seg, starts, ends))

    def _kept(self, filter_logits: torch.Tensor) -> torch.Tensor:
        """Indices of the candidates the classifier sees: all while training."""
        if self.training or self.filter is None:
            return torch.arange(filter_logits.shape[0], device=filter_logits.device)
        return torch.nonzero(torch.sigmoid(filter_logits) > self.filter_threshold, as_tuple=False).flatten()


def adjust_spans(
    starts: torch.Tensor, ends: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Eqs. 6–7 for half-open spans: round with floor(t + 1/2), clamp to [0, length].

    A span that collapses (start >= end) falls back to its seed.
    """
    step = torch.floor(offsets.detach() + 0.5).long()
    new_starts = (starts + step[:, 0]).clamp(min=0)
    new_ends = torch.minimum(ends + step[:, 1], lengths)
    bad = new_starts >= new_ends
    new_starts = torch.where(bad, starts, new_starts)
    new_ends = torch.where(bad, ends, new_ends)
    return torch.stack([new_starts, new_ends], dim=1)

