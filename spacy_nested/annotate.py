"""``python -m spacy_nested annotate MODEL INPUT OUTPUT``: run a pipeline over a corpus, resumably.

Input: a text file (``.txt``: one doc per line, its 1-based line number as ``id``), JSON
lines (``.jsonl``: the text under ``--text-key``, every other field of the record passes
through to the output), a ``.spacy`` DocBin (its index as ``id``), or a folder of these
(read in name order).

Output: one JSON record per input doc, in input order, with the passed-through fields and
``spans``: ``[{"start", "end", "label", "score"}]`` with character offsets (``--spans-key``
names the span group, so any spaCy span pipeline works, spancat included). OUTPUT ending in
``.jsonl`` is one file; any other OUTPUT is a folder of pieces ``part-00000.jsonl``,
``part-00001.jsonl``, ... to be read in name order.

Nothing lost, nothing twice: input record ``i`` goes to piece ``i // piece_size``, and a
piece is written to a temporary name and renamed once complete, so a piece is either whole
or absent. A run killed at any point (SIGKILL included) is finished by the same command with
``--resume``: the complete pieces are kept, the records they hold are not annotated again,
and the result equals an uninterrupted run. A single-file OUTPUT is assembled from its
pieces (kept in ``OUTPUT.parts/`` meanwhile) by one more rename at the end.

Bad input: an invalid JSON line or a record without the text field stops the run with
``file:line: problem`` (the pieces written before it are complete and ``--resume`` goes on
once the input is fixed); with ``--skip-invalid`` the line is skipped and listed in
``OUTPUT.skipped.txt``.

``spacy apply`` also runs these pipelines; this command adds resuming, pass-through fields,
character-offset records and the scores.
"""

import json
import os
import shutil
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    ContextManager,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from ._cli_util import app, fail
from .formats.errors import FormatError, Skipped, skip_or_raise

INPUT_SUFFIXES = (".txt", ".jsonl", ".spacy")
PIECE = "part-{:05d}.jsonl"


@dataclass
class Record:
    """One input doc: its text and the fields that pass through to the output."""

    index: int  # position among all input records (valid or not), in input order
    text: str
    fields: Dict[str, Any]
    doc: Optional[Doc] = None  # a DocBin's doc, annotated as it is

    @property
    def input(self) -> Union[str, Doc]:
        """What the pipeline is given: the DocBin's doc, else the text."""
        return self.doc if self.doc is not None else self.text


