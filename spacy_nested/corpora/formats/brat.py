"""Reader for BRAT standoff annotations: ``X.txt`` + ``X.ann`` pairs.

``X.ann`` holds one annotation per line. Entities (text-bound annotations)
give a type, character offsets into ``X.txt`` (end exclusive) and the text::

    T1<TAB>protein 0 4<TAB>IL-2
    T2<TAB>DNA 0 9<TAB>IL-2 gene
    T3<TAB>protein 0 4;15 19<TAB>IL-2 IL-4

T3 is discontinuous: its fragments are separated by ``;`` and its text is
theirs joined by a space. The other kinds (relations R, events E, attributes
A and M, normalizations N, notes #, equivalences *) are not entities: they
are skipped and counted by kind in `NonEntityLines` when one is given
(``convert`` prints ``Skipped standoff lines that are not entities:
3 relations (R), 1 note (#)``).

* A directory means every ``*.ann`` in it, sorted, each with the ``.txt`` of
  the same stem (a ``.txt`` without an ``.ann``, say a README, is ignored).
  A single ``.ann`` or ``.txt`` path means that pair. A missing partner is
  a FormatError.
* One `NestedSentence` per document, doc_id = the file stem, whose
  `sent_starts` are the text's lines: the first token of each line with text
  (not only whitespace) starts a sentence. A line's trailing whitespace and
  the blank lines after it (``"\\n"`` tokens) stay in its sentence; leading
  whitespace of the document is in the first. An entity across a line break
  is kept, and crosses a sentence boundary.
* The text is tokenized by the given spaCy tokenizer (``nlp.make_doc``) and
  kept verbatim: the record carries the tokens' `spaces`, so the Doc text
  equals the ``.txt`` text, whitespace tokens such as ``"\\n"`` included.
* Entities are aligned with ``doc.char_span(start, end, alignment_mode=
  "strict")``. Entities that do not align to token boundaries, and
  discontinuous ones, are skipped but never silently: each file with
  skipped entities gets one FormatWarning naming their lines, and the counts
  are added to `skipped` (a `Skipped`) when one is given.
* An entity's text must equal the text at its offsets (line breaks read as
  spaces, since the field is one line), else FormatError. Exact duplicate
  entities are dropped; the same offsets with two types are kept.
* A ``.txt`` that is empty or only whitespace is an error ("no sentences
  found"), as an empty file is for the other readers.

Every problem raises `FormatError` with the file and line, and the column
of a byte that is not UTF-8 (``doc.txt:2:6: not UTF-8 (byte 0xff at column
6)``, for the ``.txt`` too). Given
``skipped=Skipped(skip_invalid=True)``, an invalid ``.ann`` line is skipped
instead (the rest of the document is kept), and so is a document whose
``.txt`` is missing, empty or not UTF-8; each error is kept in
``skipped.invalid``.
"""

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from spacy_nested.corpora.formats.base import LabeledSpan, NestedSentence
from spacy_nested.corpora.formats.errors import (
    NO_SENTENCES,
    FormatError,
    FormatWarning,
    LineError,
    Skipped,
    decode_line,
    skip_or_raise,
)

__all__ = ["NON_ENTITY_KINDS", "NonEntityLines", "read_brat"]

Tokenizer = Callable[[str], Doc]
# The annotations that are not entities, by id prefix: skipped and counted.
NON_ENTITY_KINDS: Dict[str, str] = {
    "R": "relation",
    "E": "event",
    "A": "attribute",
    "M": "attribute",
    "N": "normalization",
    "#": "note",
    "*": "equivalence",
}
OFFSETS_HINT = "expected 'TYPE START END' or 'TYPE START END;START END...'"


class Entity(NamedTuple):
    line_no: int
    label: str
    fragments: List[Tuple[int, int]]  # character offsets, end exclusive


@dataclass
class NonEntityLines:
    """The ``.ann`` lines that `read_brat` skipped because they are not entities.

    counts (Dict[str, int]): lines per id prefix ("R", "#", ...: `NON_ENTITY_KINDS`),
        over the documents read. Printed as ``3 relations (R), 1 note (#)``.
    """

    counts: Dict[str, int] = field(default_factory=dict)

    def add(self, counts: Mapping[str, int]) -> None:
        """Add the counts of one document."""
        for kind, count in counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + count

    def __bool__(self) -> bool:
        return any(self.counts.values())

    def __str__(self) -> str:
        parts = []
        for kind, name in NON_ENTITY_KINDS.items():
            count = self.counts.get(kind, 0)
            if count:
                parts.append(f"{count:,} {name}{'s' if count != 1 else ''} ({kind})")
        return ", ".join(parts) or "none"


