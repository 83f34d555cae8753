"""Offset-label grids: exact indexing, the hand example, round trips and decoding rules."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_nested.detectors.boundary_offset.codec import (
    DECODE_RULES,
    decode,
    decode_segments,
    encode,
    label_id,
    label_meaning,
    n_offset_labels,
)

S2 = ["pad", "s:-2", "e:-2", "s:-1", "e:-1", "c:0", "s:1", "e:1", "s:2", "e:2"]


def _name(label: int, S: int = 2) -> str:
    kind, k = label_meaning(label, S)
    return "pad" if kind == "pad" else f"{kind}:{k}"


def _one_hot(grid: numpy.ndarray, S: int) -> numpy.ndarray:
    return numpy.eye(n_offset_labels(S))[grid]


def _gold(rows):
    """(type, first, last) inclusive -> the pipe's (start, end, type + 1) rows."""
    return numpy.asarray([(i, j + 1, m + 1) for m, i, j in rows], dtype="int64").reshape(-1, 3)


def _decoded(found):
    return {(int(m), int(s), int(e) - 1) for s, e, m in found.spans}


def test_label_ids_for_s2_are_the_authors():
    assert [_name(i) for i in range(10)] == S2
    assert n_offset_labels(2) == 10 and n_offset_labels(0) == 2


@pytest.mark.parametrize("S", range(0, 7))
def test_label_indexing_round_trips(S):
    L = n_offset_labels(S)
    seen = set()
    for label in range(1, L):
        kind, k = label_meaning(label, S)
        assert label_id(kind, k, S) == label
        seen.add((kind, k))
    expected = {("c", 0)} | {(kind, k) for kind in "se" for k in range(-S, S + 1) if k}
    assert seen == expected
    with pytest.raises(ValueError):
        label_id("s", S + 1, S)


def test_hand_example_n8_cell_by_cell():
    """docs/boundary_offset.md#worked-example: N = 8, one type, gold (0,1), (1,1), (4,6) inclusive."""
    grid = encode(_gold([(0, 0, 1), (0, 1, 1), (0, 4, 6)]), 8, 1, 2)[0]
    upper = {
        (0, 0): "e:-1", (0, 1): "c:0", (0, 2): "e:1", (0, 3): "e:2",
        (1, 1): "c:0", (1, 2): "e:1", (1, 3): "e:2",
        (2, 6): "s:-2", (3, 6): "s:-1",
        (4, 4): "e:-2", (4, 5): "e:-1", (4, 6): "c:0", (4, 7): "e:1",
        (5, 6): "s:1", (6, 6): "s:2",
    }  # fmt: skip
    for i in range(8):
        for j in range(i, 8):
            assert _name(grid[i, j]) == upper.get((i, j), "pad"), (i, j)
    assert (grid == grid.T).all()  # the lower triangle mirrors the upper


def test_nearest_entity_wins_and_ties_go_to_the_first_writer():
    # (2,5) and (2,3): cell (2,4) is e:+1 of (2,3) and e:-1 of (2,5): a tie at |k| = 1,
    # (2,3) comes first in (type, start, end) order and keeps it.
    grid = encode(_gold([(0, 2, 5), (0, 2, 3)]), 8, 1, 2)[0]
    assert _name(grid[2, 4]) == "e:1"
    # (2,6) is e:+1 of (2,5) (distance 1) and e:+3 of (2,3) (out of range)
    assert _name(grid[2, 6]) == "e:1"
    # a centre is never overwritten
    assert _name(grid[2, 3]) == "c:0" and _name(grid[2, 5]) == "c:0"


def test_types_have_separate_grids_and_a_span_can_carry_two():
    grid = encode(_gold([(0, 1, 2), (1, 1, 2)]), 5, 2, 2)
    assert _name(grid[0, 1, 2]) == "c:0" and _name(grid[1, 1, 2]) == "c:0"
    assert _decoded(decode(_one_hot(grid, 2), 2, "votes", 0.0)) == {(0, 1, 2), (1, 1, 2)}


def test_s0_has_only_centres():
    grid = encode(_gold([(0, 1, 3)]), 6, 1, 0)
    assert set(numpy.unique(grid)) == {0, 1}


@st.composite
def nested_gold(draw):
    n = draw(st.integers(1, 16))
    M = draw(st.integers(1, 3))
    cells = st.tuples(st.integers(0, M - 1), st.integers(0, n - 1), st.integers(0, n - 1))
    rows = draw(st.lists(cells, max_size=8))
    spans = {(m, min(i, j), max(i, j)) for m, i, j in rows}
    return n, M, sorted(spans)


@settings(max_examples=150, deadline=None)
@given(nested_gold(), st.integers(0, 4), st.sampled_from(DECODE_RULES))
def test_gold_grid_decodes_to_exactly_the_gold_spans(case, S, rule):
    n, M, spans = case
    grid = encode(_gold(spans), n, M, S)
    found = decode(_one_hot(grid, S), S, rule, 0.0)
    assert _decoded(found) == set(spans)
    assert len(found) == len(spans)  # each once
    assert numpy.allclose(found.scores, 1.0)


def _supporting_votes(grid: numpy.ndarray, S: int):
    """Start and end votes per target, counted cell by cell (independent of the decoder)."""
    counts = {}
    M, n, _ = grid.shape
    for m in range(M):
        for i in range(n):
            for j in range(i, n):
                kind, k = label_meaning(grid[m, i, j], S)
                if kind == "s":
                    key, slot = (m, i - k, j), 0
                elif kind == "e":
                    key, slot = (m, i, j - k), 1
                else:
                    continue
                counts.setdefault(key, [0, 0])[slot] += 1
    return counts


