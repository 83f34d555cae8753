import numpy
import pytest
from hypothesis import given, strategies as st

from spacy_nested.spans import (
    crosses,
    dedupe_max,
    enumerate_seeds,
    iou,
    make_window_seeds,
    remove_crossing,
    segment_docs,
    soft_nms,
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
