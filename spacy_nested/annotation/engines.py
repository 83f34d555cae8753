"""Where the pieces are annotated (this process, local worker processes, a Dask cluster), and the
one run every engine shares (`annotate_with`).

An engine is a context manager that, entered, gives how to submit one piece's records (a
future of their output records) and how many pieces may be in flight. The driver reads the
input, submits each piece as one task and writes the pieces in order as their records arrive,
so resuming, order and the records are the same on every engine.

Output record: ``index`` (the record's 0-based position in its file), ``file`` (a folder's
records), the passed-through JSONL fields, the text under ``text_key`` with ``include_text``,
and ``spans``: ``[{"start", "end", "label", "score"}]`` with character offsets, sorted by
(start, end, label).
"""
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ContextManager, Deque, Dict, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab
from tqdm import tqdm

from spacy_nested.annotation.inputs import Record, fingerprint, read_records
from spacy_nested.annotation.run import (
    Pieces,
    RunRecord,
    RunSettings,
    group_pieces,
    pipeline_fingerprint,
    start_run,
    write_text_atomically,
)
from spacy_nested.corpora.formats.errors import FormatError, Skipped


def doc_record(doc: Doc, fields: Dict[str, Any], settings: RunSettings) -> Dict[str, Any]:
    """The output record of one doc (module docstring)."""
    group = doc.spans.get(settings.spans_key, [])
    scores = group.attrs.get("scores") if hasattr(group, "attrs") else None
    spans = [
        {
            "start": span.start_char,
            "end": span.end_char,
            "label": span.label_,
            "score": None if scores is None else round(float(scores[i]), 6),
        }
        for i, span in enumerate(group)
    ]
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    text = {settings.text_key: doc.text} if settings.include_text else {}
    return {**fields, **text, "spans": spans}


def annotate_piece(nlp: Language, records: Sequence[Record], settings: RunSettings) -> List[Dict[str, Any]]:
    """The output records of one piece: what every engine runs, in this process or a worker. Its
    batches are formed within the piece, so they are the same on every engine and on resume."""
    if settings.max_length is not None:
        nlp.max_length = settings.max_length
    docs = nlp.pipe((r.input for r in records), batch_size=settings.batch_size)
    return [doc_record(doc, r.fields, settings) for doc, r in zip(docs, records)]


class Result(Protocol):
    """A piece's records once computed: a ``concurrent.futures`` or a Dask future."""

    def result(self) -> List[Dict[str, Any]]: ...


Submit = Callable[[List[Record]], Result]
Engine = Callable[[RunSettings], ContextManager[Tuple[Submit, int]]]  # entered: submit a piece, how many in flight


def write_pieces(
    pieces: Pieces,
    groups: Iterable[Tuple[int, List[Record]]],
    submit: Submit,
    window: int,
    bar: Optional[tqdm] = None,
) -> int:
    """Submit each piece's records as one task, at most ``window`` in flight, and write the
    pieces in order as their records arrive; returns records written. The one driver loop
    of every engine."""
    in_flight: Deque[Tuple[int, Result]] = deque()
    written = 0

    def write_oldest() -> int:
        i, future = in_flight.popleft()
        records = future.result()
        pieces.write(i, records)
        if bar is not None:
            bar.update(len(records))
        return len(records)

    for i, records in groups:
        in_flight.append((i, submit(records)))
        while len(in_flight) >= window:
            written += write_oldest()
    while in_flight:
        written += write_oldest()
    return written


@dataclass
class Outcome:
    """What a run did: records written, the records skipped as invalid, the settings it ran with,
    and its seconds (after the pipeline was loaded here)."""

    written: int
    skipped: List[FormatError]
    settings: RunSettings
    seconds: float


def annotate_with(
    engine: Engine,
    vocab: Vocab,
    pipeline: str,
    input_path: Path,
    output: Path,
    settings: RunSettings,
    *,
    model: str = "",
    max_length: Optional[int] = None,
    resume: bool = False,
    skip_invalid: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = lambda message: None,
) -> Outcome:
    """Annotate every record of ``input_path`` into ``output`` on ``engine``; the run of every engine.

    ``pipeline`` is the pipeline's fingerprint (``run.pipeline_fingerprint``), ``vocab`` the
    vocab to read DocBin inputs with, ``max_length`` the pipeline's own ``nlp.max_length``.
    Checks the input and ``output`` before the engine starts; with ``resume`` goes on with the
    settings the run was started with (``run.start_run``). Notes for the user go to ``say``;
    the skipped records' list is written to ``OUTPUT.skipped.txt``.
    """
    began = time.perf_counter()
    inputs = fingerprint(input_path, say)
    started = start_run(output, RunRecord(settings, tuple(inputs), pipeline, model), resume, say)
    if started is None:
        return Outcome(0, [], settings, time.perf_counter() - began)
    pieces, done, settings = started
    skipped = Skipped(skip_invalid=skip_invalid)
    limit = settings.max_length if settings.max_length is not None else max_length
    records = read_records(input_path, settings.text_key, vocab, skipped, limit)
    todo = (r for r in records if r is not None and r.position >= done * settings.piece_size)
    groups = group_pieces(todo, lambda record: record.position, settings.piece_size, done)
    total = sum(f.records for f in inputs) - done * settings.piece_size
    with engine(settings) as (submit, window), tqdm(unit="docs", total=total, disable=not progress) as bar:
        written = write_pieces(pieces, groups, submit, window, bar)
    listing = output.with_name(output.name + ".skipped.txt")
    if skipped.invalid:
        write_text_atomically(listing, "".join(f"{err}\n" for err in skipped.invalid))
        say(f"Skipped {len(skipped.invalid)} invalid record{'s' * (len(skipped.invalid) != 1)}, listed in {listing}")
    pieces.finish()
    return Outcome(written, skipped.invalid, settings, time.perf_counter() - began)


