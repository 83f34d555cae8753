"""A run's output pieces and its record of what it was started with (``run.json``).

Input record at position ``i`` goes to piece ``i // piece_size``; a piece is written to a
temporary name and renamed once complete, so it is either whole or absent. Before its first
piece a run writes ``run.json`` beside the pieces: the input files with their size, hash and
record count, the pipeline's fingerprint, and every setting that changes the records
(`RunSettings`). ``--resume`` reads it back and

* continues with the recorded settings, whatever is passed again (saying so for each that
  differs), so the pieces of both runs line up;
* refuses, naming what differs and leaving the pieces untouched, when an input file or the
  pipeline is not the one the run started with.

``--batch-size`` is recorded because a pipeline quantized to int8 scales each batch by its own
values, so its spans depend on which documents share a batch; batches are formed within each
piece, so with the same piece and batch sizes a resumed run forms the batches an uninterrupted
one would. ``--n-process`` and the engine do not change them and are not recorded. Nor is
``--skip-invalid``: it decides only whether a bad record stops the run, and the pieces a stopped
run wrote hold records before the bad one, the same either way. A run record from before
``--batch-size`` was recorded (version 1) resumes with the size given, saying so.

So a resume writes exactly what an uninterrupted run over the same input would. A single-file
OUTPUT is assembled from its pieces (kept in ``OUTPUT.parts/`` meanwhile) by one more rename at
the end; a folder OUTPUT keeps its pieces and ``run.json``.
"""
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

import spacy
from spacy.language import Language

from spacy_nested.annotation.inputs import InputFile

PIECE = "part-{:05d}.jsonl"
RUN_FILE = "run.json"
RUN_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 did not record batch_size


@dataclass(frozen=True)
class RunSettings:
    """Every option that changes the output records: recorded at the start, kept by ``--resume``."""

    piece_size: int = 1000
    text_key: str = "text"
    spans_key: str = "nested"
    include_text: bool = False
    max_length: Optional[int] = None  # characters; None: the pipeline's nlp.max_length
    batch_size: int = 64  # docs per nlp.pipe batch, formed within each piece (int8 spans depend on it)

    def __post_init__(self) -> None:
        for name in ("piece_size", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.option(name)} must be at least 1, got {getattr(self, name)}")

    @staticmethod
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")


class ResumeRefused(ValueError):
    """``--resume`` found a run it cannot continue; the message says why and how to start over."""


class Pieces:
    """The output pieces of a run: where they live, the complete ones, writing one atomically."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.single = output.suffix == ".jsonl"
        self.folder = output.with_name(output.name + ".parts") if self.single else output
        self.run_file = self.folder / RUN_FILE

    def path(self, i: int) -> Path:
        return self.folder / PIECE.format(i)

    def n_complete(self) -> int:
        """How many pieces, from the first, are complete (a gap ends the count)."""
        n = 0
        while self.path(n).exists():
            n += 1
        return n

    def started(self) -> bool:
        """Whether a run wrote a piece here (a run record alone holds nothing to keep)."""
        return self.path(0).exists()

    def finished(self) -> bool:
        """A single-file output in place with no pieces left: nothing to resume."""
        return self.single and self.output.exists() and not self.folder.exists()

    @property
    def record_file(self) -> Path:
        """Where a single-file output keeps its run's record once finished (``OUTPUT.run.json``)."""
        return self.output.with_name(self.output.name + ".run.json") if self.single else self.run_file

    def write(self, i: int, records: Iterable[Dict[str, Any]]) -> None:
        _write_atomically(self.path(i), (json.dumps(record, ensure_ascii=False) + "\n" for record in records))

    def finish(self) -> None:
        """A single-file output: the pieces joined in order, renamed into place, then the pieces
        removed (renamed away first, so that a run killed meanwhile finds either every piece or none)."""
        if not self.single:
            return
        tmp = self.output.with_name(f".{self.output.name}.tmp")
        with tmp.open("wb") as out:
            for i in range(self.n_complete()):
                with self.path(i).open("rb") as piece:
                    shutil.copyfileobj(piece, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.output)
        write_text_atomically(self.record_file, self.run_file.read_text(encoding="utf8"))
        trash = self._trash()
        os.replace(self.folder, trash)
        shutil.rmtree(trash)

    def _trash(self) -> Path:
        return self.folder.with_name(f".{self.folder.name}.done")

    def clear_trash(self) -> None:
        if self._trash().exists():
            shutil.rmtree(self._trash())


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    """``path`` written whole under a temporary name, synced, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf8") as out:
        out.writelines(lines)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def write_text_atomically(path: Path, text: str) -> None:
    _write_atomically(path, [text])


def pipeline_fingerprint(model: Union[str, Path, Language]) -> str:
    """What identifies a pipeline's predictions: the hash of a pipeline folder's files, an installed
    pipeline package's name and version, or the hash of a loaded pipeline's bytes (its vocab excepted,
    which grows with the text it sees)."""
    if isinstance(model, Language):
        return "bytes:" + hashlib.sha256(model.to_bytes(exclude=["vocab"])).hexdigest()
    path = Path(model)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            with file.open("rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
        return "folder:" + digest.hexdigest()
    version = spacy.util.get_package_version(str(model))
    return f"package:{model}=={version}"


@dataclass(frozen=True)
class RunRecord:
    """What ``run.json`` holds."""

    settings: RunSettings
    inputs: Tuple[InputFile, ...]
    pipeline: str  # pipeline_fingerprint
    model: str  # as given, for the messages

    def to_json(self) -> Dict[str, Any]:
        return {
            "version": RUN_VERSION,
            "settings": asdict(self.settings),
            "inputs": [f.to_json() for f in self.inputs],
            "pipeline": self.pipeline,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, data: Dict[str, Any], given: RunSettings) -> Tuple["RunRecord", List[str]]:
        """The record, and the settings it lacks (an older version's), which take their ``given`` value."""
        if data.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"unknown version {data.get('version')!r}")
        recorded = data["settings"]
        missing = [f.name for f in fields(RunSettings) if f.name not in recorded]
        settings = replace(given, **{f.name: recorded[f.name] for f in fields(RunSettings) if f.name in recorded})
        inputs = tuple(InputFile(**f) for f in data["inputs"])
        return cls(settings, inputs, data["pipeline"], data["model"]), missing


