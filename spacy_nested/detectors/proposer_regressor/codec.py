"""Proposer-Regressor: pointer table, matching and decoding (numpy; Wen et al. §3.4).

"End-to-End Entity Detection with Proposer and Regressor", §3.4 eq. 22–25,
Algorithm 1 (Assignment) and Algorithm 2 (Prediction).

Everything here is numpy (and scipy for the Hungarian step); the torch head
(``detectors/proposer_regressor/head.py``) builds the distributions and the costs, the
pipe (``detectors/proposer_regressor/component.py``) calls ``candidate_index``, ``assign``
and ``decode``.

Conventions
-----------
* Spans are half-open token offsets ``[start, end)`` relative to a segment of
  ``n`` tokens. The authors' code is inclusive (``e``) internally and emits
  ``e + 1``; nothing here is inclusive.
* One proposal per token: proposal ``t`` is anchored at token ``t``, so a
  segment has ``P = n`` proposals (the code's one query per word;
  docs/proposer_regressor.md#proposal-fuse).
* Types: the real types are ``0..M-1`` and **None is the last column** ``M``
  of the type distribution, as in the authors' code. Gold rows arrive as
  ``(start, end, label + 1)`` (the package's convention, 0 reserved);
  ``gold_types`` subtracts the 1. Decoded labels are ``0..M-1`` and index the
  component's label list directly, as in ``detectors/boundary_offset/codec.py``.

Choices and deviations (paper vs authors' code vs ours)
-------------------------------------------------------
1. **Bounded pointer (eq. 22).** The paper's joint pointer is a softmax over
   every span ``(s, e)`` with ``s <= e`` of the sentence, and the code builds
   all ``N(N+1)/2`` of them per query: ``B·N²(N+1)/2`` floats, cubic in the
   sentence length (docs/proposer_regressor.md#bounded-pointer). Ours is a softmax over the
   ``C = (2W + 1)·W`` spans of ``pointer_table(W)``: row ``(ds, w)`` is the
   span ``[t + ds, t + ds + w)`` for the proposal anchored at ``t``, with
   ``-W <= ds <= W`` and ``1 <= w <= W`` (``W = max_width``), so the cost is
   ``n·C``, linear in ``n``. Consequences: no span wider than ``W`` is ever
   predicted (as with Locate and Label's window set); a proposal can produce a
   gold span only when its start lies within ``W`` tokens of the anchor
   (``candidate_index`` is -1 otherwise, and the head gives that pair the
   authors' floor cost ``-log(1e-8)``, so the Hungarian step avoids it when it
   can). Columns that leave the segment are masked by the head; ``decode``
   never emits them.
2. **Matching (eq. 23–24, Algorithm 1)** — ``assign``: the Hungarian algorithm
   (``scipy.optimize.linear_sum_assignment``) on the ``P×G`` eq. 24 costs,
   without a None column (as both the paper and the code do). With ``P >= G``
   every gold entity gets exactly one proposal from this step. Proposals left
   over then get, with ``one_to_many=True`` (the paper, line 7–8 of
   Algorithm 1; our default), the argmin of their costs *including padding*
   (``[cost[p, :], none_cost[p]]``, ties to the lower index, None last, so a
   tie between a gold entity and None goes to the gold entity): several
   proposals may then learn the same entity. With ``one_to_many=False`` (the
   authors' code; docs/proposer_regressor.md#matching) every leftover
   proposal is mapped to None.
3. **More gold entities than proposals** (``P < G``, a short segment with many
   nested entities): the Hungarian step matches ``P`` of them (the subset of
   least total cost) and the others get **no proposal in this update**. The
   code ignores them silently; we return their number as
   ``Assignment.n_unmatched_gold`` and the pipe logs it. A proposal emits at
   most one entity, so at most ``n`` entities per segment can be predicted.
4. **Costs are validated**: NaN or infinite costs raise ``ValueError`` (the
   head's costs are log-softmax values, finite for every reachable span; a
   gold entity out of a proposal's pointer reach costs ``-log 1e-8`` for its
   location term).
   The loss reduction (eq. 25's sum vs the code's mean) is the pipe's choice.
5. **Prediction (Algorithm 2)** — ``decode``: for each proposal, the pointer
   argmax ``c*`` and the argmax ``t*`` over the *real* types; the span is kept
   when ``p_type(t*)·p_ptr(c*) >= p_type(None)``. The paper takes the argmax
   over all columns and requires it not to be None; with numpy's
   first-index tie-breaking and None last, the two rules keep exactly the same
   proposals (when None is strictly the largest, ``p(t*)·p_ptr < p(None)``).
   We use ``>=`` as the paper; the code uses ``>`` (a difference only on exact
   ties). The score of a span is that product, clipped to ``[0, 1]`` against
   rounding (the code returns no score). ``ProposalDecoder.none_veto`` off (not
   the paper) drops the comparison with ``p_type(None)``: every proposal keeps
   its best real type and only the threshold decides.
6. **Out-of-segment pointers**: a proposal whose pointer argmax lies outside
   ``[0, n)`` is skipped (it is not re-pointed at its best in-segment span);
   the head masks those columns, so this only happens for degenerate inputs.
7. **Duplicates**: proposals giving the same ``(start, end, type)`` yield one
   span with the highest score (``spans.dedupe_max``); the code removes exact
   duplicates too. There is no NMS: nested, crossing and same-span spans of
   different types all survive, as in the code.
"""
from dataclasses import dataclass
from typing import Tuple

