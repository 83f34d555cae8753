"""Proposer-Regressor codec: pointer table, reach, Algorithm 1 matching and Algorithm 2 decoding."""
import itertools

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_nested.detectors.proposer_regressor.codec import (
    ProposalDecoder,
    assign,
    candidate_index,
    decode,
    gold_types,
    pointer_table,
)
from tests.detectors.boundary_offset.test_codec import _gold, nested_gold

FLOOR = -numpy.log(1e-8)  # the head's cost for an out-of-reach gold


# --- pointer table and reach -------------------------------------------------


@pytest.mark.parametrize("W", range(1, 7))
def test_pointer_table_shape_and_order(W):
    table = pointer_table(W)
    assert table.dtype == numpy.int64 and table.shape == ((2 * W + 1) * W, 2)
    expected = [(ds, w) for ds in range(-W, W + 1) for w in range(1, W + 1)]
    assert [tuple(r) for r in table] == expected


def test_pointer_table_small_example_and_invalid_width():
    assert pointer_table(1).tolist() == [[-1, 1], [0, 1], [1, 1]]
    with pytest.raises(ValueError):
        pointer_table(0)


@st.composite
def segment_spans(draw):
    n = draw(st.integers(1, 30))
    bounds = st.tuples(st.integers(0, n), st.integers(0, n)).filter(lambda b: b[0] != b[1])
    spans = sorted({(min(b), max(b)) for b in draw(st.lists(bounds, max_size=10))})
    return n, numpy.asarray(spans, dtype="int64").reshape(-1, 2)


@settings(max_examples=200, deadline=None)
@given(segment_spans(), st.integers(1, 8))
def test_candidate_index_is_exactly_the_reach_and_round_trips(case, W):
    n, spans = case
    table = pointer_table(W)
    index = candidate_index(spans, n, W)
    assert index.shape == (n, len(spans)) and index.dtype == numpy.int64
    for t in range(n):
        for g, (s, e) in enumerate(spans):
            reachable = abs(s - t) <= W and e - s <= W
            assert (index[t, g] >= 0) == reachable
            if reachable:
                ds, w = table[index[t, g]]
                assert (t + ds, t + ds + w) == (s, e)


def test_candidate_index_of_no_gold_and_empty_spans():
    assert candidate_index(numpy.zeros((0, 2)), 4, 3).shape == (4, 0)
    assert (candidate_index(numpy.asarray([[2, 2]]), 4, 3) == -1).all()  # an empty span is never a target


# --- Algorithm 1 -------------------------------------------------------------


def _brute_injective(cost):
    """Least-cost map of each row to a distinct column (rows <= columns)."""
    R, C = cost.shape
    perms = list(itertools.permutations(range(C), R))
    totals = [sum(cost[r, c] for r, c in enumerate(p)) for p in perms]
    return perms[int(numpy.argmin(totals))]


def _greedy(cost, none_cost, p):
    best = int(numpy.argmin(numpy.append(cost[p], none_cost[p])))
    return -1 if best == cost.shape[1] else best


@pytest.mark.parametrize("seed", range(40))
def test_fewer_proposals_than_gold_matches_like_brute_force(seed):
    rng = numpy.random.default_rng(seed)
    P = int(rng.integers(1, 5))
    G = int(rng.integers(P, 6))
    cost, none_cost = rng.random((P, G)) * 5, rng.random(P) * 5
    for one_to_many in (True, False):
        match = assign(cost, none_cost, one_to_many=one_to_many)
        assert match.targets.tolist() == list(_brute_injective(cost))
        assert match.n_unmatched_gold == G - P


@pytest.mark.parametrize("seed", range(40))
def test_more_proposals_than_gold_hungarian_then_leftovers(seed):
    rng = numpy.random.default_rng(seed)
    G = int(rng.integers(1, 5))
    P = int(rng.integers(G + 1, 7))
    cost, none_cost = rng.random((P, G)) * 5, rng.random(P) * 5
    owner = _brute_injective(cost.T)  # gold g -> its Hungarian proposal
    leftovers = sorted(set(range(P)) - set(owner))
    paper = assign(cost, none_cost, one_to_many=True)
    code = assign(cost, none_cost, one_to_many=False)
    for match in (paper, code):
        assert match.n_unmatched_gold == 0
        assert [match.targets[p] for p in owner] == list(range(G))  # every gold once, minimal total
    assert [paper.targets[p] for p in leftovers] == [_greedy(cost, none_cost, p) for p in leftovers]
    assert [code.targets[p] for p in leftovers] == [-1] * len(leftovers)


def test_greedy_step_can_give_a_gold_several_proposals_and_ties_prefer_gold():
    cost = numpy.asarray([[0.1], [0.2], [0.7]])
    none_cost = numpy.asarray([5.0, 0.5, 0.7])  # proposal 2: tie between gold 0 and None
    assert assign(cost, none_cost, one_to_many=True).targets.tolist() == [0, 0, 0]
    assert assign(cost, none_cost, one_to_many=False).targets.tolist() == [0, -1, -1]