def read_brat(
    path: Union[str, Path],
    nlp_or_tokenizer: Union[Language, Tokenizer],
    *,
    skipped: Optional[Skipped] = None,
    non_entities: Optional[NonEntityLines] = None,
) -> Iterator[NestedSentence]:
    """Read BRAT documents, one `NestedSentence` per ``.txt``/``.ann`` pair.

    path: a directory of pairs, or one ``.ann`` or ``.txt`` file.
    nlp_or_tokenizer: a pipeline (its ``make_doc`` is used) or a tokenizer.
    skipped (Optional[Skipped]): counts to add the skipped entities to; with
        ``skip_invalid``, where invalid ``.ann`` lines and documents are
        recorded and skipped instead of raised.
    non_entities (Optional[NonEntityLines]): counts to add the skipped lines
        that are not entities (relations, notes, ...) to, for each document read.
    RAISES (ValueError): at once, for a path that is no directory, ``.ann`` or
        ``.txt``, or a directory without ``.ann`` files.
    RAISES (FormatError): on the first invalid file, when iteration gets there.
    """
    path = Path(path)
    if path.is_dir():
        ann_paths = sorted(path.glob("*.ann"))
        if not ann_paths:
            raise ValueError(f"no .ann files in {path}")
    elif path.suffix in (".ann", ".txt"):
        ann_paths = [path.with_suffix(".ann")]
    else:
        raise ValueError(f"expected a directory, an .ann or a .txt file, got {path}")
    tokenizer: Tokenizer = (
        nlp_or_tokenizer.make_doc if isinstance(nlp_or_tokenizer, Language) else nlp_or_tokenizer
    )
    return _iter_documents(
        ann_paths,
        tokenizer,
        skipped if skipped is not None else Skipped(),
        non_entities if non_entities is not None else NonEntityLines(),
    )


def _iter_documents(
    ann_paths: List[Path], tokenizer: Tokenizer, skipped: Skipped, non_entities: NonEntityLines
) -> Iterator[NestedSentence]:
    for ann_path in ann_paths:
        try:
            sentence = _read_document(ann_path, tokenizer, skipped, non_entities)
        except FormatError as error:
            skip_or_raise(error, skipped)
            continue
        yield sentence


def _read_document(
    ann_path: Path, tokenizer: Tokenizer, skipped: Skipped, non_entities: NonEntityLines
) -> NestedSentence:
    txt_path = ann_path.with_suffix(".txt")
    if not txt_path.is_file():
        raise FormatError(ann_path, 1, f"missing text file {txt_path}")
    if not ann_path.is_file():
        raise FormatError(txt_path, 1, f"missing annotation file {ann_path}")
    text = _read_text(txt_path)
    if not text.strip():
        raise FormatError(txt_path, None, f"{NO_SENTENCES} (the text is empty)")
    doc = tokenizer(text)
    spans: List[LabeledSpan] = []
    misaligned: List[int] = []
    discontinuous: List[int] = []
    kinds: Counter[str] = Counter()  # the lines that are not entities
    for entity in _read_entities(ann_path, text, skipped, kinds):
        if len(entity.fragments) > 1:
            discontinuous.append(entity.line_no)
            continue
        start, end = entity.fragments[0]
        span = doc.char_span(start, end, alignment_mode="strict")
        if span is None:
            misaligned.append(entity.line_no)
            continue
        spans.append((span.start, span.end, entity.label))
    if misaligned or discontinuous:
        warnings.warn(_skipped_message(ann_path, misaligned, discontinuous), FormatWarning)
    skipped.misaligned += len(misaligned)
    skipped.discontinuous += len(discontinuous)
    non_entities.add(kinds)
    return NestedSentence(
        tokens=[token.text for token in doc],
        spans=list(dict.fromkeys(spans)),  # drop exact duplicates, keep order
        doc_id=ann_path.stem,
        spaces=[bool(token.whitespace_) for token in doc],
        sent_starts=_line_starts(doc, text),
    )


def _line_starts(doc: Doc, text: str) -> List[int]:
    """The sentence starts of a document: token 0, then the first token of each later line with text.

    Whitespace tokens never start a sentence: a line break belongs to the line it ends.
    """
    starts = [0]
    previous_end: Optional[int] = None  # where the previous token with text ends
    for token in doc:
        if token.is_space:
            continue
        if previous_end is not None and "\n" in text[previous_end : token.idx]:
            starts.append(token.i)
        previous_end = token.idx + len(token.text)
    return starts