def input_files(path: Path) -> List[Path]:
    """The file, or the input files of a folder in name order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in INPUT_SUFFIXES)
        if not files:
            raise FormatError(path, None, f"no {'/'.join(INPUT_SUFFIXES)} files in the folder")
        return files
    if path.suffix not in INPUT_SUFFIXES:
        raise FormatError(path, None, f"unknown input type '{path.suffix}'; use one of {', '.join(INPUT_SUFFIXES)}")
    return [path]


def read_records(path: Path, text_key: str, nlp: Language, skipped: Optional[Skipped] = None) -> Iterator[Optional[Record]]:
    """Every input record in input order across the files of ``path`` (None: a skipped line).

    A skipped line keeps its place in the numbering, so the pieces of a resumed run hold the
    same records as those of an uninterrupted one.
    """
    files = input_files(path)
    index = 0
    for file in files:
        where = {"file": file.name} if path.is_dir() else {}
        for found in _read_file(file, text_key, nlp, skipped):
            if found is not None:
                text, fields, doc = found
                yield Record(index, text, {**where, **fields}, doc)
            else:
                yield None
            index += 1


Found = Optional[Tuple[str, Dict[str, Any], Optional[Doc]]]


def _read_file(file: Path, text_key: str, nlp: Language, skipped: Optional[Skipped]) -> Iterator[Found]:
    if file.suffix == ".spacy":
        for i, doc in enumerate(DocBin().from_disk(file).get_docs(nlp.vocab)):
            yield (doc.text, {"id": i}, doc)
        return
    with file.open(encoding="utf8") as lines:
        for line_no, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            if file.suffix == ".txt":
                yield (line, {"id": line_no}, None)
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or not isinstance(data.get(text_key), str):
                    raise ValueError(f"no string field '{text_key}' (--text-key)")
            except ValueError as err:
                skip_or_raise(FormatError(file, line_no, str(err)), skipped)
                yield None
                continue
            yield (data.pop(text_key), data, None)


def doc_record(doc: Doc, fields: Dict[str, Any], spans_key: str) -> Dict[str, Any]:
    """The output record: the passed-through fields and the spans with character offsets."""
    group = doc.spans.get(spans_key, [])
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
    return {**fields, "spans": spans}


class Pieces:
    """The output pieces of a run: complete ones, and writing one atomically."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.single = output.suffix == ".jsonl"
        self.folder = output.with_name(output.name + ".parts") if self.single else output

    def path(self, i: int) -> Path:
        return self.folder / PIECE.format(i)

    def n_complete(self) -> int:
        """How many pieces, from the first, are complete (a gap ends the count)."""
        n = 0
        while self.path(n).exists():
            n += 1
        return n

    def started(self) -> bool:
        return self.output.exists() or self.folder.exists()

    def write(self, i: int, records: Iterable[Dict[str, Any]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{PIECE.format(i)}.tmp"
        with tmp.open("w", encoding="utf8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path(i))

    def finish(self) -> None:
        """A single-file output: the pieces joined in order, then renamed into place."""
        if not self.single:
            return
        tmp = self.output.with_name(f".{self.output.name}.tmp")
        with tmp.open("wb") as out:
            for i in range(self.n_complete()):
                with self.path(i).open("rb") as piece:
                    shutil.copyfileobj(piece, out)
        os.replace(tmp, self.output)
        shutil.rmtree(self.folder)


def open_pieces(output: Path, resume: bool) -> Optional[Tuple[Pieces, int]]:
    """The pieces of ``output`` and how many are complete; None when a single file is finished."""
    pieces = Pieces(output)
    if pieces.single and output.exists() and not pieces.folder.exists():
        if resume:
            return None
        raise FileExistsError(f"{output} exists; use --resume to finish an interrupted run, or remove it")
    if pieces.started() and not resume:
        raise FileExistsError(f"{pieces.folder} exists; use --resume to finish an interrupted run, or remove it")
    return pieces, pieces.n_complete()


def pending_records(records: Iterable[Optional[Record]], start: int) -> Iterator[Record]:
    """The valid records from input position ``start`` on (those of the pieces still to write)."""
    return (r for r in records if r is not None and r.index >= start)


Item = TypeVar("Item")


def group_pieces(
    items: Iterable[Item], index: Callable[[Item], int], piece_size: int, done: int
) -> Iterator[Tuple[int, List[Item]]]:
    """``(piece, items)`` in order from piece ``done`` on, by input position ``index(item)``.

    A piece whose records were all invalid comes out empty, so that no piece is missing
    before the last; an input with no record at all gives one empty piece.
    """
    current, seen = done, False
    group: List[Item] = []
    for item in items:
        piece = index(item) // piece_size
        while current < piece:
            yield current, group
            current, group = current + 1, []
        group.append(item)
        seen = True
    if group or (done == 0 and not seen):
        yield current, group


def annotate_piece(nlp: Language, records: Sequence[Record], spans_key: str, batch_size: int) -> List[Dict[str, Any]]:
    """The output records of one piece: what every engine runs, in this process or a worker."""
    docs = nlp.pipe((r.input for r in records), batch_size=batch_size)
    return [doc_record(doc, r.fields, spans_key) for doc, r in zip(docs, records)]


class Result(Protocol):
    """A piece's records once computed: a ``concurrent.futures`` or a Dask future."""

    def result(self) -> List[Dict[str, Any]]: ...


def write_pieces(
    pieces: Pieces,
    groups: Iterable[Tuple[int, List[Record]]],
    submit: Callable[[List[Record]], Result],
    window: int,
    bar: Optional[tqdm] = None,
) -> int:
    """Submit each piece's records as one task, at most ``window`` in flight, and write the
    pieces in order as their records arrive; returns records written. The one driver loop
    of every engine: in this process (``window`` 1), local worker processes, a Dask cluster."""
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


def count_records(path: Path) -> int:
    """How many input records ``path`` holds (valid or not): lines of text and JSONL, docs of a DocBin."""
    total = 0
    for file in input_files(path):
        if file.suffix == ".spacy":
            total += len(DocBin().from_disk(file))
        else:
            with file.open("rb") as lines:
                total += sum(1 for _ in lines)
    return total


def progress_bar(input_path: Path, start: int, enabled: bool) -> tqdm:
    """Docs/s and the ETA on a terminal (counting the input first); nothing when disabled."""
    total = max(count_records(input_path) - start, 0) if enabled else None
    return tqdm(unit="docs", total=total, disable=not enabled)


Submit = Callable[[List[Record]], Result]
Engine = ContextManager[Tuple[Submit, int]]  # entered: how to submit a piece, and how many in flight


def annotate_with(
    engine: Engine,
    reader: Language,
    input_path: Path,
    output: Path,
    *,
    text_key: str = "text",
    piece_size: int = 1000,
    resume: bool = False,
    skipped: Optional[Skipped] = None,
    progress: bool = False,
) -> int:
    """Annotate every record of ``input_path`` into ``output`` on ``engine``; returns records written.

    The run of every engine: checks ``output`` before the engine starts, reads the pending
    records with ``reader``'s vocab, groups them into pieces and writes each in order.
    """
    started = open_pieces(output, resume)
    if started is None:
        return 0
    pieces, done = started
    todo = pending_records(read_records(input_path, text_key, reader, skipped), done * piece_size)
    groups = group_pieces(todo, lambda record: record.index, piece_size, done)
    with engine as (submit, window), progress_bar(input_path, done * piece_size, progress) as bar:
        written = write_pieces(pieces, groups, submit, window, bar)
    pieces.finish()
    return written


@contextmanager
def local_engine(nlp: Language, spans_key: str, batch_size: int, n_process: int) -> Iterator[Tuple[Submit, int]]:
    """This process (``n_process`` 1), or a pool of worker processes that each get ``nlp`` once."""
    if n_process <= 1:
        yield (lambda records: _Done(annotate_piece(nlp, records, spans_key, batch_size))), 1
        return
    with ProcessPoolExecutor(n_process, initializer=_hold_pipeline, initargs=(nlp,)) as pool:
        yield (lambda records: pool.submit(_annotate_in_worker, records, spans_key, batch_size)), 2 * n_process


def annotate(
    nlp: Language,
    input_path: Path,
    output: Path,
    *,
    text_key: str = "text",
    spans_key: str = "nested",
    batch_size: int = 64,
    n_process: int = 1,
    piece_size: int = 1000,
    resume: bool = False,
    skipped: Optional[Skipped] = None,
    progress: bool = False,
) -> int:
    """Annotate every record of ``input_path`` into ``output`` (module docstring); returns records written.

    With ``n_process`` > 1, each of that many worker processes gets the pipeline once and
    annotates whole pieces, and sends back their JSON records. Not ``nlp.pipe(n_process=N)``:
    that sends every ``Doc`` back to this process, whose deserialization (``Doc.from_bytes``,
    each msgpack load scanning the installed packages' entry points through ``srsly``) made
    two processes slower than one (span_finder + spancat on 20,032 words: 29.5 s against 19.4).
    """
    engine = local_engine(nlp, spans_key, batch_size, n_process)
    return annotate_with(
        engine, nlp, input_path, output, text_key=text_key, piece_size=piece_size, resume=resume,
        skipped=skipped, progress=progress,
    )  # fmt: skip


class _Done:
    """A piece annotated in this process: its result is ready."""

    def __init__(self, records: List[Dict[str, Any]]) -> None:
        self.records = records

    def result(self) -> List[Dict[str, Any]]:
        return self.records


_worker_pipeline: Optional[Language] = None  # a worker process's pipeline (``annotate``'s pool)


def _hold_pipeline(nlp: Language) -> None:
    global _worker_pipeline
    _worker_pipeline = nlp


def _annotate_in_worker(records: List[Record], spans_key: str, batch_size: int) -> List[Dict[str, Any]]:
    assert _worker_pipeline is not None, "the worker's initializer did not run"
    return annotate_piece(_worker_pipeline, records, spans_key, batch_size)


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    input_path: Path = typer.Argument(..., help="A .txt, .jsonl or .spacy file, or a folder of them", exists=True),
    output: Path = typer.Argument(..., help="OUTPUT.jsonl (one file) or a folder of JSONL pieces"),
    text_key: str = typer.Option("text", "--text-key", help="JSONL field holding the text"),
    spans_key: str = typer.Option("nested", "--spans-key", "-k", help="Span group to write"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    n_process: int = typer.Option(1, "--n-process", "-n"),
    piece_size: int = typer.Option(1000, "--piece-size", help="Input records per output piece"),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run, keeping its complete pieces"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip and list invalid input lines"),
    engine: str = typer.Option("local", "--engine", help="local (this machine) or dask (a Dask cluster)"),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Dask scheduler address (--engine dask; none: a local cluster of --n-process workers)"
    ),
) -> None:
    """Annotate a corpus with a pipeline into JSONL records with character offsets, resumably."""
    skipped = Skipped(skip_invalid=skip_invalid)
    try:
        if engine == "dask":
            from .cluster import annotate_on_dask

            start = time.perf_counter()
            written = annotate_on_dask(
                model, input_path, output, scheduler=scheduler, n_workers=n_process, text_key=text_key,
                spans_key=spans_key, batch_size=batch_size, piece_size=piece_size, resume=resume, skipped=skipped,
                progress=sys.stderr.isatty(),
            )  # fmt: skip
        elif engine == "local":
            nlp = spacy.load(model)
            start = time.perf_counter()
            written = annotate(
                nlp, input_path, output, n_process=n_process, text_key=text_key, spans_key=spans_key,
                batch_size=batch_size, piece_size=piece_size, resume=resume, skipped=skipped,
                progress=sys.stderr.isatty(),
            )  # fmt: skip
        else:
            raise typer.BadParameter("choose local or dask", param_hint="--engine")
    except ImportError as err:
        fail(f'{err}: --engine dask needs `pip install -e ".[dask]"`')
    except (FormatError, FileExistsError, OSError) as err:
        fail(str(err))
    if skipped.invalid:
        listing = output.with_name(output.name + ".skipped.txt")
        listing.write_text("".join(f"{err}\n" for err in skipped.invalid), encoding="utf8")
        typer.echo(f"Skipped {len(skipped.invalid)} invalid lines, listed in {listing}", err=True)
    seconds = time.perf_counter() - start
    typer.echo(f"Annotated {written} docs into {output} in {seconds:.2f} s (after loading the pipeline here)")
