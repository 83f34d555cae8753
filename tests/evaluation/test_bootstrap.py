"""``bootstrap.paired_bootstrap``: the F1 difference of two pipelines on the same docs and its 95% interval."""
import numpy
import pytest

from spacy_nested.evaluation.bootstrap import micro_f1, paired_bootstrap


def per_doc(tp, n_pred, n_gold):
    return {"tp": list(tp), "n_pred": list(n_pred), "n_gold": list(n_gold)}


def test_delta_is_the_difference_of_the_micro_f1s():
    a = per_doc([2, 0, 3], [2, 1, 4], [3, 1, 4])  # P 5/7, R 5/8
    b = per_doc([1, 0, 3], [3, 0, 3], [3, 1, 4])  # P 4/6, R 4/8
    diff = paired_bootstrap(a, b, n_samples=200)
    f_a, f_b = 2 * 5 / (7 + 8), 2 * 4 / (6 + 8)
    assert diff.delta == pytest.approx(f_a - f_b)
    assert diff.low <= diff.delta <= diff.high and diff.n_docs == 3 and diff.n_samples == 200


def test_better_on_every_doc_gives_an_interval_above_zero():
    rng = numpy.random.default_rng(1)
    gold = rng.integers(1, 6, size=300)
    b_tp = rng.binomial(gold, 0.7)
    a = per_doc(numpy.minimum(gold, b_tp + 1), gold, gold)
    b = per_doc(b_tp, gold, gold)
    diff = paired_bootstrap(a, b)
    assert 0 < diff.low < diff.delta < diff.high


def test_better_on_one_doc_of_many_is_not_sure():
    """The same F1 gain, once from one lucky doc and once spread over all docs: only the second is sure."""
    rng = numpy.random.default_rng(2)
    gold = rng.integers(1, 6, size=300)
    b_tp = rng.binomial(gold, 0.7)
    a_tp = b_tp.copy()
    lucky = int(numpy.argmax(gold - b_tp))
    a_tp[lucky] = gold[lucky]  # a finds what b missed in that one doc only
    diff = paired_bootstrap(per_doc(a_tp, gold, gold), per_doc(b_tp, gold, gold))
    assert diff.delta > 0 and diff.low <= 0


def test_identical_pipelines_differ_by_nothing():
    a = per_doc([1, 2], [2, 2], [2, 3])
    diff = paired_bootstrap(a, a)
    assert (diff.delta, diff.low, diff.high) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("b", [per_doc([1], [1], [1]), per_doc([1, 0], [1, 0], [1, 2])])
def test_other_docs_are_refused(b):
    with pytest.raises(ValueError, match="same gold docs"):
        paired_bootstrap(per_doc([1, 0], [1, 0], [1, 1]), b)


def test_nothing_to_score_is_f1_zero():
    assert micro_f1(numpy.zeros(3), numpy.zeros(3), numpy.zeros(3)) == 0.0
