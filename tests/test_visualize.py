"""Tests for the displaCy span rendering."""

import spacy
from spacy.tokens import Span

from spacy_nested.tokenizer import doc_from_tokens
from spacy_nested.visualize import GENIA_COLORS, render_comparison, render_spans


def test_render_spans():
    doc = doc_from_tokens(spacy.blank("en").vocab, ["IL-2", "gene", "expression"])
    doc.spans["nested"] = [Span(doc, 0, 1, "protein"), Span(doc, 0, 2, "DNA")]
    html = render_spans(doc)
    assert html.startswith("<!DOCTYPE html>")
    assert "protein" in html and "DNA" in html
    assert GENIA_COLORS["DNA"] in html and GENIA_COLORS["protein"] in html
    fragment = render_spans([doc, doc], spans_key="nested", page=False)
    assert "<!DOCTYPE html>" not in fragment
    assert set(GENIA_COLORS) == {"DNA", "RNA", "protein", "cell_line", "cell_type"}
    assert len(set(GENIA_COLORS.values())) == 5


def test_render_comparison_shows_gold_above_predicted():
    vocab = spacy.blank("en").vocab
    gold = doc_from_tokens(vocab, ["IL-2", "gene"])
    gold.spans["nested"] = [Span(gold, 0, 2, "DNA")]
    pred = doc_from_tokens(vocab, ["IL-2", "gene"])
    pred.spans["nested"] = [Span(pred, 0, 1, "protein")]
    page = render_comparison([gold], [pred], title="x <y>")
    assert page.startswith("<!DOCTYPE html>") and "x &lt;y&gt;" in page
    assert page.index("doc 0: gold") < page.index("DNA") < page.index("doc 0: predicted") < page.index("protein")
