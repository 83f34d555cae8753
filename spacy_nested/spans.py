"""Span utilities shared by every detector (numpy only, no spaCy, no torch).

Conventions: a span is a half-open token interval ``[start, end)``, as in
``spacy.tokens.Span``. Arrays of spans are ``(n, 2)`` int arrays; labelled
spans carry a third column with the label index.

What lives here:

* scored spans (``ScoredSpans``), the removal of duplicates (``dedupe_max``)
  and the pairs of spans that overlap or cross,
* segmentation of documents into sentences or bounded windows, so that every
  head sees inputs of bounded length whatever the document length
  (``Segmenter``), the stitching of overlapping windows, and the runs of
  segments the head scores at once at prediction, sorted by length
  (``chunk_segments``), and the groups of similar length inside a batch that the
  heads with quadratic grids pad separately (``length_groups``),
* splitting the rows of a flat head output back into its segments
  (``split_rows``) and a numpy ``softmax`` for decoding,
* the class choice of decoders with a None class (``best_entity``): Locate
  and Label and the proposer-regressor both take the most probable entity
  class and, with the papers' rule, drop the span when None is more probable
  (the "None veto").

Registered name (``registrations.py``): ``spacy_nested.segments.v1``.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, TypeVar, Union

import numpy

Segment = Tuple[int, int, int]  # (doc index, start token, end token)










def crosses(a: Tuple[int, int], b: Tuple[int, int]) -> bool:
    """True when two spans partially overlap (overlap without nesting)."""
    return bool(paired_crosses(numpy.asarray(a), numpy.asarray(b)))


def paired_crosses(a: numpy.ndarray, b: numpy.ndarray) -> numpy.ndarray:
    """Whether ``a[..., i]`` and ``b[..., i]`` partially overlap, for broadcastable (..., 2) spans."""
    overlap = numpy.minimum(a[..., 1], b[..., 1]) > numpy.maximum(a[..., 0], b[..., 0])
    a_in_b = (b[..., 0] <= a[..., 0]) & (a[..., 1] <= b[..., 1])
    b_in_a = (a[..., 0] <= b[..., 0]) & (b[..., 1] <= a[..., 1])
    return overlap & ~(a_in_b | b_in_a)


@dataclass
class ScoredSpans:
    """Decoded spans of one segment: ``spans`` (n, 3) start, end, label; ``scores`` (n,)."""

    spans: numpy.ndarray
    scores: numpy.ndarray

    @classmethod
    def empty(cls) -> "ScoredSpans":
        return cls(numpy.zeros((0, 3), dtype="int64"), numpy.zeros((0,), dtype="float32"))

    def __len__(self) -> int:
        return int(self.spans.shape[0])

    def shifted(self, offset: int) -> "ScoredSpans":
        spans = self.spans.copy()
        spans[:, :2] += offset
        return ScoredSpans(spans, self.scores)


def dedupe_max(spans: numpy.ndarray, scores: numpy.ndarray) -> ScoredSpans:
    """One row per (start, end, label), keeping the highest score.

    The authors' code instead adds the first score once per duplicate, a voting
    boost that pushes scores above 1; we keep scores in [0, 1].
    """
    if len(spans) == 0:
        return ScoredSpans.empty()
    order = numpy.argsort(-scores, kind="stable")
    seen = set()
    keep = []
    for i in order:
        key = tuple(int(v) for v in spans[i])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    keep_arr = numpy.asarray(keep, dtype="int64")
    return ScoredSpans(spans[keep_arr].astype("int64"), scores[keep_arr].astype("float32"))




def overlapping_pairs(spans: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Row indices ``(I, J)``, ``I < J``, of every pair of spans sharing a token, once.

    Sorted by start, a span only meets the spans that start before its end;
    the pairs are found one sort-distance at a time, vectorised over the spans
    still meeting one: O(K log K + pairs), never a K×K matrix.
    """
    spans = numpy.asarray(spans, dtype="int64").reshape(-1, 2)
    order = numpy.lexsort((spans[:, 1], spans[:, 0]))
    order = order[spans[order, 1] > spans[order, 0]]  # empty spans share no token
    starts, ends = spans[order, 0], spans[order, 1]
    stop = numpy.searchsorted(starts, ends, side="left")  # rows a+1..stop-1 start inside row a
    active = numpy.arange(len(order))
    firsts, seconds = [], []
    distance = 1
    while True:
        active = active[active + distance < stop[active]]
        if active.size == 0:
            break
        firsts.append(order[active])
        seconds.append(order[active + distance])
        distance += 1
    if not firsts:
        empty = numpy.zeros(0, dtype="int64")
        return empty, empty
    i, j = numpy.concatenate(firsts), numpy.concatenate(seconds)
    return numpy.minimum(i, j), numpy.maximum(i, j)






