import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_nested.evaluation.scoring import (
    length_bucket,
    nested_score,
    nesting_depth,
    score_by_depth,
    score_by_length,
    score_by_type,
)


def _doc(nlp, spans, key="nested"):
    doc = Doc(nlp.vocab, words="IL-2 gene in T cells of long extra words here".split())
    doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label in spans]
    return doc


def test_two_types_on_one_span_are_scored_separately():
    nlp = spacy.blank("en")
    gold = _doc(nlp, [(0, 2, "DNA"), (0, 2, "protein"), (3, 5, "cell_type")])
    pred = _doc(nlp, [(0, 2, "DNA"), (3, 5, "cell_type"), (3, 4, "cell_type")])
    scores = nested_score([Example(pred, gold)], spans_key="nested")
    assert scores["spans_nested_p"] == pytest.approx(2 / 3)
    assert scores["spans_nested_r"] == pytest.approx(2 / 3)
    assert scores["spans_nested_per_type"]["protein"]["r"] == 0.0
    assert scores["spans_nested_per_type"]["DNA"]["f"] == 1.0


def test_boundary_or_type_mismatch_is_wrong():
    nlp = spacy.blank("en")
    gold = _doc(nlp, [(0, 2, "DNA")])
    for wrong in [(0, 1, "DNA"), (0, 2, "RNA"), (0, 3, "DNA")]:
        assert nested_score([Example(_doc(nlp, [wrong]), gold)])["spans_nested_f"] == 0.0


def test_no_annotation_scores_zero_not_none():
    nlp = spacy.blank("en")
    empty = _doc(nlp, [])
    assert nested_score([Example(empty, _doc(nlp, []))])["spans_nested_f"] == 0.0


def test_length_buckets_and_breakdown():
    assert [length_bucket(n) for n in (1, 2, 3, 4, 5, 9, 10, 40)] == ["1", "2", "3", "4", "5-9", "5-9", ">=10", ">=10"]
    nlp = spacy.blank("en")
    gold = _doc(nlp, [(0, 1, "protein"), (0, 10, "DNA")])
    pred = _doc(nlp, [(0, 1, "protein"), (1, 6, "DNA")])
    out = score_by_length([(gold, pred)])
    assert out["1"]["f"] == 1.0
    assert out[">=10"]["r"] == 0.0 and out[">=10"]["n_gold"] == 1
    assert out["5-9"]["p"] == 0.0 and out["5-9"]["n_pred"] == 1
    assert out["all"]["p"] == 0.5 and out["all"]["r"] == 0.5

BOUNDS = st.tuples(st.integers(0, 12), st.integers(1, 6)).map(lambda t: (t[0], t[0] + t[1]))
SPAN_SETS = st.lists(st.tuples(BOUNDS, st.sampled_from("AB")).map(lambda t: (*t[0], t[1])), max_size=12)


def _inside(a, b):
    return b[0] <= a[0] and a[1] <= b[1] and (a[0], a[1]) != (b[0], b[1])


@given(SPAN_SETS)
def test_nesting_depth_is_one_plus_max_depth_of_containers(spans):
    depths = nesting_depth(spans)
    for span, depth in zip(spans, depths):
        containers = [d for other, d in zip(spans, depths) if _inside(span, other)]
        assert depth == 1 + max(containers, default=0)


@given(SPAN_SETS, st.randoms())
def test_nesting_depth_ignores_order_and_labels(spans, random):
    depth = dict(zip(spans, nesting_depth(spans)))
    shuffled = random.sample(spans, len(spans))
    assert nesting_depth(shuffled) == [depth[s] for s in shuffled]
    assert nesting_depth([(s, e, "X") for s, e, _ in spans]) == nesting_depth(spans)


def test_nesting_depth_examples():
    nlp = spacy.blank("en")
    doc = _doc(nlp, [(0, 2, "DNA"), (0, 2, "protein"), (0, 1, "protein"), (3, 5, "cell_type")])
    assert nesting_depth(doc.spans["nested"]) == [1, 1, 2, 1]
    # crossing containers: depth counts the longest chain, not the containers
    assert nesting_depth([(0, 5), (2, 8), (3, 4)]) == [1, 1, 2]
    assert nesting_depth([(0, 9), (0, 5), (1, 5), (2, 3), (2, 3)]) == [1, 2, 3, 4, 4]
    assert nesting_depth([]) == []


def test_score_by_depth_recall_by_gold_depth_precision_by_predicted_depth():
    nlp = spacy.blank("en")
    # gold depths: (0,5) 1, (0,2) 2, (0,1) 3, (6,8) 1
    gold = _doc(nlp, [(0, 5, "A"), (0, 2, "B"), (0, 1, "C"), (6, 8, "A")])
    # predicted depths: (0,2) 1, (0,1) 2, (6,8) 1, (7,8) 2; (7,8) is wrong
    pred = _doc(nlp, [(0, 2, "B"), (0, 1, "C"), (6, 8, "A"), (7, 8, "A")])
    out = score_by_depth([(gold, pred)])
    assert out["1"] == {"p": 1.0, "r": 0.5, "f": pytest.approx(2 / 3), "n_gold": 2, "n_pred": 2}
    assert out["2"] == {"p": 0.5, "r": 1.0, "f": pytest.approx(2 / 3), "n_gold": 1, "n_pred": 2}
    assert out[">=3"] == {"p": 0.0, "r": 1.0, "f": 0.0, "n_gold": 1, "n_pred": 0}
    assert out["all"] == {"p": 0.75, "r": 0.75, "f": 0.75, "n_gold": 4, "n_pred": 4}


def test_score_by_depth_two_types_on_one_span_share_a_depth():
    nlp = spacy.blank("en")
    gold = _doc(nlp, [(0, 2, "DNA"), (0, 2, "protein"), (0, 1, "protein")])
    pred = _doc(nlp, [(0, 2, "DNA"), (0, 1, "protein")])
    out = score_by_depth([(gold, pred)])
    assert (out["1"]["r"], out["1"]["p"], out["1"]["n_gold"]) == (0.5, 1.0, 2)
    assert out["2"]["f"] == 1.0
    assert out[">=3"] == {"p": 0.0, "r": 0.0, "f": 0.0, "n_gold": 0, "n_pred": 0}


def test_score_by_type_matches_spacy_per_type():
    nlp = spacy.blank("en")
    gold = _doc(nlp, [(0, 2, "DNA"), (0, 2, "protein"), (3, 5, "cell_type"), (0, 1, "protein")])
    pred = _doc(nlp, [(0, 2, "DNA"), (3, 5, "cell_type"), (3, 4, "cell_type"), (0, 1, "protein")])
    ours = score_by_type([(gold, pred)])
    spacy_scores = nested_score([Example(pred, gold)])
    for label, prf in spacy_scores["spans_nested_per_type"].items():
        assert {k: ours[label][k] for k in "prf"} == pytest.approx(prf)
    assert ours["all"]["f"] == pytest.approx(spacy_scores["spans_nested_f"])
    assert (ours["cell_type"]["n_gold"], ours["cell_type"]["n_pred"]) == (1, 2)
