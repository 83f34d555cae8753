import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_nested.scoring import length_bucket, nested_score, score_by_length


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
