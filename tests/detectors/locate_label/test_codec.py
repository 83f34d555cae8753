import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from thinc.api import Config

from spacy_nested.detectors.locate_label.codec import Sampling, SoftNMSDecoder, classifier_targets, decode, encode, soft_weights
from spacy_nested.detectors.locate_label.component import DEFAULT_CONFIG, PAPER_SETTINGS

DEFAULTS = Config().from_str(DEFAULT_CONFIG)


def sampling(**changes) -> Sampling:
    """The paper's sampling (soft examples, negatives 1:5: the weights these tests check) with `changes`."""
    settings = {k: v for k, v in DEFAULTS["sampling"].items() if not k.startswith("@")}
    return Sampling(**{**settings, **PAPER_SETTINGS["sampling"], **changes})


def decoder(**changes) -> SoftNMSDecoder:
    settings = {k: v for k, v in DEFAULTS["decoder"].items() if not k.startswith("@")}
    return SoftNMSDecoder(**{**settings, **changes})


def _by_span(t):
    return {tuple(s): i for i, s in enumerate(t.spans.tolist())}


def test_pairing_positive_negative_and_offsets():
    gold = numpy.array([[1, 4, 1], [6, 7, 2]])
    t = encode(gold, 8, [1, 2, 3], sampling(alpha1=0.7, eta=1.0, neg_ratio=0))
    idx = _by_span(t)
    # [1,4) is the gold span itself; [1,3) has IoU 2/3 <= 0.7: negative; [2,5)? IoU 2/4: negative
    assert t.positive[idx[(1, 4)]] and t.labels[idx[(1, 4)]] == 1
    assert not t.positive[idx[(1, 3)]] and t.labels[idx[(1, 3)]] == 0
    assert t.offsets[idx[(1, 3)]].tolist() == [0, 0]
    assert t.pair_spans[idx[(1, 3)]].tolist() == [1, 4]  # negatives keep their nearest gold for stage 2
    assert t.weights[idx[(1, 3)]] == pytest.approx(1 - 2 / 3)  # (1 - IoU)^η
    assert t.positive[idx[(6, 7)]] and t.weights[idx[(6, 7)]] == pytest.approx(1.0)


def test_positive_offsets_move_both_ways():
    gold = numpy.array([[2, 12, 1]])  # length 10
    t = encode(gold, 14, list(range(1, 11)), sampling(neg_ratio=0, long_span_anchors=False))
    idx = _by_span(t)
    # [1,11) has IoU 9/11 > 0.7: offsets +1 (start moves right) and +1
    assert t.offsets[idx[(1, 11)]].tolist() == [1, 1]
    # [3,12): IoU 0.9, start moves left
    assert t.offsets[idx[(3, 12)]].tolist() == [-1, 0]


def test_ties_pair_with_earlier_gold():
    gold = numpy.array([[0, 2, 1], [2, 4, 2]])
    t = encode(gold, 4, [4], sampling(neg_ratio=0, long_span_anchors=False))  # seed [0,4) ties 0.5/0.5
    assert t.pair_spans[_by_span(t)[(0, 4)]].tolist() == [0, 2]


def test_long_gold_is_added_and_anchored_seeds_reach_it():
    gold = numpy.array([[0, 7, 2]])
    t = encode(gold, 9, [1, 2, 3], sampling(neg_ratio=0))
    idx = _by_span(t)
    assert t.positive[idx[(0, 7)]] and t.offsets[idx[(0, 7)]].tolist() == [0, 0]  # appended as in the code
    assert t.positive[idx[(0, 3)]] and t.offsets[idx[(0, 3)]].tolist() == [0, 4]  # shares the start
    assert t.positive[idx[(4, 7)]] and t.offsets[idx[(4, 7)]].tolist() == [-4, 0]  # shares the end
    assert t.weights[idx[(0, 3)]] == pytest.approx(3 / 7)
    t_off = encode(gold, 9, [1, 2, 3], sampling(neg_ratio=0, long_span_anchors=False))
    assert not t_off.positive[_by_span(t_off)[(0, 3)]]


def test_negative_downsampling_ratio():
    gold = numpy.array([[3, 4, 1]])
    t = encode(gold, 30, list(range(1, 11)), sampling(neg_ratio=5), numpy.random.default_rng(0))
    assert int(t.positive.sum()) == 1 and int((~t.positive).sum()) == 5 * 1 + 2
    t2 = encode(numpy.zeros((0, 3)), 30, [1, 2], sampling(neg_ratio=5))
    assert len(t2) == 2 and not t2.positive.any()


