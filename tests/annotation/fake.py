"""A tiny rule pipeline for the annotate tests: fast, deterministic, with scored nested spans."""
from typing import Iterable, Iterator

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import minibatch


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


class BatchScaled:
    """Divides each span's score by 1 + its doc's place in its batch: spans that depend on how the
    docs are batched, as an int8 pipeline's do (dynamic quantization scales each batch by its own
    values)."""

    def __call__(self, doc: Doc) -> Doc:
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for batch in minibatch(docs, batch_size):
            for place, doc in enumerate(batch):
                group = doc.spans["nested"]
                group.attrs["scores"] = [score / (1 + place) for score in group.attrs["scores"]]
                yield doc


@Language.factory("annotate_test_batch_scaled")
def make_batch_scaled(nlp: Language, name: str) -> BatchScaled:
    return BatchScaled()


def fake_pipeline(variant: int = 0, batch_scaled: bool = False) -> Language:
    """The rule pipeline; another ``variant`` is another pipeline (its config differs); with
    ``batch_scaled`` its scores depend on the batch (`BatchScaled`)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("annotate_test_spans")
    if batch_scaled:
        nlp.add_pipe("annotate_test_batch_scaled")
    if variant:
        nlp.add_pipe("sentencizer")
    return nlp
