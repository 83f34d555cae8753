import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacy_nested.detectors.locate_label.nms import iou, remove_crossing, soft_nms
from spacy_nested.detectors.locate_label.seeds import enumerate_seeds, make_window_seeds
from spacy_nested.spans import (
    ScoredSpans,
    best_entity,
    crosses,
    dedupe_max,
    length_groups,
    overlapping_pairs,
    segment_docs,
    stitch,
)


def test_enumerate_seeds_order_and_count():
    seeds = enumerate_seeds(4, [1, 2])
    assert seeds.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [0, 2], [1, 3], [2, 4]]


@given(st.integers(0, 60), st.sets(st.integers(1, 12), min_size=1))
def test_enumerate_seeds_every_window_once(length, widths):
    seeds = enumerate_seeds(length, sorted(widths))
    expected = {(s, s + w) for w in widths for s in range(0, length - w + 1)}
    assert {tuple(r) for r in seeds.tolist()} == expected
    assert len(seeds) == len(expected)  # no duplicates, unlike the code's truncated windows


def test_window_seeds_registered_range():
    assert make_window_seeds(1, 10) == list(range(1, 11))
    with pytest.raises(ValueError):
        make_window_seeds(3, 2)


def test_iou_hand_values():
    a = numpy.array([[0, 4], [2, 3], [10, 12]])
    b = numpy.array([[2, 6]])
    # [0,4) vs [2,6): inter 2, union 6; [2,3) inside: 1/4; disjoint: 0
    assert numpy.allclose(iou(a, b).ravel(), [2 / 6, 1 / 4, 0.0])
    assert iou(numpy.array([[0, 1]]), numpy.array([[1, 2]]))[0, 0] == 0.0  # touching is not overlapping


def test_crosses():
    assert crosses((0, 3), (2, 5))
    assert not crosses((0, 5), (2, 3))
    assert not crosses((0, 2), (2, 4))


def test_dedupe_keeps_highest_score_without_boost():
    spans = numpy.array([[0, 2, 1], [0, 2, 1], [0, 2, 0]])
    out = dedupe_max(spans, numpy.array([0.4, 0.7, 0.5]))
    assert sorted(map(tuple, out.spans.tolist())) == [(0, 2, 0), (0, 2, 1)]
    assert out.scores.max() == pytest.approx(0.7)


def test_soft_nms_decays_overlapping_and_resorts():
    spans = numpy.array([[0, 10, 0], [0, 9, 0], [20, 22, 1], [1, 10, 0]])
    scores = numpy.array([0.9, 0.5, 0.49, 0.48])
    out = soft_nms(spans, scores, iou_threshold=0.7, decay=0.9, threshold=0.45)
    # [0,9) and [1,10) have IoU 0.9 with [0,10): 0.5 -> 0.45 (not > δ); [1,10) is decayed twice
    # (0.48 * 0.9 * 0.9 by [0,10) and then [0,9) whose IoU with it is 0.8)
    assert out.spans.tolist() == [[0, 10, 0], [20, 22, 1]]
    assert out.scores.tolist() == pytest.approx([0.9, 0.49])


def test_soft_nms_below_k_is_untouched_and_k_is_inclusive():
    spans = numpy.array([[0, 4, 0], [0, 2, 0], [0, 3, 0]])
    out = soft_nms(spans, numpy.array([0.9, 0.8, 0.7]), iou_threshold=0.75, decay=0.5, threshold=0.0)
    got = dict(zip(map(tuple, out.spans.tolist()), out.scores.tolist()))
    assert got[(0, 2, 0)] == pytest.approx(0.8)  # IoU 0.5 < k
    # IoU([0,3),[0,4)) = 0.75 >= k (inclusive, eq. 18) -> decayed once; IoU with [0,2) = 2/3 < k
    assert got[(0, 3, 0)] == pytest.approx(0.35)


def test_remove_crossing_drops_both():
    spans = numpy.array([[0, 3, 0], [2, 5, 0], [0, 5, 1]])
    out = remove_crossing(spans, numpy.array([0.9, 0.1, 0.8]))
    assert out.spans.tolist() == [[0, 5, 1]]


