"""Labelling docs with a teacher, and merging its spans with a training doc's gold spans.

A teacher is any pipeline that writes a span group with (optionally) one score per span in
``attrs["scores"]``: a detector of this package, a ``nested_ensemble``, spaCy's spancat. Its key is
the one written by the last pipe that writes a key (an ensemble's, not its members'), or the one
named. A span without a score (a rule-based teacher) counts as 1.0.

Threshold: ``None`` keeps every span the teacher writes (its own threshold decided). A threshold T
keeps the spans scoring ``>= T``; when T is below the writing pipe's own ``cfg["threshold"]``, that
threshold is lowered to T for the run, so that the spans between are predicted at all (an
ensemble's members keep their own thresholds: a span no member writes cannot appear).

Each labelled doc has two span groups:

* the student's key: the targets. On an unlabeled doc, the teacher's spans at or above the
  threshold. On a training doc, `merge_with_gold`: every gold span (score 1.0) plus each teacher
  span at or above the threshold whose boundaries no gold span has. A teacher span with a gold
  span's boundaries is dropped whatever its label: the same label is a duplicate, another label
  a conflict the gold decides (the gold may give one span two labels; the teacher does not add a
  third). Spans that cross or nest in gold spans are added: nested detectors represent both.
* ``teacher`` (`TEACHER_KEY`): every span the teacher predicted, with its score, kept for
  soft targets.

Training docs are predicted on their own tokens (``corpora.tokenizer.retokenized_as``: words and
spaces, as the shipped configs' reader gives them to a pipeline in training), so the teacher's
spans align with the gold ones; unlabeled records go through the teacher's tokenizer, one record
one doc. Both are streamed through ``nlp.pipe`` in batches: nothing holds all the docs.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from spacy_nested.annotation.inputs import Record
from spacy_nested.annotation.run import pipeline_fingerprint
from spacy_nested.corpora.tokenizer import retokenized_as

TEACHER_KEY = "teacher"

Row = Tuple[int, int, str]  # start token, end token (exclusive), label
ScoredRow = Tuple[int, int, str, float]


class TeacherError(ValueError):
    """The teacher cannot be loaded or used; the message names it and says why."""


@dataclass
class Teacher:
    """A loaded teacher: its pipeline, what identifies it, the key it writes and the thresholds.

    ``threshold``: the targets' threshold (None: every span the teacher writes); ``own_threshold``:
    the writing pipe's ``cfg["threshold"]`` as saved (None: it has none); ``prediction_threshold``:
    that threshold while this teacher predicts (lowered to ``threshold`` where that is lower).
    """

    nlp: Language
    model: str
    fingerprint: str
    spans_key: str
    pipe: str
    threshold: Optional[float]
    own_threshold: Optional[float]
    prediction_threshold: Optional[float]

    def to_json(self) -> Dict[str, Any]:
        """What identifies the teacher's predictions (its path aside: the same files elsewhere are the same teacher)."""
        return {
            "fingerprint": self.fingerprint,
            "spans_key": self.spans_key,
            "pipe": self.pipe,
            "own_threshold": self.own_threshold,
            "prediction_threshold": self.prediction_threshold,
        }


