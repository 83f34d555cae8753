"""Threshold tuning at the cost of one prediction: ``spacy find-threshold``'s scores, computed once.

spaCy's ``find-threshold`` reloads the pipeline and runs all of it once per
threshold tried. With a transformer under the pipes that is 21 full runs over
dev: 25 minutes for MiniLM spancat on this project's 2-core machine with 11
trials. ``sweep_threshold`` gives the same table from one run:

* the components before the tuned one run once, over the docs exactly as
  ``nlp.evaluate`` gets them (``Corpus(..., gold_preproc=False)``, as
  find-threshold loads its data) and in batches of ``nlp.batch_size``;
* the tuned component predicts once per batch. The detectors keep their model
  outputs and decode them again at each threshold
  (``NestedSpanDetector.predict_thresholds``: their decoders take the threshold
  inside soft-NMS, the boundary vote and the regressor's filter, so filtering
  the final spans would not be the same). Any other component, spaCy's
  ``spancat`` included, gives scores from ``predict`` and applies
  ``cfg["threshold"]`` in ``set_annotations``, which is called once per
  threshold;
* the components after it, if any, run again at each threshold, and the
  examples are scored by ``nlp``'s scorer, as ``nlp.evaluate`` scores them.

A test checks that the table equals spaCy's ``find_threshold`` for a detector
and for spancat.
"""
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import minibatch

from spacy_nested.detectors.base import NestedSpanDetector


def thresholds_for(n_trials: int) -> List[float]:
    """``n_trials`` values evenly from 0 to 1, as ``spacy find-threshold`` tries them."""
    return [float(t) for t in numpy.linspace(0, 1, n_trials)]


def dev_examples(nlp: Language, docbin: Union[str, Path]) -> List[Example]:
    """The examples of ``docbin`` as ``spacy find-threshold`` reads them."""
    return list(Corpus(str(docbin), gold_preproc=False)(nlp))


def sweep_threshold(
    nlp: Language, pipe_name: str, examples: Sequence[Example], thresholds: Sequence[float], scores_key: str
) -> Dict[float, float]:
    """``scores_key`` of ``nlp`` on ``examples`` with ``pipe_name``'s ``cfg["threshold"]`` set to each value."""
    if pipe_name not in nlp.pipe_names:
        raise ValueError(f"no component '{pipe_name}' in the pipeline (its components: {nlp.pipe_names})")
    pipe: Any = nlp.get_pipe(pipe_name)
    if "threshold" not in getattr(pipe, "cfg", {}):
        raise ValueError(f"component '{pipe_name}' keeps no threshold in its cfg")
    position = nlp.pipe_names.index(pipe_name)
    docs: List[Doc] = [eg.predicted.copy() for eg in examples]
    for _, proc in nlp.pipeline[:position]:
        docs = run_pipe(proc, docs, nlp.batch_size)
    batches = [list(batch) for batch in minibatch(docs, size=nlp.batch_size)]
    per_batch = [predict_at(pipe, batch, thresholds) for batch in batches]
    scorer = Scorer(nlp=nlp)
    scores: Dict[float, float] = {}
    for i, threshold in enumerate(thresholds):
        for batch, predictions in zip(batches, per_batch):
            annotate_at(pipe, batch, predictions[i], threshold)
        annotated = docs
        for _, proc in nlp.pipeline[position + 1 :]:
            annotated = [proc(doc.copy()) for doc in annotated]
        results = scorer.score([Example(doc, eg.reference) for doc, eg in zip(annotated, examples)])
        if scores_key not in results:
            raise ValueError(f"no score '{scores_key}' in the evaluation (its scores: {sorted(results)})")
        scores[float(threshold)] = float(results[scores_key])
    return scores


def run_pipe(proc: Any, docs: Sequence[Doc], batch_size: int) -> List[Doc]:
    """``docs`` through one component, in batches of ``batch_size`` where it has ``pipe``."""
    return list(proc.pipe(docs, batch_size=batch_size)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]


def predict_at(pipe: Any, docs: Sequence[Doc], thresholds: Sequence[float]) -> List[Any]:
    """``pipe``'s predictions for ``docs`` at each of ``thresholds``, its model run once (module docstring)."""
    if isinstance(pipe, NestedSpanDetector):
        return list(pipe.predict_thresholds(docs, thresholds))
    return [pipe.predict(docs)] * len(thresholds)


def annotate_at(pipe: Any, docs: Sequence[Doc], predictions: Any, threshold: float) -> None:
    """``pipe.set_annotations`` with ``cfg["threshold"]`` at ``threshold`` (then as configured again)."""
    configured = pipe.cfg["threshold"]
    pipe.cfg["threshold"] = float(threshold)
    try:
        pipe.set_annotations(docs, predictions)
    finally:
        pipe.cfg["threshold"] = configured
