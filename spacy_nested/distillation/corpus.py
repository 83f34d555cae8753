"""The distilled corpus, ``OUTPUT/corpus/``, and its record ``distill.json``.

``OUTPUT/corpus/`` holds

* ``train_distilled.spacy``: the training docs, each with its gold spans merged with the
  teacher's under the student's key (``teacher.merge_with_gold``), all the teacher's spans under
  ``teacher``, and the doc's other annotations as they were;
* ``unlabeled.spacy`` (with ``--unlabeled``): one doc per unlabeled record, its tokens and the
  two span groups only;
* ``distill.json``: how it was made (``settings``: the teacher's path, fingerprint, key and
  thresholds, the targets' threshold, the student's key, each input file's size, SHA-256 and
  record count) and what it holds (``counts`` per DocBin: docs, words, target spans from gold and
  from the teacher, teacher spans dropped as duplicates or conflicts or under the threshold, and
  the spans under ``teacher``).

The folder is written all or nothing: into a temporary folder beside it, renamed into place at
the end; a failure leaves no trace. An existing corpus is reused when its ``settings`` are the
ones of this run (same teacher, inputs and settings: the same docs), so a run started with
``--corpus-only`` is trained by the same command without it; any other existing corpus is refused,
naming what differs. spaCy's ``Corpus`` (and ``spacy_nested.GoldTokensCorpus.v1``) read every
``.spacy`` file of a folder, so ``--paths.train OUTPUT/corpus`` trains on both DocBins.
"""
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import spacy
from spacy.language import Language
from spacy.tokens import DocBin

from spacy_nested import __version__
from spacy_nested.annotation.inputs import fingerprint, read_records
from spacy_nested.corpora.formats.errors import Skipped
from spacy_nested.distillation.teacher import TEACHER_KEY, Labelled, MergeCounts, Teacher, label_gold_docs, label_records
from spacy_nested.files import replace_folder

DISTILL_FILE = "distill.json"
TRAIN_FILE = "train_distilled.spacy"
UNLABELED_FILE = "unlabeled.spacy"
RECORD_VERSION = 1
MERGE_RULE = "union: gold spans + teacher spans >= threshold with boundaries no gold span has"
GOLD_RULE = "gold: the gold spans alone (the teacher's kept under 'teacher' only)"
TRAIN_TARGETS = {"merge": MERGE_RULE, "gold": GOLD_RULE}  # --train-targets: the rule of the training docs' targets


@dataclass(frozen=True)
class DistillSettings:
    """What the corpus is made with besides the teacher: the student's key and how records are read."""

    student_key: str = "nested"
    text_key: str = "text"  # the unlabeled JSONL records' text field
    batch_size: int = 64  # docs per teacher batch (does not change the corpus)
    skip_invalid: bool = False  # skip (and count) unreadable unlabeled records instead of stopping
    train_targets: str = "merge"  # the training docs' targets: "merge" (gold + teacher, MERGE_RULE) or "gold"

    def __post_init__(self) -> None:
        if self.train_targets not in TRAIN_TARGETS:
            raise ValueError(f"train targets must be one of {', '.join(TRAIN_TARGETS)}, got '{self.train_targets}'")
        if self.student_key == TEACHER_KEY:
            raise ValueError(f"the student's spans key cannot be '{TEACHER_KEY}': the corpus keeps the teacher's spans there")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")


@dataclass
class Counts:
    """What one DocBin holds (``distill.json``'s ``counts``)."""

    docs: int = 0
    words: int = 0
    spans: int = 0  # under the student's key
    gold_spans: int = 0
    teacher_spans: int = 0  # targets from the teacher
    teacher_duplicates: int = 0
    teacher_conflicts: int = 0
    teacher_below_threshold: int = 0
    teacher_key_spans: int = 0  # under TEACHER_KEY
    skipped_records: int = 0

    def add(self, labelled: Labelled) -> None:
        counts: MergeCounts = labelled.counts
        self.docs += 1
        self.words += len(labelled.doc)
        self.gold_spans += counts.gold
        self.teacher_spans += counts.added
        self.spans += counts.gold + counts.added
        self.teacher_duplicates += counts.duplicates
        self.teacher_conflicts += counts.conflicts
        self.teacher_below_threshold += counts.below
        self.teacher_key_spans += labelled.teacher_spans