def test_out_of_reach_costs_are_large_but_fine():
    cost = numpy.asarray([[FLOOR, 0.3], [FLOOR, FLOOR], [0.2, FLOOR]])
    match = assign(cost, numpy.asarray([1.0, 1.0, 1.0]), one_to_many=True)
    assert match.targets.tolist() == [1, -1, 0] and match.n_unmatched_gold == 0


@pytest.mark.parametrize("one_to_many", [True, False])
def test_no_gold_sends_every_proposal_to_none(one_to_many):
    match = assign(numpy.zeros((3, 0)), numpy.ones(3), one_to_many=one_to_many)
    assert match.targets.tolist() == [-1, -1, -1] and match.n_unmatched_gold == 0


def test_no_proposal_counts_every_gold_as_unmatched():
    match = assign(numpy.zeros((0, 4)), numpy.zeros(0), one_to_many=True)
    assert match.targets.shape == (0,) and match.n_unmatched_gold == 4
    assert assign(numpy.zeros((0, 0)), numpy.zeros(0), one_to_many=True).n_unmatched_gold == 0


@pytest.mark.parametrize("bad", [numpy.nan, numpy.inf])
def test_non_finite_costs_raise(bad):
    cost = numpy.ones((2, 2))
    cost[1, 0] = bad
    with pytest.raises(ValueError, match="NaN" if numpy.isnan(bad) else "inf"):
        assign(cost, numpy.ones(2), one_to_many=True)
    with pytest.raises(ValueError):
        assign(numpy.ones((2, 2)), numpy.asarray([1.0, bad]), one_to_many=True)
    with pytest.raises(ValueError):
        assign(numpy.ones((2, 2)), numpy.ones(3), one_to_many=True)


# --- Algorithm 2 -------------------------------------------------------------


def _one_proposal(n, W, t, span, type_row):
    """Distributions for n proposals where only proposal t is not None."""
    pointer = numpy.full((n, len(pointer_table(W))), 0.0)
    pointer[:, 0] = 1.0
    types = numpy.zeros((n, len(type_row)))
    types[:, -1] = 1.0
    c = candidate_index(numpy.asarray([span]), n, W)[t, 0]
    pointer[t] = 0.0
    pointer[t, c] = 1.0
    types[t] = type_row
    return pointer, types


def _found(spans):
    return set(_scored(spans))


def _scored(spans):
    return {tuple(int(v) for v in row): float(score) for row, score in zip(spans.spans, spans.scores)}


def test_kept_when_product_equals_p_none_dropped_just_below():
    pointer, types = _one_proposal(4, 2, 1, (1, 3), [0.5, 0.25, 0.25])
    pointer[1] *= 0.5  # p_ptr = 0.5: product 0.25 == p_none
    found = decode(pointer, types, 2, 0.0, none_veto=True)
    assert _found(found) == {(1, 3, 0)} and found.scores.tolist() == [0.25]
    types[1, 2] = numpy.nextafter(0.25, 1.0)
    assert len(decode(pointer, types, 2, 0.0, none_veto=True)) == 0


def test_none_is_never_emitted_as_a_type():
    pointer, types = _one_proposal(3, 1, 0, (0, 1), [0.2, 0.1, 0.7])  # None is the argmax of all columns
    assert len(decode(pointer, types, 1, 0.0, none_veto=True)) == 0
    pointer, types = _one_proposal(3, 1, 0, (0, 1), [0.9, 0.05, 0.05])
    assert _found(decode(pointer, types, 1, 0.0, none_veto=True)) == {(0, 1, 0)}  # label is the type index, not None, not + 1


def test_without_none_veto_the_threshold_alone_decides():
    pointer, types = _one_proposal(3, 1, 0, (0, 1), [0.2, 0.1, 0.7])  # None is the most probable
    assert len(ProposalDecoder(none_veto=True)(pointer, types, 1, 0.0)) == 0
    found = ProposalDecoder(none_veto=False)(pointer, types, 1, 0.15)
    assert _scored(found) == pytest.approx({(0, 1, 0): 0.2})
    assert len(ProposalDecoder(none_veto=False)(pointer, types, 1, 0.25)) == 0