def segment_docs(
    doc_lengths: Sequence[int],
    sent_starts: Sequence[Optional[Sequence[int]]],
    max_length: Optional[int] = None,
    overlap: int = 0,
) -> List[Segment]:
    """Cut documents into the units a head processes.

    A document with sentence boundaries is processed sentence by sentence
    (``sent_starts[i]`` lists the sentence start tokens), otherwise whole.
    With ``max_length``, any unit longer than that is cut into windows of at
    most ``max_length`` tokens, consecutive windows sharing ``overlap`` tokens,
    so the cost of a head is bounded by the window, never by the document
    length. Empty documents yield no segment. ``stitch`` merges the spans found
    in overlapping windows.
    """
    check_windows(max_length, overlap)
    segments: List[Segment] = []
    for doc_i, (n, starts) in enumerate(zip(doc_lengths, sent_starts)):
        bounds = list(starts) if starts else [0]
        bounds = sorted(set(b for b in bounds if 0 <= b < n) | {0}) if n else []
        for s, e in zip(bounds, bounds[1:] + [n]):
            segments.extend(_windows(doc_i, s, e, max_length, overlap))
    return segments


def check_windows(max_length: Optional[int], overlap: int) -> None:
    if max_length is not None and max_length < 0:
        raise ValueError(f"window max_length must be null, 0 (no limit) or positive: got {max_length}")
    if max_length and not 0 <= overlap < max_length:
        raise ValueError(f"window overlap must be in [0, max_length): got {overlap} with max_length {max_length}")


def _windows(doc_i: int, start: int, end: int, max_length: Optional[int], overlap: int) -> List[Segment]:
    if not max_length or end - start <= max_length:
        return [(doc_i, start, end)]
    windows = []
    s = start
    while True:
        e = min(end, s + max_length)
        windows.append((doc_i, s, e))
        if e == end:
            return windows
        s += max_length - overlap


def stitch(parts: Sequence[ScoredSpans], bounds: Sequence[Tuple[int, int]]) -> ScoredSpans:
    """Merge the spans of one document's segments (already in document coordinates).

    Each span is kept from exactly one segment, its *owner*: among the segments
    that contain it, the one where it lies farthest from a window edge that
    another segment straddles (sentence and document edges are not window
    edges and count as infinitely far); ties go to the earlier segment. A span
    found by two overlapping windows is therefore output once, and a span
    truncated at a window edge loses to the window that sees it whole.
    Non-overlapping segments (sentences) keep all their spans. (A span that no
    segment contains belongs to the first segment.)

    Cost: O((S + K) log S + P) for S segments and K spans, where P counts the
    pairs of a span and a segment that starts at most the longest segment's
    length before the span's end (the only segments that can contain it: a few
    per span for windows), handled in bounded batches; never a K×S or S×S array,
    so a document of any length stitches in memory bounded by its spans.
    """
    parts = [p for p in parts]
    if not parts:
        return ScoredSpans.empty()
    spans = numpy.concatenate([p.spans for p in parts]).reshape(-1, 3).astype("int64")
    scores = numpy.concatenate([p.scores for p in parts]).astype("float32")
    source = numpy.concatenate([numpy.full(len(p), k) for k, p in enumerate(parts)]).astype("int64")
    b = numpy.asarray(bounds, dtype="int64").reshape(-1, 2)
    soft_left, soft_right = _straddled(b, b[:, 0]), _straddled(b, b[:, 1])
    if len(spans) == 0 or not (soft_left.any() or soft_right.any()):
        return ScoredSpans(spans, scores)
    keep = _owners(b, soft_left, soft_right, spans[:, 0], spans[:, 1]) == source
    return ScoredSpans(spans[keep], scores[keep])


def _straddled(bounds: numpy.ndarray, x: numpy.ndarray) -> numpy.ndarray:
    """Whether some segment ``[s, e)`` of ``bounds`` has ``s < x < e``, for each ``x``."""
    order = numpy.argsort(bounds[:, 0], kind="stable")
    starts = bounds[order, 0]
    reach = numpy.maximum.accumulate(bounds[order, 1]) if len(bounds) else bounds[:0, 1]
    before = numpy.searchsorted(starts, x, side="left")  # the segments with s < x: a prefix
    return numpy.asarray((before > 0) & (reach[numpy.maximum(before - 1, 0)] > x))


STITCH_BATCH_PAIRS = 1 << 20  # (span, segment) pairs per batch of _owners


