"""Reader for BRAT standoff annotations: ``X.txt`` + ``X.ann`` pairs.

``X.ann`` holds one annotation per line. Entities (text-bound annotations)
give a type, character offsets into ``X.txt`` (end exclusive) and the text::

    T1<TAB>protein 0 4<TAB>IL-2
    T2<TAB>DNA 0 9<TAB>IL-2 gene
    T3<TAB>protein 0 4;15 19<TAB>IL-2 IL-4

T3 is discontinuous: its fragments are separated by ``;`` and its text is
theirs joined by a space. The other kinds (relations R, events E, attributes
A and M, normalizations N, notes #, equivalences *) are ignored.

* A directory means every ``*.ann`` in it, sorted, each with the ``.txt`` of
  the same stem (a ``.txt`` without an ``.ann``, say a README, is ignored).
  A single ``.ann`` or ``.txt`` path means that pair. A missing partner is
  a FormatError.
* One `NestedSentence` per document, doc_id = the file stem. Sentences are
  not split: BRAT does not mark them and an entity may cross a line break
  (run a sentencizer on the Docs if needed).
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

Every problem raises `FormatError` with the file and line. Given
``skipped=Skipped(skip_invalid=True)``, an invalid ``.ann`` line is skipped
instead (the rest of the document is kept), and so is a document whose
``.txt`` is missing, empty or not UTF-8; each error is kept in
``skipped.invalid``.
"""

import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from .base import LabeledSpan, NestedSentence
from .errors import NO_SENTENCES, FormatError, FormatWarning, Skipped, skip_or_raise

__all__ = ["read_brat"]

Tokenizer = Callable[[str], Doc]
IGNORED_KINDS = ("R", "E", "A", "M", "N", "#", "*")
OFFSETS_HINT = "expected 'TYPE START END' or 'TYPE START END;START END...'"


class Entity(NamedTuple):
    line_no: int
    label: str
    fragments: List[Tuple[int, int]]  # character offsets, end exclusive


def read_brat(
    path: Union[str, Path],
    nlp_or_tokenizer: Union[Language, Tokenizer],
    *,
    skipped: Optional[Skipped] = None,
) -> Iterator[NestedSentence]:
    """Read BRAT documents, one `NestedSentence` per ``.txt``/``.ann`` pair.

    path: a directory of pairs, or one ``.ann`` or ``.txt`` file.
    nlp_or_tokenizer: a pipeline (its ``make_doc`` is used) or a tokenizer.
    skipped (Optional[Skipped]): counts to add the skipped entities to; with
        ``skip_invalid``, where invalid ``.ann`` lines and documents are
        recorded and skipped instead of raised.
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
    return _iter_documents(ann_paths, tokenizer, skipped if skipped is not None else Skipped())


def _iter_documents(
    ann_paths: List[Path], tokenizer: Tokenizer, skipped: Skipped
) -> Iterator[NestedSentence]:
    for ann_path in ann_paths:
        try:
            sentence = _read_document(ann_path, tokenizer, skipped)
        except FormatError as error:
            skip_or_raise(error, skipped)
            continue
        yield sentence


def _read_document(ann_path: Path, tokenizer: Tokenizer, skipped: Skipped) -> NestedSentence:
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
    for entity in _read_entities(ann_path, text, skipped):
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
    return NestedSentence(
        tokens=[token.text for token in doc],
        spans=list(dict.fromkeys(spans)),  # drop exact duplicates, keep order
        doc_id=ann_path.stem,
        spaces=[bool(token.whitespace_) for token in doc],
    )


def _read_text(path: Path) -> str:
    """The text exactly as stored: no newline translation, which would shift offsets."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no = data.count(b"\n", 0, err.start) + 1
        raise FormatError(path, line_no, f"invalid UTF-8 at byte {err.start}") from None


def _read_entities(path: Path, text: str, skipped: Skipped) -> Iterator[Entity]:
    """The entities of an ``.ann`` file; an invalid line goes to `skip_or_raise`."""
    first_lines: Dict[str, int] = {}  # entity id -> line
    with path.open("rb") as file_:
        for line_no, raw in enumerate(file_, start=1):
            try:
                entity = _read_entity_line(raw, line_no, text, first_lines)
            except ValueError as err:
                skip_or_raise(FormatError(path, line_no, str(err)), skipped)
                continue
            if entity is not None:
                yield entity


def _read_entity_line(
    raw: bytes, line_no: int, text: str, first_lines: Dict[str, int]
) -> Optional[Entity]:
    """The entity of one ``.ann`` line; None for a blank or ignored line. Raises ValueError."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise ValueError(f"invalid UTF-8 at byte {err.start}") from None
    if line_no == 1:
        line = line.lstrip("\ufeff")
    if not line.strip():
        return None
    ann_id = line.split("\t", 1)[0]
    if ann_id.startswith(IGNORED_KINDS):
        return None
    if not ann_id.startswith("T"):
        raise ValueError(
            f"unknown annotation id {ann_id!r}: expected T (entity) or one of "
            f"{', '.join(IGNORED_KINDS)} (ignored)"
        )
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
