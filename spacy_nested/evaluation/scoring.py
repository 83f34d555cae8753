"""Strict nested P/R/F for span groups.

A predicted span counts only when its start, end and label all equal a gold
span's. Overlap is allowed, and the same boundaries may carry two labels (GENIA
has such spans): each (start, end, label) triple is scored on its own. Keys are
``spans_<key>_p/r/f`` and ``spans_<key>_per_type``, the names ``spacy
evaluate --spans-key <key>`` reads.
"""
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple, Union

from spacy.scorer import Scorer
from spacy.tokens import Span
from spacy.training import Example


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


def make_nested_scorer() -> Callable[..., Dict[str, Any]]:
    return nested_score


LENGTH_BUCKETS = ("1", "2", "3", "4", "5-9", ">=10")


def length_bucket(n_tokens: int) -> str:
    """The entity-length groups of the papers' Tables 2/3: 1, 2, 3, 4, 5–9, ≥10."""
    if n_tokens <= 4:
        return str(n_tokens)
    return "5-9" if n_tokens < 10 else ">=10"


def prf(tp_pred: int, n_pred: int, tp_gold: int, n_gold: int) -> Dict[str, float]:
    """P from the correct predictions, R from the found gold spans (equal counts unless
    a group depends on the rest of the set, as nesting depth does)."""
    p = tp_pred / n_pred if n_pred else 0.0
    r = tp_gold / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f, "n_gold": n_gold, "n_pred": n_pred}


def score_by_length(pairs: Iterable[Any], spans_key: str = "nested") -> Dict[str, Dict[str, float]]:
    """Strict P/R/F per entity-length bucket over (gold_doc, predicted_doc) pairs.

    Both docs must share their tokenization (as with the whitespace tokenizer).
    Precision of a bucket counts predictions of that length, recall gold spans of it.
    """
    return _score_by(pairs, spans_key, lambda triples: [length_bucket(e - s) for s, e, _ in triples], LENGTH_BUCKETS)


DEPTH_BUCKETS = ("1", "2", ">=3")
Triple = Tuple[int, int, str]


def nesting_depth(spans: Iterable[Union[Span, Sequence[Any]]]) -> List[int]:
    """The nesting depth of each span of a set, in input order.

    Spans are `Span` objects or ``(start, end, ...)`` tuples; labels are ignored.
    Span a is *strictly inside* span b when ``b.start <= a.start``,
    ``a.end <= b.end`` and their boundaries differ, so two spans with the same
    boundaries (one span with two types, or a duplicate) are never inside each
    other and get the same depth. The depth of a span is the length of the
    longest chain of spans each strictly inside the next that ends at it:
    1 for a span inside no other, else 1 + the largest depth of the spans it is
    strictly inside. Depth k therefore means inside k - 1 spans nested in each
    other; two crossing containers, (0, 5) and (2, 8) around (3, 4), give 2.
    """
    bounds = [(s.start, s.end) if isinstance(s, Span) else (s[0], s[1]) for s in spans]
    depth: Dict[Tuple[int, int], int] = {}
    # Longest first: a span's containers are strictly longer, so already done.
    for start, end in sorted(set(bounds), key=lambda b: b[0] - b[1]):
        containers = (d for (s, e), d in depth.items() if s <= start and end <= e)
        depth[(start, end)] = 1 + max(containers, default=0)
    return [depth[b] for b in bounds]


def depth_bucket(depth: int) -> str:
    """The nesting-depth groups of the report: 1, 2, ≥3."""
    return str(depth) if depth < 3 else ">=3"


def _score_by(
    pairs: Iterable[Any],
    spans_key: str,
    groups: Callable[[List[Triple]], List[str]],
    buckets: Sequence[str] = (),
) -> Dict[str, Dict[str, float]]:
    """Strict P/R/F per group: precision counts predictions by the group
    `groups` gives them within the predicted set, recall gold spans by their
    group within the gold set (the two differ for nesting depth)."""
    counts: Dict[str, List[int]] = {b: [0, 0, 0, 0] for b in ("all", *buckets)}  # tp pred, pred, tp gold, gold
    for gold_doc, pred_doc in pairs:
        gold = sorted({(s.start, s.end, s.label_) for s in gold_doc.spans.get(spans_key, [])})
        pred = sorted({(s.start, s.end, s.label_) for s in pred_doc.spans.get(spans_key, [])})
        for triples, other, column in ((pred, set(gold), 0), (gold, set(pred), 2)):
            for triple, group in zip(triples, groups(triples)):
                for bucket in ("all", group):
                    count = counts.setdefault(bucket, [0, 0, 0, 0])
                    count[column + 1] += 1
                    count[column] += triple in other
    return {bucket: prf(*count) for bucket, count in counts.items()}


def counts_per_doc(pairs: Iterable[Any], spans_key: str = "nested") -> Dict[str, List[int]]:
    """Per (gold_doc, predicted_doc) pair, in order: correct predictions ("tp"),
    predictions ("n_pred") and gold spans ("n_gold"), each (start, end, label)
    counted once, as in the other scores (the input of ``bootstrap.paired_bootstrap``)."""
    counts: Dict[str, List[int]] = {"tp": [], "n_pred": [], "n_gold": []}
    for gold_doc, pred_doc in pairs:
        gold = {(s.start, s.end, s.label_) for s in gold_doc.spans.get(spans_key, [])}
        pred = {(s.start, s.end, s.label_) for s in pred_doc.spans.get(spans_key, [])}
        counts["tp"].append(len(gold & pred))
        counts["n_pred"].append(len(pred))
        counts["n_gold"].append(len(gold))
    return counts


def score_by_type(pairs: Iterable[Any], spans_key: str = "nested") -> Dict[str, Dict[str, float]]:
    """Strict P/R/F, n_gold and n_pred per label (and "all") over (gold_doc, predicted_doc) pairs.

    The P/R/F equal spaCy's ``spans_<key>_per_type``, which lacks the counts.
    """
    return _score_by(pairs, spans_key, lambda triples: [label for *_, label in triples])


def score_by_depth(pairs: Iterable[Any], spans_key: str = "nested") -> Dict[str, Dict[str, float]]:
    """Strict P/R/F per nesting depth ("1", "2", ">=3", and "all"; see `nesting_depth`).

    Recall of a depth counts the gold spans of that depth in the gold set,
    precision the predictions of that depth in the predicted set, and F
    combines the two. A correct prediction can sit at another depth than its
    gold span (when its gold container was missed, say); it then counts for
    the recall of the gold depth and the precision of the predicted depth.
    Both docs must share their tokenization.
    """
    return _score_by(
        pairs, spans_key, lambda triples: [depth_bucket(d) for d in nesting_depth(triples)], DEPTH_BUCKETS
    )
