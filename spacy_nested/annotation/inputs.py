"""The records ``annotate`` reads, and the fingerprint of its input.

Input kinds: a text file (``.txt``: one doc per line), JSON lines (``.jsonl``: the text under
``text_key``, every other field passes through to the output), a ``.spacy`` DocBin, or a folder
of these (read in name order). Every file is UTF-8 (a byte order mark on the first line is
dropped); a file in another encoding must be converted first (``iconv -f latin1 -t utf-8``).

Each record is numbered by its 0-based position in its file (``index``; a line of ``.txt`` and
``.jsonl``, a doc of ``.spacy``), and a folder's records also name their ``file``, so that every
output record joins back to its input. A bad record (a line that is not UTF-8 or not a JSON
object with the text field, a text over the pipeline's ``max_length``) is a `FormatError` at
``file:line[:column]``; with ``Skipped(skip_invalid=True)`` it is skipped and listed instead.
A skipped record keeps its place in the numbering.
"""
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from spacy_nested.corpora.formats.errors import FormatError, LineError, Skipped, decode_line, parse_json_line, skip_or_raise

INPUT_SUFFIXES = (".txt", ".jsonl", ".spacy")
OUTPUT_FIELDS = ("file", "index", "spans")  # what every output record has (file: a folder's records)


@dataclass
class Record:
    """One input doc: its text and the fields of its output record before the spans."""

    position: int  # among all input records (valid or not) in input order: which piece it goes to
    text: str
    fields: Dict[str, Any]
    doc: Optional[Doc] = None  # a DocBin's doc, annotated as it is

    @property
    def input(self) -> Union[str, Doc]:
        """What the pipeline is given: the DocBin's doc, else the text."""
        return self.doc if self.doc is not None else self.text


@dataclass(frozen=True)
class InputFile:
    """One input file as a run saw it: its name, size, content hash and number of records."""

    name: str
    size: int
    sha256: str
    records: int

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


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


def fingerprint(path: Path, warn: Callable[[str], None]) -> List[InputFile]:
    """Every input file of ``path`` with its hash and record count (one pass over each file).

    RAISES (FormatError): an input without any record (a file, or a folder whose files are all
    empty); in a folder, an empty file is only a warning.
    """
    files = input_files(path)
    found = [_fingerprint_file(file) for file in files]
    empty = [file for file, info in zip(files, found) if info.records == 0]
    if not path.is_dir() and empty:
        raise FormatError(path, None, "no records: the file is empty")
    if path.is_dir() and len(empty) == len(found):
        raise FormatError(path, None, "no records: every input file in the folder is empty")
    for file in empty:
        warn(f"{file}: no records (the file is empty)")
    return found


def _fingerprint_file(file: Path) -> InputFile:
    digest = hashlib.sha256()
    size = newlines = 0
    last = b"\n"
    with file.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            newlines += block.count(b"\n")
            last = block[-1:]
    if file.suffix == ".spacy":
        records = len(DocBin().from_disk(file)) if size else 0
    else:
        records = newlines + (last != b"\n")  # a last line without a newline is a record too
    return InputFile(file.name, size, digest.hexdigest(), records)


def read_records(
    path: Path,
    text_key: str,
    vocab: Vocab,
    skipped: Optional[Skipped] = None,
    max_length: Optional[int] = None,
) -> Iterator[Optional[Record]]:
    """Every input record in input order across the files of ``path`` (None: a skipped record).

    A skipped record keeps its place, so the pieces of a resumed run hold the same records as
    those of an uninterrupted one. ``max_length``: texts longer than that many characters are bad
    records (spaCy refuses them as ``nlp.max_length``'s guard).
    """
    position = 0
    for file in input_files(path):
        where = {"file": file.name} if path.is_dir() else {}
        for index, found in enumerate(_read_file(file, text_key, vocab, skipped, max_length)):
            if found is None:
                yield None
            else:
                text, fields, doc = found
                yield Record(position, text, {**where, "index": index, **fields}, doc)
            position += 1


Found = Optional[Tuple[str, Dict[str, Any], Optional[Doc]]]


def _read_file(file: Path, text_key: str, vocab: Vocab, skipped: Optional[Skipped], max_length: Optional[int]) -> Iterator[Found]:
    if file.suffix == ".spacy":
        for doc in DocBin().from_disk(file).get_docs(vocab):
            yield (doc.text, {}, doc)  # a Doc is annotated as it is: spaCy's max_length guards only texts
        return
    with file.open("rb") as lines:
        for line_no, raw in enumerate(lines, start=1):
            try:
                found = _parse_line(raw, line_no, file.suffix, text_key)
            except LineError as err:
                skip_or_raise(FormatError.at_line(file, line_no, err), skipped)
                yield None
                continue
            yield _checked(file, line_no, found, max_length, skipped)


def _parse_line(raw: bytes, line_no: int, suffix: str, text_key: str) -> Tuple[str, Dict[str, Any], None]:
    text = decode_line(raw, first=line_no == 1)
    if suffix == ".txt":
        return text, {}, None
    data = parse_json_line(text)
    if not isinstance(data, dict) or not isinstance(data.get(text_key), str):
        raise LineError(f"no string field '{text_key}' (--text-key)")
    clash = [key for key in OUTPUT_FIELDS if key in data]
    if clash:
        raise LineError(f"field '{clash[0]}' is one annotate writes itself; rename it in the input")
    return data.pop(text_key), data, None


def _checked(file: Path, line_no: int, found: Tuple[str, Dict[str, Any], None], max_length: Optional[int],
             skipped: Optional[Skipped]) -> Found:  # fmt: skip
    """``found``, or None for a text over ``max_length`` characters (skipped or raised)."""
    n = len(found[0])
    if max_length is not None and n > max_length:
        message = f"{n:,} characters, over the pipeline's max_length of {max_length:,} (--max-length raises it)"
        skip_or_raise(FormatError(file, line_no, message), skipped)
        return None
    return found