import numpy
from scipy.optimize import linear_sum_assignment

from spacy_nested.spans import ScoredSpans, best_entity, dedupe_max


def pointer_table(max_width: int) -> numpy.ndarray:
    """The (C, 2) int64 table of pointer targets relative to a proposal's anchor.

    Rows ``(ds, width)`` for ``ds`` in ``[-max_width, max_width]`` (outer) and
    ``width`` in ``[1, max_width]`` (inner); ``C = (2 * max_width + 1) * max_width``.
    Row ``(ds, w)`` is the half-open span ``[t + ds, t + ds + w)`` for the
    proposal anchored at token ``t``. This bounds the eq. 22 pointer to spans
    of width <= max_width starting near each proposal (module docstring, item 1).
    """
    W = int(max_width)
    if W < 1:
        raise ValueError(f"max_width must be >= 1, got {max_width}")
    ds, width = numpy.meshgrid(numpy.arange(-W, W + 1), numpy.arange(1, W + 1), indexing="ij")
    return numpy.stack([ds.reshape(-1), width.reshape(-1)], axis=1).astype("int64")


def candidate_index(spans: numpy.ndarray, n_proposals: int, max_width: int) -> numpy.ndarray:
    """(n_proposals, G) int64: the ``pointer_table`` row proposal ``t`` needs to produce span ``g``.

    -1 when ``g`` is out of that proposal's reach: wider than ``max_width``
    (or empty), or starting more than ``max_width`` tokens from ``t``. For
    every index ``c >= 0``: ``(t + ds, t + ds + w) == spans[g]`` with
    ``(ds, w) = pointer_table(max_width)[c]``.
    """
    W = int(max_width)
    spans = numpy.asarray(spans, dtype="int64").reshape(-1, 2)
    t = numpy.arange(int(n_proposals), dtype="int64")[:, None]
    ds = spans[None, :, 0] - t
    width = numpy.broadcast_to(spans[None, :, 1] - spans[None, :, 0], ds.shape)
    reachable = (numpy.abs(ds) <= W) & (width >= 1) & (width <= W)
    return numpy.where(reachable, (ds + W) * W + (width - 1), -1).astype("int64")


@dataclass
class Assignment:
    """The matching of one segment.

    ``targets`` (P,) int64: the gold entity (index into the G gold rows) each
    proposal learns, or -1 for None. ``n_unmatched_gold``: gold entities that
    got no proposal in this update (only when P < G).
    """

    targets: numpy.ndarray
    n_unmatched_gold: int


def assign(cost: numpy.ndarray, none_cost: numpy.ndarray, one_to_many: bool) -> Assignment:
    """Algorithm 1: Hungarian matching, then the leftovers (module docstring, items 2–3).

    ``cost`` (P, G): eq. 24 cost of proposal p learning gold g; ``none_cost``
    (P,): cost of proposal p learning None. Both must be finite.
    """
    cost, none_cost = _checked_costs(cost, none_cost)
    P, G = cost.shape
    targets = numpy.full(P, -1, dtype="int64")
    if P == 0 or G == 0:
        return Assignment(targets, G)
    rows, cols = linear_sum_assignment(cost)
    targets[rows] = cols
    leftover = numpy.setdiff1d(numpy.arange(P), rows)
    if one_to_many and leftover.size:
        targets[leftover] = _greedy_targets(cost[leftover], none_cost[leftover])
    return Assignment(targets, G - len(cols))


