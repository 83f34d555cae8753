"""Strict nested P/R/F for span groups.

A predicted span counts only when its start, end and label all equal a gold
span's. Overlap is allowed, and the same boundaries may carry two labels (GENIA
has such spans): each (start, end, label) triple is scored on its own. Keys are
``spans_<key>_p/r/f`` and ``spans_<key>_per_type``, the names ``spacy
evaluate --spans-key <key>`` reads.
"""
from typing import Any, Callable, Dict, Iterable

from spacy.scorer import Scorer
from spacy.training import Example
from spacy.util import registry


def nested_score(examples: Iterable[Example], *, spans_key: str = "nested", **kwargs: Any) -> Dict[str, Any]:
    """Score the span group ``spans_key`` of predicted docs against the reference."""
    scores = Scorer.score_spans(
        examples,
        attr=f"spans_{spans_key}",
        getter=lambda doc, attr: list(doc.spans.get(spans_key, [])),
        has_annotation=lambda doc: spans_key in doc.spans,
        labeled=True,
        allow_overlap=True,
    )
    # spaCy returns None when nothing was predicted nor annotated; training sums the scores.
    for part in ("p", "r", "f"):
        if scores.get(f"spans_{spans_key}_{part}") is None:
            scores[f"spans_{spans_key}_{part}"] = 0.0
    return scores


@registry.scorers("spacy_nested.nested_scorer.v1")
def make_nested_scorer() -> Callable[..., Dict[str, Any]]:
    return nested_score