def test_segment_docs_sentences_windows_and_empty():
    segs = segment_docs([10, 0, 7], [[0, 4], None, None], max_length=3)
    assert segs == [(0, 0, 3), (0, 3, 4), (0, 4, 7), (0, 7, 10), (2, 0, 3), (2, 3, 6), (2, 6, 7)]
    assert segment_docs([5], [None]) == [(0, 0, 5)]


def test_overlapping_windows_cover_the_unit_and_share_overlap_tokens():
    segs = segment_docs([23], [None], max_length=10, overlap=4)
    assert segs == [(0, 0, 10), (0, 6, 16), (0, 12, 22), (0, 18, 23)]
    assert segment_docs([8], [None], max_length=10, overlap=4) == [(0, 0, 8)]
    with pytest.raises(ValueError, match="overlap"):
        segment_docs([8], [None], max_length=4, overlap=4)


@given(st.integers(1, 80), st.integers(2, 12), st.data())
def test_overlapping_windows_property(n, width, data):
    overlap = data.draw(st.integers(0, width - 1))
    segs = segment_docs([n], [None], max_length=width, overlap=overlap)
    assert segs[0][1] == 0 and segs[-1][2] == n
    assert all(e - s <= width for _, s, e in segs)
    for (_, s1, e1), (_, s2, e2) in zip(segs, segs[1:]):
        assert e1 - s2 == overlap or e2 == n  # consecutive windows share `overlap` tokens


def _found(rows, score=0.5):
    spans = numpy.asarray(rows, dtype="int64").reshape(-1, 3)
    return ScoredSpans(spans, numpy.full(len(spans), score, dtype="float32"))


def test_stitch_keeps_a_span_found_by_two_windows_once():
    bounds = [(0, 10), (6, 16)]
    both = (7, 9, 0)  # in the overlap, 1 token from each window's inner edge: a tie
    parts = [_found([both, (1, 3, 1)], 0.4), _found([both, (12, 15, 1)], 0.6)]
    out = stitch(parts, bounds)
    assert sorted(map(tuple, out.spans.tolist())) == [(1, 3, 1), (7, 9, 0), (12, 15, 1)]
    assert out.scores[out.spans.tolist().index(list(both))] == pytest.approx(0.4)  # tie: earlier window


def test_stitch_prefers_the_window_that_sees_a_span_whole():
    bounds = [(0, 10), (6, 16)]
    truncated = (7, 10, 0)  # window 1 cut the entity (7, 12) at its right edge
    crossing = (7, 12, 0)  # crosses window 1's edge, whole inside window 2
    out = stitch([_found([truncated]), _found([crossing])], bounds)
    # the truncated copy belongs to window 2 (margin 1 there, 0 in window 1), which did not find it
    assert out.spans.tolist() == [list(crossing)]


def test_stitch_leaves_sentence_segments_alone():
    bounds = [(0, 5), (5, 9)]
    parts = [_found([(0, 5, 0), (4, 5, 1)]), _found([(5, 9, 0)])]
    assert len(stitch(parts, bounds)) == 3
    assert len(stitch([], [])) == 0


def _reference_stitch(parts, bounds):
    """The dense stitch (K×S and S×S arrays): the oracle for spans.stitch."""
    parts = list(parts)
    if not parts:
        return ScoredSpans.empty()
    spans = numpy.concatenate([p.spans for p in parts]).reshape(-1, 3)
    scores = numpy.concatenate([p.scores for p in parts])
    source = numpy.concatenate([numpy.full(len(p), k) for k, p in enumerate(parts)]).astype("int64")
    b = numpy.asarray(bounds, dtype="int64").reshape(-1, 2)

    def straddled(x):
        return ((b[:, 0][None, :] < x[:, None]) & (x[:, None] < b[:, 1][None, :])).any(axis=1)

    soft_left, soft_right = straddled(b[:, 0]), straddled(b[:, 1])
    if len(spans) == 0 or not (soft_left.any() or soft_right.any()):
        return ScoredSpans(spans.astype("int64"), scores.astype("float32"))
    a, e = spans[:, :1], spans[:, 1:2]
    contains = (a >= b[None, :, 0]) & (e <= b[None, :, 1])
    left = numpy.where(soft_left[None, :], a - b[None, :, 0], numpy.inf)
    right = numpy.where(soft_right[None, :], b[None, :, 1] - e, numpy.inf)
    margin = numpy.where(contains, numpy.minimum(left, right), -1.0)
    keep = margin.argmax(axis=1) == source
    return ScoredSpans(spans[keep].astype("int64"), scores[keep].astype("float32"))


