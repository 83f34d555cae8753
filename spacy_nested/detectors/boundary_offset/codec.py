"""Boundary offset labels: targets and decoding (numpy; Tang et al. 2023 §2, §3.3).

Grid: one ``(N, N)`` label matrix per entity type for a segment of N tokens,
cell ``(i, j)`` = the span whose first token is ``i`` and last token is ``j``
(inclusive, row = start, column = end; spaCy spans are half-open, so a span
``[s, e)`` sits at cell ``(s, e - 1)``). Valid spans are the upper triangle
``i <= j``; the lower triangle mirrors it.

Label ids for a maximum offset ``S`` (docs/boundary_offset.md#label-ids), ``L = 4S + 2``::

    0 = out-of-range (pad; "no entity within S")
    s:-S, e:-S, ..., s:-1, e:-1, c:0, s:1, e:1, ..., s:S, e:S  ->  1 .. 4S + 1

so for S = 2: ``s:-2=1 e:-2=2 s:-1=3 e:-1=4 c:0=5 s:1=6 e:1=7 s:2=8 e:2=9``.
``s:k`` at cell ``(i, j)`` says the nearest entity of this type starts at
``i - k`` and ends at ``j``; ``e:k`` says it starts at ``i`` and ends at
``j - k``. S = 0 leaves only out-of-range and the centre (Table 4 "w/o BO").

Encoding, exactly as the authors' code: every gold centre is written first;
then, gold spans in (type, start, end) order, offsets ``k = -1..-S, +1..+S``,
for each ``k`` the start cell then the end cell; a cell keeps an existing label
whose offset is no larger in absolute value (centres are never overwritten, the
nearest entity wins, ties go to the first writer). Offsets that would leave the
segment or the upper triangle are not created. The lower triangle is the
mirror of the upper one.

Decoding rules (``decode``; every rule reads the upper triangle of the per-cell
argmax, and every non-out-of-range cell *votes* for the span it points to):

* ``"votes"`` (default; the authors' ``decode_with_rule``, which produced the
  reported GENIA 82.20): centres, plus every candidate with at least S start
  votes, plus every candidate with at least S end votes (the two kinds are not
  pooled).
* ``"centre"``: centre cells only (Table 5 "centre span").
* ``"all"``: every span any cell votes for (Table 5 "all offsets").
* ``"paper"``: the paper's two heuristic rules (§3.3), which it states without
  a definition. Ours: a vote survives (i) *alignment with the centre* when the
  cell it points to is not itself predicted as an offset (which would say that
  the nearest entity is elsewhere), and (ii) *sequential order* when the
  neighbour one step towards the target along the same row/column holds the
  next smaller offset of the same kind (``s:k`` needs ``s:k∓1``, and for
  ``|k| = 1`` the neighbour is the target itself). Centres, plus every span
  with at least one surviving vote.

Score of a decoded span: the mean argmax probability of the cells that voted
for it (its centre cell, when predicted, included), so scores lie in [0, 1]
and a span backed by many confident cells scores high.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy

from spacy_nested.spans import ScoredSpans

DECODE_RULES = ("votes", "centre", "all", "paper")
START, END, CENTRE = "s", "e", "c"


def n_offset_labels(max_offset: int) -> int:
    """L = 4S + 2: out-of-range, the centre and a start and end label per offset."""
    return 4 * int(max_offset) + 2


def label_id(kind: str, offset: int, max_offset: int) -> int:
    """The id of ``s:k`` / ``e:k`` / ``c:0`` for maximum offset ``S``."""
    S = int(max_offset)
    if kind == CENTRE:
        if offset != 0:
            raise ValueError("the centre label has offset 0")
        return 2 * S + 1
    if kind not in (START, END) or offset == 0 or abs(offset) > S:
        raise ValueError(f"no offset label {kind}:{offset} for S = {S}")
    first = 2 * (offset + S) + 1 if offset < 0 else 2 * S + 2 * offset
    return first + (1 if kind == END else 0)


def label_meaning(label: int, max_offset: int) -> Tuple[str, int]:
    """Inverse of ``label_id``: ``(kind, k)``; out-of-range is ``("pad", 0)``."""
    S, label = int(max_offset), int(label)
    if label == 0:
        return ("pad", 0)
    centre = 2 * S + 1
    if label == centre:
        return (CENTRE, 0)
    if not 0 < label < n_offset_labels(S):
        raise ValueError(f"label {label} out of range for S = {S}")
    if label < centre:
        offset, kind = (label - 1) // 2 - S, (label - 1) % 2
    else:
        offset, kind = (label - centre + 1) // 2, (label - centre + 1) % 2
    return (START if kind == 0 else END, offset)


def label_tables(max_offset: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Per label id: kind code (0 pad, 1 start, 2 end, 3 centre) and offset k."""
    codes = {"pad": 0, START: 1, END: 2, CENTRE: 3}
    meanings = [label_meaning(i, max_offset) for i in range(n_offset_labels(max_offset))]
    kinds = numpy.asarray([codes[k] for k, _ in meanings], dtype="int64")
    offsets = numpy.asarray([k for _, k in meanings], dtype="int64")
    return kinds, offsets