def local_engine(nlp: Language, n_process: int) -> Engine:
    """This process (``n_process`` 1), or a pool of worker processes that each get ``nlp`` once.

    Not ``nlp.pipe(n_process=N)``: that sends every ``Doc`` back to this process, whose
    deserialization made two processes slower than one; the workers send back JSON records.
    """

    @contextmanager
    def engine(settings: RunSettings) -> Iterator[Tuple[Submit, int]]:
        if n_process <= 1:
            yield (lambda records: _Done(annotate_piece(nlp, records, settings))), 1
            return
        with ProcessPoolExecutor(n_process, initializer=_hold_pipeline, initargs=(nlp,)) as pool:
            yield (lambda records: pool.submit(_annotate_in_worker, records, settings)), 2 * n_process

    return engine


def dask_engine(model: str, scheduler: Optional[str], n_workers: int) -> Engine:
    """The Dask cluster at ``scheduler``, or a local cluster of ``n_workers`` processes (closed after).

    Dask (``pip install -e ".[dask]"``): pure Python from the package registry, a local cluster in
    seconds, and futures that map one-to-one onto an output piece. Each worker loads ``model``
    once; a remote cluster's workers need this package and the pipeline at the same path (or an
    installed pipeline package).
    """

    @contextmanager
    def engine(settings: RunSettings) -> Iterator[Tuple[Submit, int]]:
        from distributed import Client, LocalCluster

        cluster = None if scheduler else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True)
        try:
            with Client(scheduler or cluster) as client:
                window = 2 * max(1, len(client.scheduler_info().get("workers", {})))  # pieces in flight

                def submit(records: List[Record]) -> Any:
                    return client.submit(annotate_model_piece, model, records, settings, pure=False)

                yield submit, window
        finally:
            if cluster is not None:
                cluster.close()

    return engine


def annotate(
    nlp: Language,
    input_path: Path,
    output: Path,
    settings: RunSettings = RunSettings(),
    *,
    n_process: int = 1,
    resume: bool = False,
    skip_invalid: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = lambda message: None,
) -> Outcome:
    """Annotate every record of ``input_path`` into ``output`` with ``nlp`` in this process (or
    ``n_process`` worker processes); see `annotate_with`."""
    return annotate_with(
        local_engine(nlp, n_process), nlp.vocab, pipeline_fingerprint(nlp), input_path, output, settings,
        model=nlp.meta.get("name", ""), max_length=nlp.max_length, resume=resume, skip_invalid=skip_invalid,
        progress=progress, say=say,
    )  # fmt: skip


def annotate_model(
    model: str,
    input_path: Path,
    output: Path,
    settings: RunSettings = RunSettings(),
    *,
    engine: str = "local",
    scheduler: Optional[str] = None,
    n_process: int = 1,
    resume: bool = False,
    skip_invalid: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = lambda message: None,
) -> Outcome:
    """``annotate`` with a pipeline named by ``model`` (a folder or a package) on ``engine``:
    ``local`` loads it here, ``dask`` on each worker. The run records the pipeline by its files."""
    pipeline = pipeline_fingerprint(model)
    if engine == "dask":
        reader = spacy.blank("en")  # only its vocab, for DocBin inputs; the workers load the pipeline
        run = dask_engine(model, scheduler, n_process)
    else:
        reader = spacy.load(model)
        run = local_engine(reader, n_process)
    return annotate_with(
        run, reader.vocab, pipeline, input_path, output, settings, model=model, max_length=reader.max_length,
        resume=resume, skip_invalid=skip_invalid, progress=progress, say=say,
    )  # fmt: skip


class _Done:
    """A piece annotated in this process: its result is ready."""

    def __init__(self, records: List[Dict[str, Any]]) -> None:
        self.records = records

    def result(self) -> List[Dict[str, Any]]:
        return self.records


_worker_pipeline: Optional[Language] = None  # a worker process's pipeline (the local pool)


def _hold_pipeline(nlp: Language) -> None:
    global _worker_pipeline
    _worker_pipeline = nlp


def _annotate_in_worker(records: List[Record], settings: RunSettings) -> List[Dict[str, Any]]:
    assert _worker_pipeline is not None, "the worker's initializer did not run"
    return annotate_piece(_worker_pipeline, records, settings)


@lru_cache(maxsize=2)
def _pipeline(model: str) -> Language:
    return spacy.load(model)


def annotate_model_piece(model: str, records: List[Record], settings: RunSettings) -> List[Dict[str, Any]]:
    """The output records of one piece on a Dask worker, which loads ``model`` once."""
    return annotate_piece(_pipeline(model), records, settings)