def _assert_same_stitch(parts, bounds):
    got, expected = stitch(parts, bounds), _reference_stitch(parts, bounds)
    assert got.spans.dtype == expected.spans.dtype and got.scores.dtype == expected.scores.dtype
    assert got.spans.tolist() == expected.spans.tolist()
    assert got.scores.tolist() == expected.scores.tolist()


_segment = st.tuples(st.integers(0, 30), st.integers(0, 12))  # start, length (0: an empty segment)
_inner = st.lists(st.tuples(st.integers(-2, 14), st.integers(0, 6), st.integers(0, 2)), max_size=6)


@given(st.lists(st.tuples(_segment, _inner), max_size=8))
def test_stitch_equals_the_dense_reference_on_any_segments(rows):
    """Any bounds (nested, duplicate, disjoint), spans in and out of their segment, ties."""
    bounds = [(s, s + n) for (s, n), _ in rows]
    parts = [
        ScoredSpans(
            numpy.asarray([(s + x, s + x + w, label) for x, w, label in spans], dtype="int64").reshape(-1, 3),
            numpy.arange(len(spans), dtype="float32") / 10,
        )
        for (s, _), spans in rows
    ]
    _assert_same_stitch(parts, bounds)


@given(st.integers(1, 300), st.integers(2, 40), st.data())
def test_stitch_equals_the_dense_reference_on_windows(n, width, data):
    overlap = data.draw(st.integers(0, width - 1))
    starts = data.draw(st.lists(st.integers(0, n), max_size=4))  # sentence starts: some units are cut
    segments = segment_docs([n], [sorted(set(starts)) or None], max_length=width, overlap=overlap)
    rng = numpy.random.default_rng(data.draw(st.integers(0, 2**16)))
    parts = []
    for _, s, e in segments:
        k = int(rng.integers(0, 6))
        a = rng.integers(s, e, size=k)
        ends = numpy.minimum(e, a + rng.integers(1, 8, size=k))
        parts.append(ScoredSpans(numpy.stack([a, ends, rng.integers(0, 3, size=k)], axis=1), rng.random(k).astype("float32")))
    _assert_same_stitch(parts, [(s, e) for _, s, e in segments])


def test_stitch_in_small_batches_equals_the_reference(monkeypatch):
    import spacy_nested.spans as spans_module

    monkeypatch.setattr(spans_module, "STITCH_BATCH_PAIRS", 3)
    segments = segment_docs([500], [None], max_length=20, overlap=6)
    rng = numpy.random.default_rng(0)
    parts = []
    for _, s, e in segments:
        a = rng.integers(s, e, size=5)
        parts.append(ScoredSpans(numpy.stack([a, numpy.minimum(e, a + 3), a % 2], axis=1), rng.random(5).astype("float32")))
    _assert_same_stitch(parts, [(s, e) for _, s, e in segments])
    assert 0 < len(stitch(parts, [(s, e) for _, s, e in segments])) < sum(len(p) for p in parts)


def test_stitch_of_a_long_document_needs_no_segment_matrix():
    segments = segment_docs([2_000_000], [None], max_length=100, overlap=25)  # 26,667 windows
    parts = []
    for _, s, e in segments:  # a span in the middle, and one at each end of the window's overlaps
        rows = [[s + x, s + x + 4, label] for x, label in ((5, 1), (40, 0), (80, 1)) if s + x + 4 <= e]
        parts.append(ScoredSpans(numpy.asarray(rows), numpy.full(len(rows), 0.5, dtype="float32")))
    out = stitch(parts, [(s, e) for _, s, e in segments])  # the dense arrays would need 80,000 x 26,667 cells
    found = sorted(map(tuple, numpy.concatenate([p.spans for p in parts]).tolist()))
    assert sorted(map(tuple, out.spans.tolist())) == sorted(set(found))  # each span of an overlap once
    assert len(found) > len(out) > len(segments)


