"""``spacy_nested.copy_spans.v1``: one key's gold spans under other keys too, for members that train together.

Detectors that share one encoder and feed a ``nested_ensemble`` each write, and
read their gold from, their own ``spans_key`` (``nested_ll``, ``nested_bo``,
``nested_pr``), while a corpus holds the gold under one key (``nested``). This
augmenter gives each training example's reference the spans of ``source``
under every key of ``targets`` as well, so that the three heads learn the same
gold in one ``spacy train``:

    [corpora.train.augmenter]
    @augmenters = "spacy_nested.copy_spans.v1"
    source = "nested"
    targets = ["nested_ll", "nested_bo", "nested_pr"]

The example's own reference doc is left as it was (the copy goes into a copy of
it); a reference without ``source`` is passed on unchanged, which a detector
reads as no gold entities, as it would read its own missing key. Dev needs no
augmenter: the ensemble writes and is scored under ``nested``.
"""
from typing import Callable, Iterator, List

from spacy.language import Language
from spacy.tokens import SpanGroup
from spacy.training import Example

Augmenter = Callable[[Language, Example], Iterator[Example]]


def make_span_copier(source: str, targets: List[str]) -> Augmenter:
    """An augmenter that copies the reference spans of ``source`` to each key of ``targets``."""
    targets = list(targets)
    if not targets:
        raise ValueError(f"spacy_nested.copy_spans.v1: no target keys to copy '{source}' to")
    if source in targets:
        raise ValueError(f"spacy_nested.copy_spans.v1: the source key '{source}' is also a target {targets}")
    if len(set(targets)) != len(targets):
        raise ValueError(f"spacy_nested.copy_spans.v1: target keys repeated in {targets}")

    def copy_spans(nlp: Language, example: Example) -> Iterator[Example]:
        if source not in example.reference.spans:
            yield example
            return
        reference = example.reference.copy()
        gold = reference.spans[source]
        for key in targets:
            reference.spans[key] = SpanGroup(reference, name=key, spans=list(gold), attrs=dict(gold.attrs))
        yield Example(example.predicted, reference)

    return copy_spans