def offset_order(max_offset: int) -> List[int]:
    """The order in which offsets are written: -1..-S, then +1..+S (authors' code)."""
    S = int(max_offset)
    return [-k for k in range(1, S + 1)] + list(range(1, S + 1))


def encode(gold: numpy.ndarray, length: int, n_types: int, max_offset: int) -> numpy.ndarray:
    """The (M, N, N) label grid of one segment.

    ``gold`` rows are ``(start, end, label + 1)`` with half-open token spans, as
    produced by ``NestedSpanDetector.gold_for_segments``.
    """
    return encode_scored(gold, None, length, n_types, max_offset)[0]


def encode_scored(
    gold: numpy.ndarray, scores: Optional[numpy.ndarray], length: int, n_types: int, max_offset: int
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """``encode``'s label grid and, beside it, each cell's score (M, N, N) float32.

    A cell holding a label (centre or offset) takes the score of the span that
    wrote it, ``scores[g]`` of gold row g (1.0 when ``scores`` is None; the
    highest when one span is given twice); out-of-range cells score 1.0, so
    their target stays certain. Soft grid targets (``loss.soft_targets``)
    read these scores.
    """
    S = int(max_offset)
    grid = numpy.zeros((n_types, length, length), dtype="int64")
    dist = numpy.zeros((n_types, length, length), dtype="int64")  # |k| of the label held
    cell_scores = numpy.ones((n_types, length, length), dtype="float32")
    rows = numpy.asarray(gold).reshape(-1, 3)
    given = numpy.ones(len(rows), dtype="float32") if scores is None else numpy.asarray(scores, dtype="float32")
    best: Dict[Tuple[int, int, int], float] = {}
    for (s, e, lab), score in zip(rows.tolist(), given.tolist()):
        key = (int(lab) - 1, int(s), int(e) - 1)
        best[key] = max(best.get(key, 0.0), float(score))
    cells = sorted(best)
    centre = label_id(CENTRE, 0, S)
    for m, i, j in cells:
        grid[m, i, j] = centre
        cell_scores[m, i, j] = best[(m, i, j)]
    for m, i, j in cells:
        for k in offset_order(S):
            for kind, (r, c) in ((START, (i + k, j)), (END, (i, j + k))):
                if not _offset_cell_valid(kind, k, r, c, i, j, length):
                    continue
                if grid[m, r, c] != 0 and dist[m, r, c] <= abs(k):
                    continue
                grid[m, r, c] = label_id(kind, k, S)
                dist[m, r, c] = abs(k)
                cell_scores[m, r, c] = best[(m, i, j)]
    return _mirror(grid), _mirror(cell_scores, fill=1.0)


def _offset_cell_valid(kind: str, k: int, r: int, c: int, i: int, j: int, length: int) -> bool:
    if kind == START:
        return r >= 0 if k < 0 else r <= j
    return c >= i if k < 0 else c < length


def _mirror(grid: numpy.ndarray, fill: float = 0) -> numpy.ndarray:
    """The upper triangle (diagonal included) mirrored below it; ``fill`` is the value
    the grid holds where nothing was written (0 for labels, 1.0 for scores)."""
    upper = numpy.triu(grid - fill) + fill
    return upper + numpy.transpose(numpy.triu(grid - fill, 1), (0, 2, 1))


def votes(labels: numpy.ndarray, lengths: Sequence[int], n_types: int, max_offset: int) -> Dict[str, numpy.ndarray]:
    """Every upper-triangle cell with a non-out-of-range label and the span it points to.

    ``labels`` (C,) are the argmax labels of the cells of several segments, concatenated
    segment by segment, each block in (type, row, col) order of its ``(M, n, n)`` grid.
    Returns arrays over the voting cells: ``segment``, ``type``, ``row``, ``col`` (the
    cell), ``cell`` (its index in ``labels``), ``kind`` (1 start, 2 end, 3 centre),
    ``offset``, ``start``/``end`` (inclusive target span) and ``valid`` (the target lies
    in its segment's upper triangle).
    """
    kinds, offsets = label_tables(max_offset)
    n_of = numpy.asarray(lengths, dtype="int64")
    sizes = n_types * n_of * n_of
    first = numpy.concatenate([[0], numpy.cumsum(sizes)[:-1]]).astype("int64")
    cell = numpy.flatnonzero(labels)
    seg = numpy.searchsorted(first, cell, side="right") - 1  # a segment of no cells owns none
    n = n_of[seg]
    local = cell - first[seg]
    m, rc = numpy.divmod(local, n * n)
    r, c = numpy.divmod(rc, n)
    upper = r <= c
    seg, n, m, r, c, cell = seg[upper], n[upper], m[upper], r[upper], c[upper], cell[upper]
    lab = labels[cell]
    kind, off = kinds[lab], offsets[lab]
    start = numpy.where(kind == 1, r - off, r)
    end = numpy.where(kind == 2, c - off, c)
    valid = (start >= 0) & (start <= end) & (end < n)
    return {
        "segment": seg, "n": n, "first": first[seg], "type": m, "row": r, "col": c, "cell": cell,
        "kind": kind, "offset": off, "start": start, "end": end, "valid": valid,
    }  # fmt: skip


@dataclass(frozen=True)
class VoteDecoder:
    """Decoding of one segment by one of ``DECODE_RULES`` (``spacy_nested.offset_votes.v1``)."""

    rule: str

    def __post_init__(self) -> None:
        check_rule(self.rule)

    def __call__(self, probs: numpy.ndarray, max_offset: int, threshold: float) -> ScoredSpans:
        return decode(probs, max_offset, self.rule, threshold)

    def segments(
        self, logits: numpy.ndarray, lengths: Sequence[int], n_types: int, max_offset: int, threshold: float
    ) -> List[ScoredSpans]:
        """Many segments at once, from the head's logits (``decode_segments``)."""
        return decode_segments(logits, lengths, n_types, max_offset, self.rule, threshold)


def check_rule(rule: str) -> None:
    if rule not in DECODE_RULES:
        raise ValueError(f"unknown decode rule '{rule}'; choose one of {DECODE_RULES}")


def decode(probs: numpy.ndarray, max_offset: int, rule: str, threshold: float) -> ScoredSpans:
    """Spans of one segment from its (M, N, N, L) cell probabilities (see module docstring).

    A span's score is the mean probability of the cells that voted for it; spans scoring
    below ``threshold`` are dropped (0 keeps all that the rule emits).
    """
    M, N = probs.shape[0], probs.shape[1]
    with numpy.errstate(divide="ignore"):  # a probability of 0 is a logit of -inf
        logits = numpy.log(probs.reshape(M * N * N, probs.shape[-1]))
    return decode_segments(logits, [N], M, max_offset, rule, threshold)[0]


def decode_segments(
    logits: numpy.ndarray, lengths: Sequence[int], n_types: int, max_offset: int, rule: str, threshold: float
) -> List[ScoredSpans]:
    """``decode`` of many segments at once, from the head's ``logits`` (C, L): their cells
    concatenated segment by segment, each block in (type, row, col) order of its
    ``(M, n, n)`` grid. The spans and scores are those of ``decode`` on each segment's
    softmax.

    A fifth of boundary_offset's prediction time went to decoding: a softmax over every
    cell, then an argmax and a max over it, one segment at a time. The argmax of the
    logits is that of the softmax, and most cells are out-of-range and never vote, so the
    softmax is taken only of the voting cells, and all segments go through numpy at once.
    """
    check_rule(rule)
    empty = [ScoredSpans.empty() for _ in lengths]
    if logits.size == 0:
        return empty
    labels = logits.argmax(-1)
    v = votes(labels, lengths, n_types, max_offset)
    keep = v["valid"] & _vote_filter(v, labels, rule, max_offset)
    if not keep.any():
        return empty
    # one integer per (segment, type, start, end), ordered as those tuples
    width = max(int(max(lengths)), 1)
    key = ((v["segment"] * n_types + v["type"]) * width + v["start"]) * width + v["end"]
    voting = logits[v["cell"][keep]]
    scores = 1.0 / numpy.exp(voting - voting.max(-1, keepdims=True)).sum(-1)  # the softmax at the argmax
    key, kind = key[keep], v["kind"][keep]
    uniq, inverse = numpy.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)

    def count(mask: numpy.ndarray) -> numpy.ndarray:
        return numpy.bincount(inverse, weights=mask.astype("float64"), minlength=len(uniq))

    is_centre, n_start, n_end = count(kind == 3) > 0, count(kind == 1), count(kind == 2)
    if rule == "votes":
        S = max(int(max_offset), 1)
        emit = is_centre | (n_start >= S) | (n_end >= S)
    elif rule == "centre":
        emit = is_centre
    else:
        emit = numpy.ones(len(uniq), dtype=bool)
    mean_score = numpy.bincount(inverse, weights=scores, minlength=len(uniq)) / numpy.bincount(inverse, minlength=len(uniq))
    emit &= mean_score >= threshold
    rest, end = numpy.divmod(uniq[emit], width)
    rest, start = numpy.divmod(rest, width)
    segment, span_type = numpy.divmod(rest, n_types)
    spans = numpy.stack([start, end + 1, span_type], axis=1).astype("int64")
    span_scores = mean_score[emit].astype("float32")
    bounds = numpy.searchsorted(segment, numpy.arange(len(lengths) + 1))
    return [
        ScoredSpans(spans[a:b], span_scores[a:b]) if b > a else ScoredSpans.empty() for a, b in zip(bounds[:-1], bounds[1:])
    ]