def _dense_soft_nms(spans, scores, iou_threshold, decay, threshold):
    """Algorithm 1 with the full IoU matrix: the oracle for the sparse soft_nms."""
    remaining, current = list(range(len(spans))), scores.astype("float64").copy()
    overlaps = iou(spans[:, :2], spans[:, :2])
    out = []
    while remaining:
        best = max(remaining, key=lambda i: (current[i], -i))
        remaining.remove(best)
        out.append(best)
        for j in remaining:
            if overlaps[best, j] >= iou_threshold:
                current[j] *= decay
    return [(tuple(spans[i].tolist()), current[i]) for i in out if current[i] > threshold]


_span_rows = st.lists(
    st.tuples(st.integers(0, 12), st.integers(1, 5), st.integers(0, 2), st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0])),
    max_size=25,
)


@given(_span_rows, st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.0, 0.45]))
def test_soft_nms_equals_the_dense_algorithm(rows, k, u, delta):
    spans = numpy.asarray([(s, s + w, label) for s, w, label, _ in rows], dtype="int64").reshape(-1, 3)
    scores = numpy.asarray([score for *_, score in rows], dtype="float64")
    out = soft_nms(spans, scores, iou_threshold=k, decay=u, threshold=delta)
    expected = _dense_soft_nms(spans, scores, k, u, delta)
    assert [tuple(row) for row in out.spans.tolist()] == [row for row, _ in expected]
    assert out.scores.tolist() == pytest.approx([score for _, score in expected])


@pytest.mark.slow
def test_soft_nms_of_a_document_of_seeds_needs_no_pairwise_matrix():
    spans = numpy.concatenate([enumerate_seeds(20_000, range(1, 11)), numpy.zeros((199_955, 1), dtype="int64")], axis=1)
    scores = numpy.full(len(spans), 0.5)
    out = soft_nms(spans, scores, iou_threshold=0.7, decay=0.9, threshold=0.45)  # a dense IoU would need 320 GB
    assert len(out) > 20_000


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), max_size=20))
def test_overlapping_pairs_are_the_pairs_sharing_a_token(rows):
    spans = numpy.asarray([(s, s + w) for s, w in rows], dtype="int64").reshape(-1, 2)
    expected = {(i, j) for i in range(len(spans)) for j in range(i + 1, len(spans))
                if min(spans[i, 1], spans[j, 1]) > max(spans[i, 0], spans[j, 0])}
    i, j = overlapping_pairs(spans)
    got = list(zip(i.tolist(), j.tolist()))
    assert len(got) == len(set(got)) and set(got) == expected


def test_best_entity_with_none_first_or_last():
    probs = numpy.array([[0.5, 0.2, 0.3], [0.1, 0.45, 0.45]])
    label, p, none = best_entity(probs, none_column=0)
    assert label.tolist() == [1, 0] and p.tolist() == [0.3, 0.45] and none.tolist() == [0.5, 0.1]
    label, p, none = best_entity(probs[:, ::-1], none_column=2)
    assert label.tolist() == [0, 0] and p.tolist() == [0.3, 0.45] and none.tolist() == [0.5, 0.1]
    with pytest.raises(ValueError, match="first or last"):
        best_entity(probs, none_column=1)


def test_length_groups_bound_cells_and_spread():
    groups = length_groups([10, 9, 3, 8, 2, 10], max_cells=300)
    assert sorted(b for g in groups for b in g) == list(range(6))
    for g in groups:
        top = max([10, 9, 3, 8, 2, 10][b] for b in g)
        assert len(g) * top * top <= 300 or len(g) == 1
        assert all(4 * [10, 9, 3, 8, 2, 10][b] >= 3 * top for b in g)
    assert groups[0] == [0, 5, 1]