def _algorithm_2(pointer, types, W):
    """Algorithm 2 literally: argmax over all columns, None last, >=."""
    table, n, M = pointer_table(W), len(pointer), types.shape[1] - 1
    best = {}
    for t in range(n):
        label, c = int(types[t].argmax()), int(pointer[t].argmax())
        s, e = t + table[c, 0], t + table[c, 0] + table[c, 1]
        score = types[t, label] * pointer[t, c]
        if label != M and score >= types[t, M] and 0 <= s and e <= n:
            best[(int(s), int(e), label)] = max(best.get((s, e, label), 0.0), score)
    return best


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**31))
def test_decode_is_algorithm_2_on_random_distributions(n, W, M, seed):
    rng = numpy.random.default_rng(seed)
    pointer = rng.dirichlet(numpy.full(len(pointer_table(W)), 0.3), size=n)
    types = rng.dirichlet(numpy.full(M + 1, 0.5), size=n)
    found = decode(pointer, types, W, 0.0, none_veto=True)
    expected = _algorithm_2(pointer, types, W)
    assert _scored(found) == pytest.approx(expected, abs=1e-6)  # scores are float32
    assert len(found) == len(expected)
    assert ((found.scores >= 0) & (found.scores <= 1)).all()
    assert ((found.spans[:, 0] >= 0) & (found.spans[:, 1] <= n) & (found.spans[:, 2] < M)).all()


def test_duplicates_keep_one_span_with_the_highest_score():
    n, W = 4, 2
    pointer = numpy.zeros((n, len(pointer_table(W))))
    reach = candidate_index(numpy.asarray([[1, 3]]), n, W)[:, 0]
    pointer[numpy.arange(n), reach] = [0.6, 0.9, 0.8, 0.7]  # every proposal points at [1, 3)
    types = numpy.tile([0.9, 0.05, 0.05], (n, 1))
    types[3] = [0.05, 0.9, 0.05]  # ... proposal 3 with another type
    found = decode(pointer, types, W, 0.0, none_veto=True)
    assert _found(found) == {(1, 3, 0), (1, 3, 1)}
    scores = _scored(found)
    assert scores[(1, 3, 0)] == pytest.approx(0.9 * 0.9) and scores[(1, 3, 1)] == pytest.approx(0.9 * 0.7)


def test_out_of_segment_pointer_is_never_emitted():
    n, W = 3, 2
    table = [tuple(r) for r in pointer_table(W)]
    pointer = numpy.full((n, len(table)), 1e-3)
    pointer[0, table.index((-1, 1))] = 0.99  # [-1, 0)
    pointer[2, table.index((0, 2))] = 0.99  # [2, 4), past the end
    pointer[1, table.index((0, 2))] = 0.99  # [1, 3), inside
    types = numpy.tile([0.98, 0.02], (n, 1))
    assert _found(decode(pointer, types, W, 0.0, none_veto=True)) == {(1, 3, 0)}


def test_edge_spans_are_half_open():
    n, W = 5, 3
    for span in [(0, 1), (0, 3), (4, 5), (2, 5)]:
        t = span[0]
        pointer, types = _one_proposal(n, W, t, span, [0.0, 1.0, 0.0])
        assert _found(decode(pointer, types, W, 0.0, none_veto=True)) == {(span[0], span[1], 1)}


def test_empty_and_malformed_inputs():
    assert len(decode(numpy.zeros((0, 3)), numpy.zeros((0, 2)), 1, 0.0, none_veto=True)) == 0
    assert len(decode(numpy.ones((2, 3)) / 3, numpy.ones((2, 1)), 1, 0.0, none_veto=True)) == 0  # no real type
    with pytest.raises(ValueError):
        decode(numpy.ones((2, 4)), numpy.ones((2, 2)), 1, 0.0, none_veto=True)
    with pytest.raises(ValueError):
        decode(numpy.ones((2, 3)), numpy.ones((3, 2)), 1, 0.0, none_veto=True)


# --- targets round trip ------------------------------------------------------


def test_gold_types_removes_the_plus_one():
    spans, types = gold_types(_gold([(0, 0, 1), (2, 3, 5)]))
    assert spans.tolist() == [[0, 2], [3, 6]] and types.tolist() == [0, 2]
    with pytest.raises(ValueError):
        gold_types(numpy.asarray([[0, 1, 0]]))


@settings(max_examples=150, deadline=None)
@given(nested_gold(), st.integers(1, 4))
def test_matched_gold_decodes_back_from_its_targets(case, W):
    """Targets built from the matching, as one-hot distributions, decode to the matched gold."""
    n, M, rows = case
    spans, types = gold_types(_gold(rows))
    reach = candidate_index(spans, n, W)
    cost = numpy.where(reach >= 0, 0.0, FLOOR)
    match = assign(cost, numpy.ones(n), one_to_many=False)
    pointer = numpy.zeros((n, len(pointer_table(W))))
    pointer[:, 0] = 1.0
    type_probs = numpy.eye(M + 1)[numpy.full(n, M)]
    expected = set()
    for t, g in enumerate(match.targets):
        if g >= 0 and reach[t, g] >= 0:
            pointer[t] = numpy.eye(pointer.shape[1])[reach[t, g]]
            type_probs[t] = numpy.eye(M + 1)[types[g]]
            expected.add((int(spans[g, 0]), int(spans[g, 1]), int(types[g])))
    assert _found(decode(pointer, type_probs, W, 0.0, none_veto=True)) == expected
    assert match.n_unmatched_gold == max(len(rows) - n, 0)