@settings(max_examples=150, deadline=None)
@given(nested_gold(), st.integers(1, 3))
def test_offsets_alone_recover_spans_with_enough_votes(case, S):
    """With every centre cell masked out, decoding rests on the offset votes only."""
    n, M, spans = case
    grid = encode(_gold(spans), n, M, S)
    grid[grid == label_id("c", 0, S)] = 0
    found = _decoded(decode(_one_hot(grid, S), S, "votes", 0.0))
    votes = _supporting_votes(grid, S)
    expected = {span for span, (n_start, n_end) in votes.items() if n_start >= S or n_end >= S}
    assert found == expected
    assert found <= set(spans)


def test_an_isolated_span_is_recovered_from_its_offsets():
    # S = 2, (3,5) alone in 10 tokens: s:-1, s:-2 at rows 2, 1 and e:+1, e:+2 at columns 6, 7
    grid = encode(_gold([(0, 3, 5)]), 10, 1, 2)
    grid[0, 3, 5] = 0
    assert _decoded(decode(_one_hot(grid, 2), 2, "votes", 0.0)) == {(0, 3, 5)}
    assert _decoded(decode(_one_hot(grid, 2), 2, "centre", 0.0)) == set()


def _grid_with(n: int, cells, S: int = 2) -> numpy.ndarray:
    grid = numpy.zeros((1, n, n), dtype="int64")
    for (i, j), name in cells.items():
        kind, k = name.split(":")
        grid[0, i, j] = label_id(kind, int(k), S)
    return grid


def test_rules_on_single_votes():
    one_near = _grid_with(6, {(1, 4): "s:-1"})  # points at (2, 4)
    assert _decoded(decode(_one_hot(one_near, 2), 2, "votes", 0.0)) == set()  # 1 < S start votes
    assert _decoded(decode(_one_hot(one_near, 2), 2, "all", 0.0)) == {(0, 2, 4)}
    assert _decoded(decode(_one_hot(one_near, 2), 2, "paper", 0.0)) == {(0, 2, 4)}
    far_alone = _grid_with(6, {(0, 4): "s:-2"})  # points at (2, 4), but (1, 4) does not hold s:-1
    assert _decoded(decode(_one_hot(far_alone, 2), 2, "all", 0.0)) == {(0, 2, 4)}
    assert _decoded(decode(_one_hot(far_alone, 2), 2, "paper", 0.0)) == set()  # rule (ii)
    misaligned = _grid_with(6, {(1, 4): "s:-1", (2, 4): "e:1"})  # the target itself points elsewhere
    assert (0, 2, 4) not in _decoded(decode(_one_hot(misaligned, 2), 2, "paper", 0.0))  # rule (i)
    assert (0, 2, 4) in _decoded(decode(_one_hot(misaligned, 2), 2, "all", 0.0))


def test_votes_are_not_pooled_across_kinds():
    grid = _grid_with(8, {(2, 4): "s:-1", (3, 5): "e:1"})  # one start and one end vote for (3, 4)
    assert _decoded(decode(_one_hot(grid, 2), 2, "votes", 0.0)) == set()


def test_score_is_the_mean_probability_of_the_voting_cells():
    S, n = 2, 6
    grid = _grid_with(n, {(2, 4): "c:0", (1, 4): "s:-1", (0, 4): "s:-2"})
    probs = _one_hot(grid, S) * 0.0
    probs[0, :, :, 0] = 1.0
    for (i, j), p in {(2, 4): 0.9, (1, 4): 0.6, (0, 4): 0.5}.items():
        probs[0, i, j] = (1 - p) / 9
        probs[0, i, j, grid[0, i, j]] = p
    found = decode(probs, S, "votes", 0.0)
    assert _decoded(found) == {(0, 2, 4)}
    assert found.scores[0] == pytest.approx((0.9 + 0.6 + 0.5) / 3)


def test_only_the_upper_triangle_is_read():
    grid = numpy.zeros((1, 4, 4), dtype="int64")
    grid[0, 3, 1] = label_id("c", 0, 2)
    assert len(decode(_one_hot(grid, 2), 2, "votes", 0.0)) == 0


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown decode rule"):
        decode(numpy.zeros((1, 2, 2, 10)), 2, "nearest", 0.0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 7), min_size=1, max_size=5),
    st.integers(1, 3),
    st.integers(0, 3),
    st.sampled_from(DECODE_RULES),
    st.integers(0, 10_000),
)
def test_many_segments_decode_as_each_alone(lengths, n_types, S, rule, seed):
    """A batch decodes to each segment's own spans, in segment order (empty segments included):
    nothing leaks across the segments' cells."""
    _decode_together_and_alone(lengths, n_types, S, rule, seed)


@pytest.mark.parametrize("rule", DECODE_RULES)
def test_many_segments_with_spans_decode_as_each_alone(rule):
    found = _decode_together_and_alone([5, 0, 6, 1, 4], 2, 1, rule, 0)
    assert found >= 5  # spans in several segments, not an agreement on empty output


def _decode_together_and_alone(lengths, n_types, S, rule, seed) -> int:
    rng = numpy.random.default_rng(seed)
    L = n_offset_labels(S)
    # peaked probabilities over random labels, so that many cells vote and spans get emitted
    blocks = [rng.dirichlet(numpy.full(L, 0.3), size=n_types * n * n) for n in lengths]
    together = decode_segments(numpy.log(numpy.concatenate(blocks)), lengths, n_types, S, rule, 0.2)
    alone = [decode(b.reshape(n_types, n, n, L), S, rule, 0.2) for b, n in zip(blocks, lengths)]
    assert len(together) == len(lengths)
    for t, a in zip(together, alone):
        assert t.spans.tolist() == a.spans.tolist()
        assert numpy.allclose(t.scores, a.scores)
    return sum(len(a.spans) for a in alone)