def start_run(
    output: Path, run: RunRecord, resume: bool, say: Callable[[str], None]
) -> Optional[Tuple[Pieces, int, RunSettings]]:
    """The pieces of ``output``, how many are complete and the settings to go on with; None when a
    single-file output is already finished (with ``resume``).

    RAISES: FileExistsError for an output already there without ``resume``; ResumeRefused when the
    run there cannot be continued (nothing is changed then).
    """
    pieces = Pieces(output)
    pieces.clear_trash()
    if pieces.finished():
        if not resume:
            raise FileExistsError(f"{output} exists; remove it to annotate again")
        if pieces.record_file.exists():
            _check_same_run(_recorded_run(pieces.record_file, output, run.settings, lambda note: None), run, pieces)
        say(f"{output} is complete: nothing to resume")
        return None
    if not pieces.started():
        write_text_atomically(pieces.run_file, json.dumps(run.to_json(), indent=1) + "\n")
        return pieces, 0, run.settings
    if not resume:
        raise FileExistsError(
            f"{pieces.folder} holds an unfinished run; use --resume to finish it, or remove {pieces.folder} to start over"
        )
    recorded = _recorded_run(pieces.run_file, pieces.folder, run.settings, say)
    _check_same_run(recorded, run, pieces)
    for name, before, now in _changed_settings(recorded.settings, run.settings):
        say(f"Resuming with the run's {RunSettings.option(name)} {_show(before)} (given: {_show(now)})")
    return pieces, pieces.n_complete(), recorded.settings


def _recorded_run(path: Path, written: Path, given: RunSettings, say: Callable[[str], None]) -> RunRecord:
    """The run record at ``path`` of what was ``written``; ResumeRefused when missing or unreadable.
    A setting an older record lacks takes its ``given`` value, with a note to ``say``."""
    start_over = f"remove {written} to start over"
    if not path.exists():
        raise ResumeRefused(f"{written} has no {RUN_FILE}, so what its pieces hold is unknown; {start_over}")
    try:
        record, missing = RunRecord.from_json(json.loads(path.read_text(encoding="utf8")), given)
    except (ValueError, KeyError, TypeError) as err:
        raise ResumeRefused(f"{path} cannot be read ({err}); {start_over}") from None
    for name in missing:
        say(
            f"{path}, written by an earlier version, does not record {RunSettings.option(name)}: going on with "
            f"{_show(getattr(given, name))}, which may not be what the run started with; {start_over} to be sure"
        )
    return record


def _check_same_run(recorded: RunRecord, run: RunRecord, pieces: Pieces) -> None:
    """Refuse (ResumeRefused) when an input file or the pipeline differs from the recorded run's."""
    problems: List[str] = []
    before = {f.name: f for f in recorded.inputs}
    now = {f.name: f for f in run.inputs}
    for name in before.keys() - now.keys():
        problems.append(f"input file {name} is gone")
    for name in now.keys() - before.keys():
        problems.append(f"input file {name} is new")
    for name in sorted(before.keys() & now.keys()):
        if before[name] != now[name]:
            a, b = before[name], now[name]
            problems.append(f"input file {name} changed ({a.records} records, {a.size} bytes then; {b.records}, {b.size} now)")
    if recorded.pipeline != run.pipeline:
        problems.append(f"the pipeline differs from the one the run started with ({recorded.model})")
    if problems:
        if pieces.finished():
            written = f"It was written from the input and pipeline as they were; remove {pieces.output} to annotate again"
        else:
            n = pieces.n_complete()
            written = (
                f"Its {n} complete piece{'s' * (n != 1)} were written from the input and pipeline as they were; "
                f"remove {pieces.folder} to start over"
            )
        raise ResumeRefused(f"cannot resume {pieces.output}: " + "; ".join(problems) + ". " + written)


def _changed_settings(before: RunSettings, now: RunSettings) -> Iterator[Tuple[str, Any, Any]]:
    for f in fields(RunSettings):
        a, b = getattr(before, f.name), getattr(now, f.name)
        if a != b:
            yield f.name, a, b


def _show(value: Any) -> str:
    return "default" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


Item = TypeVar("Item")


def group_pieces(
    items: Iterable[Item], position: Callable[[Item], int], piece_size: int, done: int
) -> Iterator[Tuple[int, List[Item]]]:
    """``(piece, items)`` in order from piece ``done`` on, by input position ``position(item)``.

    A piece whose records were all invalid comes out empty, so that no piece is missing
    before the last.
    """
    current = done
    group: List[Item] = []
    for item in items:
        piece = position(item) // piece_size
        while current < piece:
            yield current, group
            current, group = current + 1, []
        group.append(item)
    if group:
        yield current, group