@dataclass
class CorpusRecord:
    """``distill.json``: ``settings`` (what makes the corpus what it is), ``paths`` (where the teacher and
    inputs were: not compared, the same files elsewhere make the same corpus) and ``counts``."""

    settings: Dict[str, Any]
    paths: Dict[str, Optional[str]] = field(default_factory=dict)
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    software: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False  # this run found the corpus written (not saved)

    def to_json(self) -> Dict[str, Any]:
        return {"version": RECORD_VERSION, "settings": self.settings, "paths": self.paths, "counts": self.counts,
                "software": self.software, "seconds": round(self.seconds, 2)}  # fmt: skip


def corpus_settings(teacher: Teacher, train: Path, unlabeled: Optional[Path], settings: DistillSettings,
                    say: Callable[[str], None]) -> Dict[str, Any]:  # fmt: skip
    """The record's ``settings``: everything the docs depend on (input files by size, hash and records)."""
    if train.is_dir() or train.suffix != ".spacy":
        raise ValueError(f"--train {train}: a .spacy DocBin of gold docs")
    inputs: Dict[str, Any] = {"train": [f.to_json() for f in fingerprint(train, say)], "unlabeled": None}
    if unlabeled is not None:
        inputs["unlabeled"] = [f.to_json() for f in fingerprint(unlabeled, say)]
        inputs["text_key"] = settings.text_key
    return {
        "teacher": teacher.to_json(),
        "threshold": teacher.threshold,  # None: every span the teacher writes
        "merge": TRAIN_TARGETS[settings.train_targets],
        "student_key": settings.student_key,
        "teacher_key": TEACHER_KEY,
        "inputs": inputs,
    }


