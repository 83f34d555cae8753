"""A tiny rule pipeline for the annotate tests: fast, deterministic, with scored nested spans."""
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup


@Language.component("annotate_test_spans")
def capitalised_spans(doc: Doc) -> Doc:
    """Every capitalised token, and it with the next token (nested), scored by position; found
    right to left so that only a sort puts them in document order."""
    spans = []
    for tok in reversed(doc):
        if tok.text[:1].isupper():
            spans.append(Span(doc, tok.i, tok.i + 1, label="UP"))
            if tok.i + 1 < len(doc):
                spans.append(Span(doc, tok.i, tok.i + 2, label="PAIR"))
    group = SpanGroup(doc, name="nested", spans=spans)
    group.attrs["scores"] = [1.0 / (1 + s.start) for s in spans]
    doc.spans["nested"] = group
    return doc


def fake_pipeline(variant: int = 0) -> Language:
    """The rule pipeline; another ``variant`` is another pipeline (its config differs)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("annotate_test_spans")
    if variant:
        nlp.add_pipe("sentencizer")
    return nlp
