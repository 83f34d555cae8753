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


LENGTH_BUCKETS = ("1", "2", "3", "4", "5-9", ">=10")


def length_bucket(n_tokens: int) -> str:
    """The entity-length groups of the papers' Tables 2/3: 1, 2, 3, 4, 5–9, ≥10."""
    if n_tokens <= 4:
        return str(n_tokens)
    return "5-9" if n_tokens < 10 else ">=10"


def _prf(tp: int, n_pred: int, n_gold: int) -> Dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f, "n_gold": n_gold, "n_pred": n_pred}


def score_by_length(pairs: Iterable[Any], spans_key: str = "nested") -> Dict[str, Dict[str, float]]:
    """Strict P/R/F per entity-length bucket over (gold_doc, predicted_doc) pairs.

    Both docs must share their tokenization (as with the whitespace tokenizer).
    Precision of a bucket counts predictions of that length, recall gold spans of it.
    """
    counts = {b: [0, 0, 0] for b in ("all", *LENGTH_BUCKETS)}  # tp, pred, gold
    for gold_doc, pred_doc in pairs:
        gold = {(s.start, s.end, s.label_) for s in gold_doc.spans.get(spans_key, [])}
        pred = {(s.start, s.end, s.label_) for s in pred_doc.spans.get(spans_key, [])}
        for spans, column in ((pred, 1), (gold, 2)):
            for start, end, label in spans:
                for bucket in ("all", length_bucket(end - start)):
                    counts[bucket][column] += 1
                    if column == 1 and (start, end, label) in gold:
                        counts[bucket][0] += 1
    return {b: _prf(*c) for b, c in counts.items()}