def written_key(pipe: Any) -> Optional[str]:
    """The span key a pipe writes: ``cfg["spans_key"]`` (this package's pipes, spancat), else its ``key``."""
    cfg = getattr(pipe, "cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("spans_key"), str):
        return str(cfg["spans_key"])
    key = getattr(pipe, "key", None)
    return key if isinstance(key, str) else None


def load_teacher(
    model: Union[str, Path, Language], spans_key: Optional[str] = None, threshold: Optional[float] = None
) -> Teacher:
    """The teacher at ``model`` (a pipeline folder or package name, or a loaded pipeline).

    RAISES (TeacherError, naming the teacher): it cannot be loaded, writes no span group (or not
    ``spans_key``), or ``threshold`` is outside [0, 1].
    """
    name = "a loaded pipeline" if isinstance(model, Language) else str(model)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise TeacherError(f"teacher threshold must be in [0, 1], got {threshold}")
    if isinstance(model, Language):
        nlp = model
    else:
        try:
            nlp = spacy.load(model)
        except Exception as err:  # spaCy's OSError for a bad path, a config or weights error, ...
            raise TeacherError(f"teacher {name}: cannot load it as a spaCy pipeline: {err}") from err
    writers = [(pipe_name, written_key(pipe)) for pipe_name, pipe in nlp.pipeline if written_key(pipe) is not None]
    if spans_key is not None:
        writers = [(pipe_name, key) for pipe_name, key in writers if key == spans_key]
    if not writers:
        wanted = f"doc.spans['{spans_key}']" if spans_key is not None else "any span group"
        raise TeacherError(f"teacher {name}: no pipe writes {wanted} (its pipes: {nlp.pipe_names})")
    pipe_name, key = writers[-1]
    assert key is not None
    cfg = getattr(nlp.get_pipe(pipe_name), "cfg", {})
    own = cfg.get("threshold") if isinstance(cfg, dict) else None
    own_threshold = float(own) if isinstance(own, (int, float)) and not isinstance(own, bool) else None
    prediction_threshold = own_threshold
    if threshold is not None and own_threshold is not None and threshold < own_threshold:
        cfg["threshold"] = prediction_threshold = float(threshold)  # read at every call, as spacy find-threshold sets it
    fingerprint = pipeline_fingerprint(model if isinstance(model, Language) else str(model))
    return Teacher(nlp, name, fingerprint, key, pipe_name, threshold, own_threshold, prediction_threshold)


def predicted_spans(doc: Doc, key: str) -> List[ScoredRow]:
    """The scored spans a teacher wrote to ``doc.spans[key]`` (a span without a score: 1.0)."""
    if key not in doc.spans:
        return []
    group = doc.spans[key]
    scores = group.attrs.get("scores")
    if scores is None:
        scores = [1.0] * len(group)
    if len(scores) != len(group):
        raise TeacherError(f"doc.spans['{key}'] has {len(group)} spans and {len(scores)} scores")
    return [(span.start, span.end, span.label_, float(score)) for span, score in zip(group, scores)]


def at_or_above(rows: Iterable[ScoredRow], threshold: Optional[float]) -> List[ScoredRow]:
    """The rows scoring ``>= threshold`` (all of them for None)."""
    return [row for row in rows if threshold is None or row[3] >= threshold]


@dataclass
class MergeCounts:
    """What `merge_with_gold` did to a doc (or, added up, to a corpus)."""

    gold: int = 0  # gold spans, all kept
    added: int = 0  # teacher spans added
    duplicates: int = 0  # teacher spans equal to a gold span (boundaries and label): dropped
    conflicts: int = 0  # teacher spans with a gold span's boundaries and another label: dropped
    below: int = 0  # teacher spans under the threshold: not targets

    def __iadd__(self, other: "MergeCounts") -> "MergeCounts":
        self.gold += other.gold
        self.added += other.added
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.below += other.below
        return self


def merge_with_gold(
    gold: Sequence[Row], teacher: Sequence[ScoredRow], threshold: Optional[float]
) -> Tuple[List[ScoredRow], MergeCounts]:
    """The targets of a training doc (module docstring): every gold span with score 1.0, plus each
    teacher span scoring ``>= threshold`` whose (start, end) no gold span has; sorted by start, end, label."""
    counts = MergeCounts(gold=len(gold))
    labelled = set(gold)
    bounds = {(start, end) for start, end, _ in gold}
    merged: List[ScoredRow] = [(start, end, label, 1.0) for start, end, label in gold]
    for start, end, label, score in teacher:
        if threshold is not None and score < threshold:
            counts.below += 1
        elif (start, end, label) in labelled:
            counts.duplicates += 1
        elif (start, end) in bounds:
            counts.conflicts += 1
        else:
            merged.append((start, end, label, score))
            counts.added += 1
    merged.sort(key=lambda row: (row[0], row[1], row[2]))
    return merged, counts


def set_scored(doc: Doc, key: str, rows: Sequence[ScoredRow]) -> None:
    """``doc.spans[key]`` = the rows' spans, their scores in ``attrs["scores"]``."""
    doc.spans[key] = [Span(doc, start, end, label=label) for start, end, label, _ in rows]
    doc.spans[key].attrs["scores"] = [float(row[3]) for row in rows]


@dataclass
class Labelled:
    """A labelled doc and what went into its targets."""

    doc: Doc
    counts: MergeCounts = field(default_factory=MergeCounts)
    teacher_spans: int = 0  # under TEACHER_KEY


def label_gold_docs(
    teacher: Teacher, docs: Iterable[Doc], key: str, batch_size: int = 64, *, merge: bool = True
) -> Iterator[Labelled]:
    """Each gold doc with its targets under ``key`` (`merge_with_gold`; ``merge`` off: the gold alone,
    score 1.0) and the teacher's spans under `TEACHER_KEY`; the teacher predicts on a copy with the doc's
    tokens. The doc's other annotations stay."""
    stream = ((retokenized_as(doc, teacher.nlp.vocab), doc) for doc in docs)
    for predicted, gold in teacher.nlp.pipe(stream, as_tuples=True, batch_size=batch_size):
        found = predicted_spans(predicted, teacher.spans_key)
        rows = [(span.start, span.end, span.label_) for span in gold.spans[key]] if key in gold.spans else []
        merged, counts = merge_with_gold(rows, found if merge else [], teacher.threshold)
        set_scored(gold, key, merged)
        set_scored(gold, TEACHER_KEY, found)
        yield Labelled(gold, counts, len(found))


def label_records(teacher: Teacher, records: Iterable[Record], key: str, batch_size: int = 64) -> Iterator[Labelled]:
    """A new doc per unlabeled record (the teacher's tokens, nothing else): the teacher's spans at or
    above the threshold under ``key``, all its spans under `TEACHER_KEY`."""
    stream = ((record.input, record.position) for record in records)
    for predicted, _ in teacher.nlp.pipe(stream, as_tuples=True, batch_size=batch_size):
        found = predicted_spans(predicted, teacher.spans_key)
        kept = at_or_above(found, teacher.threshold)
        doc = retokenized_as(predicted, predicted.vocab)
        set_scored(doc, key, kept)
        set_scored(doc, TEACHER_KEY, found)
        yield Labelled(doc, MergeCounts(added=len(kept), below=len(found) - len(kept)), len(found))