def _read_text(path: Path) -> str:
    """The text exactly as stored: no newline translation, which would shift offsets.

    RAISES (FormatError): at the line and column of the first byte that is not UTF-8.
    """
    data = path.read_bytes()
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        try:
            decode_line(line)
        except LineError as err:
            raise FormatError(path, line_no, err.message, err.column) from None
    return data.decode("utf-8")


def _read_entities(path: Path, text: str, skipped: Skipped, kinds: Counter[str]) -> Iterator[Entity]:
    """The entities of an ``.ann`` file; an invalid line goes to `skip_or_raise`.

    kinds: where the lines that are not entities are counted, by id prefix.
    """
    first_lines: Dict[str, int] = {}  # entity id -> line
    with path.open("rb") as file_:
        for line_no, raw in enumerate(file_, start=1):
            try:
                line = decode_line(raw, first=line_no == 1)
                kind = _annotation_kind(line)
                entity = _read_entity(line, line_no, text, first_lines) if kind == "T" else None
            except ValueError as err:
                skip_or_raise(FormatError.at_line(path, line_no, err), skipped)
                continue
            if kind in NON_ENTITY_KINDS:
                kinds[kind] += 1
            if entity is not None:
                yield entity



def _annotation_kind(line: str) -> Optional[str]:
    """The kind of a line: "T" (entity), a key of NON_ENTITY_KINDS, None if blank. Raises ValueError."""
    if not line.strip():
        return None
    ann_id = line.split("\t", 1)[0]
    for kind in ("T", *NON_ENTITY_KINDS):
        if ann_id.startswith(kind):
            return kind
    raise ValueError(
        f"unknown annotation id {ann_id!r}: expected T (entity) or one of "
        f"{', '.join(NON_ENTITY_KINDS)} (not entities: skipped)"
    )


def _read_entity(line: str, line_no: int, text: str, first_lines: Dict[str, int]) -> Entity:
    """The entity of one ``T`` line. Raises ValueError."""
    ann_id = line.split("\t", 1)[0]
    if ann_id in first_lines:
        raise ValueError(f"duplicate id {ann_id!r} (first on line {first_lines[ann_id]})")
    first_lines[ann_id] = line_no
    return _parse_entity(line, line_no, text)


def _parse_entity(line: str, line_no: int, text: str) -> Entity:
    fields = line.split("\t", 2)
    if len(fields) != 3:
        raise ValueError(
            f"expected 3 tab-separated fields (ID, 'TYPE START END', text), found {len(fields)}"
        )
    label, _, offsets = fields[1].partition(" ")
    if not label:
        raise ValueError(f"missing entity type in {fields[1]!r}")
    fragments = [_parse_fragment(fragment, fields[1], len(text)) for fragment in offsets.split(";")]
    expected = " ".join(text[start:end] for start, end in fragments)
    expected = expected.replace("\r", " ").replace("\n", " ")
    if fields[2] != expected:
        raise ValueError(
            f"entity text {fields[2]!r} does not match the text at {offsets}: {expected!r}"
        )
    return Entity(line_no, label, fragments)


def _parse_fragment(fragment: str, field: str, n_chars: int) -> Tuple[int, int]:
    values = fragment.split()
    if len(values) != 2 or not all(value.isascii() and value.isdigit() for value in values):
        raise ValueError(f"invalid offsets in {field!r}: {OFFSETS_HINT}")
    start, end = int(values[0]), int(values[1])
    if start >= end:
        raise ValueError(f"start {start} >= end {end} in {field!r}")
    if end > n_chars:
        raise ValueError(f"end {end} > {n_chars} characters in the text, in {field!r}")
    return start, end


def _skipped_message(path: Path, misaligned: List[int], discontinuous: List[int]) -> str:
    parts = []
    if misaligned:
        parts.append(f"{len(misaligned)} not aligned to token boundaries ({_lines(misaligned)})")
    if discontinuous:
        parts.append(f"{len(discontinuous)} discontinuous ({_lines(discontinuous)})")
    n_skipped = len(misaligned) + len(discontinuous)
    return f"{path}: skipped {n_skipped} entit{'ies' if n_skipped > 1 else 'y'}: {', '.join(parts)}"


def _lines(line_numbers: List[int]) -> str:
    plural = "s" if len(line_numbers) > 1 else ""
    return f"line{plural} {', '.join(map(str, line_numbers))}"