def write_corpus(
    teacher: Teacher,
    train: Path,
    output: Path,
    settings: DistillSettings = DistillSettings(),
    *,
    unlabeled: Optional[Path] = None,
    say: Callable[[str], None] = lambda message: None,
) -> CorpusRecord:
    """Label ``train`` (and ``unlabeled``) with ``teacher`` into the corpus folder ``output``, all or
    nothing, and return its record; an existing ``output`` made with the same settings is reused.

    RAISES: FileExistsError for another corpus at ``output`` (the differences named); ValueError
    (FormatError, TeacherError among them) for bad inputs or a teacher that fails. Nothing is
    written then.
    """
    began = time.perf_counter()
    wanted = corpus_settings(teacher, train, unlabeled, settings, say)
    if output.exists():
        found = read_record(output)
        differ = _differences(found.settings, wanted)
        if differ:
            raise FileExistsError(
                f"{output} holds a corpus made otherwise ({'; '.join(differ)}); remove it to distill again, "
                "or pass another OUTPUT"
            )
        say(f"{output} holds this run's corpus ({DISTILL_FILE}: same teacher, inputs and settings): reused")
        found.reused = True
        return found
    created = not output.parent.exists()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    paths = {
        "teacher": str(Path(teacher.model).resolve()) if Path(teacher.model).exists() else teacher.model,  # else a package
        "train": str(train.resolve()),
        "unlabeled": None if unlabeled is None else str(unlabeled.resolve()),
    }
    software = {"spacy": spacy.about.__version__, "spacy_nested": __version__}
    try:
        record = CorpusRecord(wanted, paths, software=software)
        written = tmp / "corpus"  # mkdtemp's folder is private (0700): the corpus gets the usual permissions
        written.mkdir()
        record.counts[TRAIN_FILE] = _write_train(teacher, train, written / TRAIN_FILE, settings, say)
        if unlabeled is not None:
            record.counts[UNLABELED_FILE] = _write_unlabeled(teacher, unlabeled, written / UNLABELED_FILE, settings)
        record.seconds = time.perf_counter() - began
        (written / DISTILL_FILE).write_text(json.dumps(record.to_json(), indent=1) + "\n", encoding="utf8")
        replace_folder(written, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(output.parent.iterdir()):
            output.parent.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return record


def _write_train(
    teacher: Teacher, train: Path, path: Path, settings: DistillSettings, say: Callable[[str], None]
) -> Dict[str, int]:
    counts = Counts()
    out = DocBin(store_user_data=True)  # every annotation of the gold docs kept
    gold = DocBin().from_disk(train).get_docs(teacher.nlp.vocab)  # a generator over the file's arrays
    merge = settings.train_targets == "merge"
    for labelled in label_gold_docs(teacher, gold, settings.student_key, settings.batch_size, merge=merge):
        out.add(labelled.doc)
        counts.add(labelled)
    if counts.docs and not counts.gold_spans:
        say(f"Warning: no doc of {train} has a span under '{settings.student_key}', the student's key: is it the corpus's key?")
    out.to_disk(path)
    return asdict(counts)


def _write_unlabeled(teacher: Teacher, unlabeled: Path, path: Path, settings: DistillSettings) -> Dict[str, int]:
    skipped = Skipped(skip_invalid=settings.skip_invalid)
    records = read_records(unlabeled, settings.text_key, teacher.nlp.vocab, skipped, teacher.nlp.max_length)
    counts = Counts()
    out = DocBin(attrs=["ORTH"])  # the tokens (and spaces) and the span groups: ~16 bytes a token
    found = (record for record in records if record is not None)
    for labelled in label_records(teacher, found, settings.student_key, settings.batch_size):
        out.add(labelled.doc)
        counts.add(labelled)
    counts.skipped_records = len(skipped.invalid)
    out.to_disk(path)
    return asdict(counts)


def read_record(corpus: Path) -> CorpusRecord:
    """The record of the corpus folder ``corpus``. RAISES (FileExistsError): a folder without a readable one."""
    path = corpus / DISTILL_FILE
    try:
        data = json.loads(path.read_text(encoding="utf8"))
        if data.get("version") != RECORD_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        found = CorpusRecord(data["settings"], data.get("paths", {}), data["counts"], data.get("software", {}))
        found.seconds = float(data.get("seconds", 0.0))
        return found
    except (OSError, ValueError, KeyError) as err:
        raise FileExistsError(f"{corpus} exists but {path} cannot be read ({err}); remove {corpus} to distill again") from err


def _differences(found: Dict[str, Any], wanted: Dict[str, Any], where: str = "") -> List[str]:
    out: List[str] = []
    for key in sorted(set(found) | set(wanted)):
        a, b = found.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{where}{key}.")
        elif a != b:
            out.append(f"{where}{key}: {_short(a)} then, {_short(b)} now")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def student_spans_key(config_path: Path, overrides: Optional[Dict[str, Any]] = None) -> str:
    """The key the student trains on: that of the last pipe of its config's pipeline with a ``spans_key``
    (a detector, a ``nested_ensemble`` after its members, spancat), or its factory's default.

    RAISES (ValueError): the config has no such pipe.
    """
    config = spacy.util.load_config(config_path, overrides=dict(overrides or {}), interpolate=True)
    found: Optional[str] = None
    for name in config["nlp"]["pipeline"]:
        block = config["components"].get(name, {})
        key = block.get("spans_key")
        if key is None and "factory" in block and Language.has_factory(block["factory"]):
            key = (Language.get_factory_meta(block["factory"]).default_config or {}).get("spans_key")
        if isinstance(key, str):
            found = key
    if found is None:
        raise ValueError(f"{config_path}: no pipe of its pipeline writes a span group (spans_key); pass --spans-key")
    return found


def student_overrides(corpus: Path, dev: Path, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """``spacy train``'s overrides: ``paths.train`` the corpus folder, ``paths.dev`` the dev DocBin, and the
    user's. RAISES (ValueError): the user's set either path."""
    taken = sorted(key for key in overrides if key in ("paths.train", "paths.dev"))
    if taken:
        raise ValueError(f"--{taken[0]} is set by distill (the distilled corpus, --dev); leave it out")
    return {**overrides, "paths.train": str(corpus), "paths.dev": str(dev)}
