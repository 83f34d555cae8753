"""Tests for the displaCy span rendering."""

import re

import numpy
import spacy
from spacy.tokens import Span

from spacy_nested.corpora.tokenizer import doc_from_tokens
from spacy_nested.evaluation.visualize import GENIA_COLORS, render_comparison, render_spans


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


def _scored_doc(vocab, labels=("protein", "DNA"), scores=(0.934, 0.5)):
    doc = doc_from_tokens(vocab, ["IL-2", "gene", "expression"])
    doc.spans["nested"] = [Span(doc, 0, 1, labels[0]), Span(doc, 0, 2, labels[1])]
    doc.spans["nested"].attrs["scores"] = numpy.asarray(scores, dtype="float32")
    return doc


def _label_colors(page):
    """(label shown, its background) for every span label displaCy drew."""
    found = re.findall(r'<span style="background: (#[0-9a-f]+); z-index: 10;[^>]*>\s*([^<]+?)\s*</span>', page)
    return {label: color for color, label in found}


def test_render_spans_with_scores_keeps_the_label_colours():
    doc = _scored_doc(spacy.blank("en").vocab)
    assert _label_colors(render_spans(doc, page=False)) == {"protein": GENIA_COLORS["protein"], "DNA": GENIA_COLORS["DNA"]}
    shown = _label_colors(render_spans(doc, page=False, show_scores=True))
    assert shown == {"protein 0.93": GENIA_COLORS["protein"], "DNA 0.50": GENIA_COLORS["DNA"]}
    assert "protein 0.934" in render_spans(doc, page=False, show_scores=True, score_digits=3)
    flat = _scored_doc(spacy.blank("en").vocab, labels=("ORG", "unseen"))  # displaCy's own colour for ORG
    shown = _label_colors(render_spans(flat, page=False, show_scores=True, colors={}))
    assert shown["ORG 0.93"] == _label_colors(render_spans(flat, page=False, colors={}))["ORG"] != "#ddd"
    assert shown["unseen 0.50"] == "#ddd"  # displaCy's default, as for the plain label


def test_render_spans_with_scores_leaves_spans_without_scores_plain():
    vocab = spacy.blank("en").vocab
    gold = doc_from_tokens(vocab, ["IL-2", "gene"])
    gold.spans["nested"] = [Span(gold, 0, 2, "DNA")]
    assert _label_colors(render_spans(gold, page=False, show_scores=True)) == {"DNA": GENIA_COLORS["DNA"]}
    page = render_comparison([gold], [_scored_doc(vocab)], show_scores=True)
    gold_part, predicted_part = page.split("doc 0: predicted")
    assert "DNA 0." not in gold_part and "protein 0.93" in predicted_part and "DNA 0.50" in predicted_part
    assert "0.93" not in render_comparison([gold], [_scored_doc(vocab)])