def _vote_filter(v: Dict[str, numpy.ndarray], labels: numpy.ndarray, rule: str, max_offset: int) -> numpy.ndarray:
    """Which votes count: all of them, except under the paper's rules."""
    if rule == "centre":
        return v["kind"] == 3
    if rule != "paper":
        return numpy.ones(len(v["kind"]), dtype=bool)
    kinds, offsets = label_tables(max_offset)
    n, m = v["n"], v["type"]

    def label_at(row: numpy.ndarray, col: numpy.ndarray) -> numpy.ndarray:
        """The label of cell (type, row, col) of each vote's own segment, clipped into it."""
        return labels[v["first"] + (m * n + row.clip(0, n - 1)) * n + col.clip(0, n - 1)]

    is_offset = (v["kind"] == 1) | (v["kind"] == 2)
    # (i) the target cell must not itself point elsewhere
    target_kind = kinds[label_at(v["start"], v["end"])]
    aligned = (target_kind == 0) | (target_kind == 3)
    # (ii) the neighbour one step towards the target holds the next smaller offset
    step = numpy.sign(v["offset"])
    nr = numpy.where(v["kind"] == 1, v["row"] - step, v["row"])
    nc = numpy.where(v["kind"] == 2, v["col"] - step, v["col"])
    neighbour = label_at(nr, nc)
    ordered = (numpy.abs(v["offset"]) <= 1) | (
        (kinds[neighbour] == v["kind"]) & (offsets[neighbour] == v["offset"] - step)
    )
    return ~is_offset | (aligned & ordered)