def _owners(
    bounds: numpy.ndarray, soft_left: numpy.ndarray, soft_right: numpy.ndarray, a: numpy.ndarray, e: numpy.ndarray
) -> numpy.ndarray:
    """For each span ``[a, e)``, the first segment of largest margin among those containing it
    (0 when none does); the margin is the distance to the nearer soft edge (inf when neither is)."""
    order = numpy.argsort(bounds[:, 0], kind="stable")
    starts = bounds[order, 0]
    longest = int((bounds[:, 1] - bounds[:, 0]).max())
    first = numpy.searchsorted(starts, e - longest, side="left")  # s >= e - longest (else e_k < e)
    stop = numpy.searchsorted(starts, a, side="right")  # s <= a
    counts = numpy.maximum(stop - first, 0)
    total = numpy.cumsum(counts)
    owners = numpy.zeros(len(a), dtype="int64")
    done = 0
    while done < len(a):
        # spans [done, upto) make a batch of at most STITCH_BATCH_PAIRS pairs (one span at least)
        base = int(total[done - 1]) if done else 0
        upto = max(done + 1, int(numpy.searchsorted(total, base + STITCH_BATCH_PAIRS, side="right")))
        n = counts[done:upto]
        span = numpy.repeat(numpy.arange(done, upto), n)
        offset = numpy.arange(len(span)) - numpy.repeat(numpy.cumsum(n) - n, n)
        k = order[first[span] + offset]
        s_k, e_k = bounds[k, 0], bounds[k, 1]
        contains = (s_k <= a[span]) & (e_k >= e[span])
        left = numpy.where(soft_left[k], a[span] - s_k, numpy.inf)
        right = numpy.where(soft_right[k], e_k - e[span], numpy.inf)
        margin = numpy.where(contains, numpy.minimum(left, right), -1.0)
        best = numpy.lexsort((k, -margin, span))  # per span: the largest margin, then the first segment
        head = best[numpy.r_[True, span[best][1:] != span[best][:-1]]] if len(best) else best
        owners[span[head]] = numpy.where(margin[head] >= 0, k[head], 0)
        done = upto
    return owners


@dataclass(frozen=True)
class Segmenter:
    """How documents are cut into the segments a head processes (``segment_docs``).

    Registered as ``spacy_nested.segments.v1``: every detector's ``segmenter``.
    Sentences when a doc has sentence starts; any unit longer than
    ``max_length`` tokens (null: no limit) is cut into windows that share
    ``overlap`` tokens, whose spans are stitched.
    """

    max_length: Optional[int]
    overlap: int

    def __post_init__(self) -> None:
        check_windows(self.max_length, self.overlap)  # a bad setting fails when the pipeline is built

    def __call__(self, doc_lengths: Sequence[int], sent_starts: Sequence[Optional[Sequence[int]]]) -> List[Segment]:
        return segment_docs(doc_lengths, sent_starts, self.max_length, self.overlap)


def chunk_segments(segments: Sequence[Segment], max_tokens: int) -> List[List[int]]:
    """Runs of segment indices, shortest segments first, each of at most `max_tokens` padded
    tokens (its number of segments times its longest; a longer segment alone).

    A head pads a run to its longest segment, and its attention and span grids grow with the
    square of that length: runs of similar lengths waste little on padding.
    """
    order = sorted(range(len(segments)), key=lambda i: (segments[i][2] - segments[i][1], i))
    chunks: List[List[int]] = []
    for i in order:
        n = segments[i][2] - segments[i][1]  # the longest of its run so far: the order is by length
        if not chunks or (len(chunks[-1]) + 1) * n > max_tokens:
            chunks.append([])
        chunks[-1].append(i)
    return chunks


def length_groups(lengths: Sequence[int], max_cells: int) -> List[List[int]]:
    """Indices grouped by similar length, longest first; a group is cut when it
    would exceed ``max_cells`` padded cells (members x the longest squared) or a
    member is < 3/4 of its longest.

    The heads with grids or attention quadratic in a segment's length run each
    group padded to its own longest member, instead of the batch padded to the
    longest segment of all.
    """
    order = sorted(range(len(lengths)), key=lambda b: (-lengths[b], b))
    groups: List[List[int]] = []
    for b in order:
        if groups:
            top = lengths[groups[-1][0]]
            if (len(groups[-1]) + 1) * top * top <= max_cells and 4 * lengths[b] >= 3 * top:
                groups[-1].append(b)
                continue
        groups.append([b])
    return groups


Rows = TypeVar("Rows")  # anything sliced along its first axis: a numpy array or a torch tensor


def split_rows(rows: Rows, sizes: Union[Sequence[int], numpy.ndarray]) -> List[Rows]:
    """Consecutive slices of ``rows`` of ``sizes[i]`` rows each (one per segment)."""
    bounds = numpy.concatenate([[0], numpy.cumsum(numpy.asarray(sizes, dtype="int64"))]).tolist()
    return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])]  # type: ignore[index]


def best_entity(probs: numpy.ndarray, none_column: int) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Per row of class probabilities: the most probable entity class, its probability and p(None).

    ``probs`` (n, M + 1) holds None in column ``none_column`` (0 or M); the returned class is
    the index among the M entity columns (0..M-1), ties to the lower index.
    """
    probs = numpy.asarray(probs)
    if none_column not in (0, probs.shape[1] - 1):
        raise ValueError(f"None must be the first or last of {probs.shape[1]} columns, got column {none_column}")
    entities = probs[:, 1:] if none_column == 0 else probs[:, :-1]
    label = entities.argmax(axis=1)
    return label, entities[numpy.arange(len(probs)), label], probs[:, none_column]


def softmax(logits: numpy.ndarray) -> numpy.ndarray:
    """Softmax over the last axis (numpy; decoding works on numpy outputs)."""
    if logits.size == 0:
        return logits
    z = numpy.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