def test_soft_weights_eq11_and_hard_when_eta_zero():
    ious = numpy.array([0.0, 0.5, 0.8, 1.0])
    assert soft_weights(ious, 0.7, 1.0).tolist() == pytest.approx([1.0, 0.5, 0.8, 1.0])
    assert soft_weights(ious, 0.7, 2.0).tolist() == pytest.approx([1.0, 0.25, 0.64, 1.0])
    assert soft_weights(ious, 0.7, 0.0).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_classifier_relabel_with_alpha2():
    adjusted = numpy.array([[1, 4], [1, 3], [5, 6]])
    pairs = numpy.array([[1, 4], [1, 4], [0, 0]])
    pair_labels = numpy.array([2, 2, 0])
    labels, weights = classifier_targets(adjusted, pairs, pair_labels, sampling(alpha2=1.0, eta=1.0))
    assert labels.tolist() == [2, 0, 0]
    assert weights.tolist() == pytest.approx([1.0, 1 - 2 / 3, 1.0])


def test_decode_drops_none_dedupes_and_thresholds():
    adjusted = numpy.array([[0, 2], [0, 2], [3, 4], [5, 6]])
    probs = numpy.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.9, 0.05, 0.05], [0.5, 0.1, 0.4]])
    out = decode(adjusted, probs, decoder(), 0.45)
    assert out.spans.tolist() == [[0, 2, 0]] and out.scores.tolist() == pytest.approx([0.9])
    out = decode(adjusted, probs, decoder(soft_nms=False), 0.0)
    assert sorted(out.spans.tolist()) == [[0, 2, 0]]  # [5,6) argmax is None


def test_decode_without_none_veto_keeps_the_best_entity_class_for_the_threshold():
    adjusted = numpy.array([[0, 2], [3, 4], [5, 6]])
    probs = numpy.array([[0.1, 0.9, 0.0], [0.9, 0.05, 0.05], [0.5, 0.1, 0.4]])
    out = decode(adjusted, probs, decoder(soft_nms=False, none_veto=False), 0.0)
    found = {tuple(s): float(p) for s, p in zip(out.spans.tolist(), out.scores)}
    # [5,6): None (0.5) beats both classes, but the best entity class (label 1, p 0.4) is kept
    assert found == pytest.approx({(0, 2, 0): 0.9, (3, 4, 0): 0.05, (5, 6, 1): 0.4})
    out = decode(adjusted, probs, decoder(soft_nms=False, none_veto=False), 0.3)
    assert sorted(out.spans.tolist()) == [[0, 2, 0], [5, 6, 1]]
    out = decode(adjusted, probs, decoder(soft_nms=False, none_veto=True), 0.3)
    assert out.spans.tolist() == [[0, 2, 0]]


def test_a_tie_with_none_is_vetoed():
    probs = numpy.array([[0.5, 0.5]])
    assert len(decode(numpy.array([[0, 1]]), probs, decoder(soft_nms=False), 0.0)) == 0


spans_strategy = st.lists(
    st.tuples(st.integers(0, 24), st.integers(1, 14), st.integers(1, 3)), min_size=0, max_size=8
)


@settings(max_examples=60, deadline=None)
@given(spans_strategy)
def test_encode_decode_round_trip(raw):
    """Perfect regressor + classifier outputs decode to exactly the gold set."""
    length = 25
    gold = {(s, min(length, s + w), label) for s, w, label in raw}
    # one label per boundary pair (a single softmax cannot say two types) and no crossing pairs
    by_bounds = {}
    for s, e, label in sorted(gold):
        by_bounds.setdefault((s, e), label)
    gold_arr = numpy.asarray([(s, e, lab) for (s, e), lab in by_bounds.items()], dtype="int64").reshape(-1, 3)
    t = encode(gold_arr, length, list(range(1, 11)), sampling(neg_ratio=0))
    pos = t.positive
    adjusted = t.spans[pos] + t.offsets[pos]
    labels, weights = classifier_targets(adjusted, t.pair_spans[pos], t.pair_labels[pos], sampling(alpha2=1.0, eta=1.0))
    assert (labels == t.labels[pos]).all()  # relabelling agrees with stage 1 on perfect offsets
    probs = numpy.eye(4)[labels] * 0.99 + 0.0025
    out = decode(adjusted, probs, decoder(soft_nms=False), 0.45)
    got = {(s, e, lab + 1) for s, e, lab in out.spans.tolist()}
    assert got == {(s, e, lab) for (s, e), lab in by_bounds.items()}