def _greedy_targets(cost: numpy.ndarray, none_cost: numpy.ndarray) -> numpy.ndarray:
    """Argmin over ``[cost[p, :], none_cost[p]]``; ties to the lower index, None (-1) last."""
    best = numpy.concatenate([cost, none_cost[:, None]], axis=1).argmin(axis=1)
    return numpy.where(best == cost.shape[1], -1, best).astype("int64")


def _checked_costs(cost: numpy.ndarray, none_cost: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    cost = numpy.asarray(cost, dtype="float64")
    none_cost = numpy.asarray(none_cost, dtype="float64").reshape(-1)
    if cost.ndim != 2 or cost.shape[0] != none_cost.shape[0]:
        raise ValueError(f"cost must be (P, G) and none_cost (P,): got {cost.shape} and {none_cost.shape}")
    for name, values in (("cost", cost), ("none_cost", none_cost)):
        if numpy.isnan(values).any():
            raise ValueError(f"matching {name} contains NaN (diverged model or bad probabilities)")
        if not numpy.isfinite(values).all():
            raise ValueError(f"matching {name} contains inf; floor probabilities (e.g. at 1e-8) before taking -log")
    return cost, none_cost


@dataclass(frozen=True)
class ProposalDecoder:
    """Algorithm 2 for one segment, registered as ``spacy_nested.proposal_decoder.v1``.

    ``none_veto``: a proposal is dropped when its span's score is below ``p_type(None)``
    (the paper); off, every proposal keeps its best real type for the threshold to judge.
    """

    none_veto: bool

    def __call__(self, pointer_probs: numpy.ndarray, type_probs: numpy.ndarray, max_width: int, threshold: float) -> ScoredSpans:
        return decode(pointer_probs, type_probs, max_width, threshold, none_veto=self.none_veto)


def decode(
    pointer_probs: numpy.ndarray, type_probs: numpy.ndarray, max_width: int, threshold: float, *, none_veto: bool
) -> ScoredSpans:
    """Algorithm 2: the spans of one segment (module docstring, items 5–7).

    ``pointer_probs`` (n, C) over ``pointer_table(max_width)``; ``type_probs``
    (n, M + 1) with None last. Returns spans ``(start, end, type)`` with type
    in ``0..M-1`` and scores ``p_type(type) · p_ptr(span)`` in [0, 1], at least
    ``threshold`` (0 keeps every proposal Algorithm 2 keeps) and, with
    ``none_veto``, at least ``p_type(None)``.
    """
    table = pointer_table(max_width)
    pointer_probs = numpy.asarray(pointer_probs, dtype="float64")
    type_probs = numpy.asarray(type_probs, dtype="float64")
    n = pointer_probs.shape[0]
    if pointer_probs.ndim != 2 or pointer_probs.shape[1] != len(table):
        raise ValueError(
            f"pointer_probs must be (n, {len(table)}) for max_width {max_width}: got {pointer_probs.shape}"
        )
    if type_probs.ndim != 2 or type_probs.shape[0] != n or type_probs.shape[1] < 1:
        raise ValueError(f"type_probs must be (n = {n}, M + 1): got {type_probs.shape}")
    M = type_probs.shape[1] - 1
    if n == 0 or M == 0:
        return ScoredSpans.empty()
    rows = numpy.arange(n)
    best = pointer_probs.argmax(axis=1)
    start = rows + table[best, 0]
    end = start + table[best, 1]
    label, type_prob, none = best_entity(type_probs, none_column=M)
    score = type_prob * pointer_probs[rows, best]
    keep = (score >= threshold) & (start >= 0) & (end <= n)
    if none_veto:
        keep &= score >= none
    spans = numpy.stack([start, end, label], axis=1)[keep]
    return dedupe_max(spans.astype("int64"), numpy.clip(score[keep], 0.0, 1.0))


def gold_types(gold: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """``(start, end, label + 1)`` gold rows -> spans (G, 2) and types (G,) in ``0..M-1``."""
    gold = numpy.asarray(gold, dtype="int64").reshape(-1, 3)
    if (gold[:, 2] < 1).any():
        raise ValueError("gold labels must be label index + 1 (0 is reserved)")
    return gold[:, :2].copy(), gold[:, 2] - 1
