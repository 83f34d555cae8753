"""How sure is an F1 difference? The paired bootstrap over the same docs (no spaCy).

Two pipelines scored on the same gold docs give, for every doc, its counts of
correct predictions, predictions and gold spans (``evaluate``'s ``per_doc``).
One bootstrap sample draws as many docs as there are, with replacement, the
same draw for both pipelines (that is the pairing: a hard doc is hard for both,
so it moves both F1s together and not their difference), and computes each
pipeline's micro F1 over the drawn docs. The 2.5th and 97.5th percentiles of
the differences over the samples are the 95% interval. An interval above 0
says that the first pipeline's F1 is higher on docs like these, not only on
this draw of them (Koehn 2004; Berg-Kirkpatrick et al. 2012).
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy

# Per doc: correct predictions, predictions, gold spans.
PerDoc = Dict[str, List[int]]
COUNTS = ("tp", "n_pred", "n_gold")


@dataclass(frozen=True)
class Difference:
    """F1(a) - F1(b) on all docs, and its paired-bootstrap interval (fractions, not %)."""

    delta: float
    low: float
    high: float
    n_docs: int
    n_samples: int


def micro_f1(tp: numpy.ndarray, n_pred: numpy.ndarray, n_gold: numpy.ndarray) -> numpy.ndarray:
    """F1 from summed counts (over the last axis); 0 where there is nothing to score."""
    tp, n_pred, n_gold = tp.sum(-1), n_pred.sum(-1), n_gold.sum(-1)
    denominator = n_pred + n_gold
    return numpy.where(denominator > 0, 2 * tp / numpy.maximum(denominator, 1), 0.0)


def _arrays(per_doc: PerDoc) -> Sequence[numpy.ndarray]:
    return [numpy.asarray(per_doc[key], dtype=numpy.int64) for key in COUNTS]


def paired_bootstrap(a: PerDoc, b: PerDoc, n_samples: int = 1000, seed: int = 0, level: float = 0.95) -> Difference:
    """F1(a) - F1(b) and its paired-bootstrap interval at `level`.

    RAISES (ValueError): the two were not scored on the same docs (their
        numbers of docs, or their gold counts per doc, differ).
    """
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    n_docs = len(arrays_a[0])
    if len(arrays_b[0]) != n_docs or not numpy.array_equal(arrays_a[2], arrays_b[2]):
        raise ValueError(
            f"not scored on the same docs ({n_docs} vs {len(arrays_b[0])} docs, "
            "or different gold spans per doc): the paired bootstrap needs the same gold docs"
        )
    delta = float(micro_f1(*arrays_a) - micro_f1(*arrays_b))
    if n_docs == 0:
        return Difference(delta, delta, delta, 0, 0)
    draws = numpy.random.default_rng(seed).integers(0, n_docs, size=(n_samples, n_docs))
    differences = micro_f1(*(x[draws] for x in arrays_a)) - micro_f1(*(x[draws] for x in arrays_b))
    tail = (1 - level) / 2
    low, high = numpy.quantile(differences, [tail, 1 - tail])
    return Difference(delta, float(low), float(high), n_docs, n_samples)
