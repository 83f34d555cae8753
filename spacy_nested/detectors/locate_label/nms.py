"""Locate and Label's decoding of overlapping candidates, numpy only.

1-D IoU between spans (§2.2), Soft-NMS (eq. 18 and Algorithm 1) and the
removal of crossing spans that Soft-NMS leaves.
"""
import heapq
from typing import List

import numpy

from spacy_nested.spans import ScoredSpans, overlapping_pairs, paired_crosses


def iou(a: numpy.ndarray, b: numpy.ndarray) -> numpy.ndarray:
    """Pairwise 1-D IoU of half-open spans: ``a`` (n, 2), ``b`` (m, 2) -> (n, m).

    IoU(A, B) = |A ∩ B| / |A ∪ B| (Locate and Label §2.2), 0 when disjoint.
    """
    a = numpy.asarray(a, dtype="float64").reshape(-1, 2)
    b = numpy.asarray(b, dtype="float64").reshape(-1, 2)
    return paired_iou(a[:, None, :], b[None, :, :])


def paired_iou(a: numpy.ndarray, b: numpy.ndarray) -> numpy.ndarray:
    """IoU of ``a[..., i]`` with ``b[..., i]`` for broadcastable (..., 2) span arrays."""
    a = numpy.asarray(a, dtype="float64")
    b = numpy.asarray(b, dtype="float64")
    inter = numpy.minimum(a[..., 1], b[..., 1]) - numpy.maximum(a[..., 0], b[..., 0])
    union = numpy.maximum(a[..., 1], b[..., 1]) - numpy.minimum(a[..., 0], b[..., 0])
    return numpy.where(inter > 0, inter / numpy.maximum(union, 1e-12), 0.0)


def soft_nms(
    spans: numpy.ndarray, scores: numpy.ndarray, *, iou_threshold: float, decay: float, threshold: float
) -> ScoredSpans:
    """Soft-NMS as in Locate and Label Algorithm 1 and eq. 18.

    Repeatedly take the highest-scoring remaining span (ties: the earlier
    row), output it, and multiply the score of every remaining span whose IoU
    with it is ``>= iou_threshold`` (k) by ``decay`` (u); the remaining spans
    are re-sorted each round (the authors' single pass skips that). Spans whose
    final score is ``> threshold`` (δ) are returned, highest first. Scores only
    ever shrink, so they stay in [0, 1].

    Cost: the result is exactly that of the dense algorithm, computed without
    its K×K IoU matrix, so a 20,000-token document is no problem. Since scores
    only shrink, a span at or below δ can never be output, and every span
    taken before an output span scored above δ when it was taken; so spans
    starting at or below δ are dropped first, rounds stop once the best score
    is at or below δ, and each span decays only its overlapping neighbours
    (IoU ≥ k > 0 needs an overlap), kept in a heap.
    """
    above = numpy.flatnonzero(numpy.asarray(scores) > threshold)
    if above.size == 0:
        return ScoredSpans.empty()
    spans, current = spans[above], numpy.asarray(scores, dtype="float64")[above].copy()
    neighbours = _iou_neighbours(spans[:, :2], iou_threshold)
    heap = [(-score, i) for i, score in enumerate(current.tolist())]
    heapq.heapify(heap)
    taken = numpy.zeros(len(spans), dtype=bool)
    out: List[int] = []
    while heap:
        neg_score, best = heapq.heappop(heap)
        if taken[best] or -neg_score != current[best]:
            continue  # a stale entry: the span was taken, or decayed since it was pushed
        if current[best] <= threshold:
            break
        taken[best] = True
        out.append(best)
        for j in neighbours[best]:
            if not taken[j]:
                current[j] *= decay
                heapq.heappush(heap, (-current[j], j))
    keep = numpy.asarray(out, dtype="int64")
    if keep.size == 0:
        return ScoredSpans.empty()
    return ScoredSpans(spans[keep].astype("int64"), current[keep].astype("float32"))


def _iou_neighbours(spans: numpy.ndarray, iou_threshold: float) -> List[List[int]]:
    """For each row, the other rows with IoU ``>= iou_threshold``, in row order."""
    n = len(spans)
    if iou_threshold <= 0:  # IoU 0 counts too: every other span is a neighbour
        return [[j for j in range(n) if j != i] for i in range(n)]
    i, j = overlapping_pairs(spans)
    close = paired_iou(spans[i], spans[j]) >= iou_threshold
    i, j = numpy.concatenate([i[close], j[close]]), numpy.concatenate([j[close], i[close]])
    order = numpy.lexsort((j, i))
    bounds = numpy.searchsorted(i[order], numpy.arange(n + 1))
    rows = j[order].tolist()
    return [rows[bounds[k] : bounds[k + 1]] for k in range(n)]


def remove_crossing(spans: numpy.ndarray, scores: numpy.ndarray) -> ScoredSpans:
    """The authors' extra decoding step: drop *both* members of every crossing pair."""
    i, j = overlapping_pairs(spans[:, :2])
    crossing = paired_crosses(spans[i, :2], spans[j, :2])
    bad = numpy.zeros(len(spans), dtype=bool)
    bad[i[crossing]] = bad[j[crossing]] = True
    keep = numpy.flatnonzero(~bad)
    if keep.size == 0:
        return ScoredSpans.empty()
    return ScoredSpans(spans[keep], scores[keep])
