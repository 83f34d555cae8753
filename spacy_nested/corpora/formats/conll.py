"""Reader for CoNLL-style column files: CoNLL-2003 and nested variants.

One token per line, whitespace-separated columns, a blank line between
sentences (CoNLL-2003 English, ``WORD POS CHUNK NER``)::

    -DOCSTART- -X- O O

    EU NNP I-NP I-ORG
    rejects VBZ I-VP O

* The word is column 0; the tags are the last `tag_columns` columns. Several
  tag columns are nesting layers (one per level, e.g. GermEval 2014's outer
  and inner columns): each is decoded on its own and the spans are merged,
  in column order, exact duplicates dropped.
* Without `tag_columns`, `detect_tag_columns` counts them, so that no layer
  is dropped silently: the last column is a layer, and so is each column
  before it, back to the first that is not, that holds only IOB tags with
  either no entity type or a type the later layers also have. A column of
  IOB tags whose types are all syntactic chunk types (``NP``, ``VP``, ...)
  ends the layers: CoNLL-2003's CHUNK column (``I-NP``) is read as data, as
  before. Any other column of IOB tags with types of its own is ambiguous
  (a nesting layer with other types, or a tagging of another kind): a
  FormatError names ``--tag-columns N`` for either reading.
* Every token line of a file has as many columns as its first token line.
* A ``-DOCSTART-`` line starts a document: the sentences that follow get the
  doc_id ``"<file name>:<n>"`` (n = 0, 1, ... within the file) and the
  sent_id ``"<doc_id>-<i>"``; before the first one both are None. It is
  never a token, and it ends an unfinished sentence.
* Tags are ``O``, ``B-TYPE`` or ``I-TYPE`` (BIOES/BILOU tags are errors).
  ``B-X`` always starts an X entity; ``I-X`` continues an open X entity.
  An ``I-X`` with no open X entity starts one under every scheme, so the
  schemes differ only in what they report:

  - ``iob1`` (CoNLL-2003): that is how IOB1 starts entities (``B-X`` only
    separates two adjacent X entities). No warning.
  - ``iob2``: every entity should start with ``B-``; such an ``I-X`` is
    repaired as spaCy's IOB converters do (read as ``B-X``), with a
    FormatWarning naming the file and line.
  - ``auto`` (default): the same decoding, no warnings. Valid IOB2 decodes
    identically under IOB1 rules, so both schemes read correctly.

Every problem raises `FormatError` with the file and line (and the column
of a byte that is not UTF-8: ``x.conll:2:1: not UTF-8 (byte 0xff at column
1)``), and so does a file without any token line ("no sentences found"). Given
``skipped=Skipped(skip_invalid=True)``, a sentence with an invalid line is
skipped instead (its first error kept in ``skipped.invalid``); the sentences
after it keep their sent_ids.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Set, Tuple, Union

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

__all__ = ["CHUNK_TYPES", "DOCSTART", "SCHEMES", "TagLayout", "detect_tag_columns", "read_conll"]

SCHEMES = ("auto", "iob1", "iob2")
DOCSTART = "-DOCSTART-"
# The phrase types of CoNLL-2000 chunking, the CHUNK column of CoNLL-2003.
CHUNK_TYPES = frozenset({"ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP"})
Row = Tuple[int, List[str]]  # (1-based line number, columns)
Line = Tuple[int, Union[List[str], FormatError]]  # a Row, or why the line cannot be read


def read_conll(
    path: Union[str, Path],
    scheme: str = "auto",
    *,
    tag_columns: Optional[int] = None,
    skipped: Optional[Skipped] = None,
) -> Iterator[NestedSentence]:
    """Read a CoNLL column file, one `NestedSentence` per sentence.

    scheme (str): "auto", "iob1" or "iob2" (see the module docstring).
    tag_columns (Optional[int]): how many trailing columns are tag columns,
        one per nesting layer; None: counted by `detect_tag_columns`.
    skipped (Optional[Skipped]): with ``skip_invalid``, where invalid
        sentences (and an empty file) are recorded and skipped instead of raised.
    RAISES (FormatError): when iteration starts, for tag columns that cannot
        be counted (never skipped); on the first invalid sentence, when
        iteration gets there; at the end, for a file without any token line.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown scheme {scheme!r}: expected one of {SCHEMES}")
    if tag_columns is not None and tag_columns < 1:
        raise ValueError(f"tag_columns must be at least 1, got {tag_columns}")
    return _iter_conll(Path(path), scheme, tag_columns, skipped)


@dataclass
class TagLayout:
    """What `detect_tag_columns` found in a file.

    tag_columns (int): how many trailing columns are nesting layers.
    n_columns (int): the columns of the file's first token line (0: none).
    chunk_column (Optional[int]): the 1-based column of chunk tags (CoNLL-2003's
        CHUNK) just before the layers, read as data; None when there is none.
    chunk_types (List[str]): that column's types, sorted.
    """

    tag_columns: int
    n_columns: int = 0
    chunk_column: Optional[int] = None
    chunk_types: List[str] = field(default_factory=list)

    @property
    def layer_columns(self) -> List[int]:
        """The 1-based columns read as nesting layers, outermost first."""
        return list(range(self.n_columns - self.tag_columns + 1, self.n_columns + 1))


def detect_tag_columns(path: Union[str, Path]) -> TagLayout:
    """Count the trailing columns of a CoNLL file that are nesting layers.

    Only the token lines with as many columns as the first one are looked at
    (the reader reports the others). The last column is always a layer. Going
    left from it, a column is a layer too while it holds only IOB tags
    (``O``, ``B-X``, ``I-X``) and either no type at all or one that a layer to
    its right also has; the first column that does not hold only IOB tags
    ends the layers, and so does one whose types are all chunk types
    (`CHUNK_TYPES`: CoNLL-2003's CHUNK column, then reported in the layout).
    RAISES (FormatError): for a column of IOB tags with types that no layer to
        its right has and that are not chunk types: it could be a nesting
        layer or not, so the message names ``--tag-columns`` for both.
    """
    path = Path(path)
    n_columns, iob_only, types = _scan_columns(path)
    layout = TagLayout(tag_columns=1, n_columns=n_columns)
    if n_columns < 2 or not iob_only[n_columns - 1]:
        return layout  # the reader reports what is wrong with the file
    layer_types = set(types[n_columns - 1])
    for column in range(n_columns - 2, 0, -1):  # column 0 is the word
        if not iob_only[column]:
            break
        own = types[column]
        if not own or own & layer_types:
            layout.tag_columns += 1
            layer_types |= own
            continue
        if own <= CHUNK_TYPES:
            layout.chunk_column, layout.chunk_types = column + 1, sorted(own)
            break
        first, n_layers = n_columns - layout.tag_columns + 1, layout.tag_columns
        raise FormatError(
            path,
            None,
            f"column {column + 1} holds only IOB tags, with types ({_listed(own)}) that "
            f"{_columns_name(first, n_columns)} ({_listed(layer_types)}) never {'has' if n_layers == 1 else 'have'}: "
            f"pass --tag-columns {n_layers + 1} to read it as a nesting layer too, or "
            f"--tag-columns {n_layers} to read it as data (library: tag_columns=N)",
        )
    return layout


def _scan_columns(path: Path) -> Tuple[int, List[bool], List[Set[str]]]:
    """The first token line's column count, and per column: only IOB tags?, its types."""
    n_columns = 0
    iob_only: List[bool] = []
    types: List[Set[str]] = []
    with path.open("rb") as file_:
        for line_no, raw in enumerate(file_, start=1):
            try:
                columns = _split_line(path, raw, line_no)
            except FormatError:
                continue
            if not columns or columns[0] == DOCSTART:
                continue
            if not n_columns:
                n_columns = len(columns)
                iob_only, types = [True] * n_columns, [set() for _ in range(n_columns)]
            if len(columns) != n_columns:
                continue
            for column in range(1, n_columns):
                if not iob_only[column]:
                    continue
                tag = columns[column]
                prefix, dash, label = tag.partition("-")
                if tag == "O":
                    continue
                if prefix in ("B", "I") and dash and label:
                    types[column].add(label)
                else:
                    iob_only[column] = False
    return n_columns, iob_only, types


def _listed(types: Set[str], limit: int = 6) -> str:
    names = sorted(types)
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _columns_name(first: int, last: int) -> str:
    return f"column {last}" if first == last else f"columns {first}-{last}"


def _iter_conll(
    path: Path, scheme: str, tag_columns: Optional[int], skipped: Optional[Skipped]
) -> Iterator[NestedSentence]:
    if tag_columns is None:
        tag_columns = detect_tag_columns(path).tag_columns
    first: Optional[Row] = None  # the first token line: it fixes the column count
    n_sentences = 0
    for doc_id, index, lines in _sentence_lines(path):
        n_sentences += 1
        try:
            first = first or _first_row(lines)
            rows = _check_rows(path, lines, first, tag_columns)
            sentence = _parse_sentence(path, rows, scheme, tag_columns, doc_id, index)
        except FormatError as error:
            skip_or_raise(error, skipped)
            continue
        yield sentence
    if not n_sentences:
        skip_or_raise(FormatError(path, None, NO_SENTENCES), skipped)


def _sentence_lines(path: Path) -> Iterator[Tuple[Optional[str], int, List[Line]]]:
    """The token lines of each sentence, with its doc_id and index in the document."""
    doc_id: Optional[str] = None
    n_docs = n_sents = 0
    lines: List[Line] = []
    with path.open("rb") as file_:
        for line_no, raw in enumerate(file_, start=1):
            try:
                columns: Union[List[str], FormatError] = _split_line(path, raw, line_no)
            except FormatError as error:  # a token line that cannot be read
                columns = error
            if columns and (isinstance(columns, FormatError) or columns[0] != DOCSTART):
                lines.append((line_no, columns))
                continue
            if lines:
                yield doc_id, n_sents, lines
                n_sents += 1
                lines = []
            if columns:  # -DOCSTART-
                doc_id = f"{path.name}:{n_docs}"
                n_docs += 1
                n_sents = 0
    if lines:
        yield doc_id, n_sents, lines


def _first_row(lines: List[Line]) -> Optional[Row]:
    """The first readable line of a sentence."""
    return next(((n, columns) for n, columns in lines if isinstance(columns, list)), None)


def _check_rows(
    path: Path, lines: List[Line], first: Optional[Row], tag_columns: int
) -> List[Row]:
    """The rows of a sentence, once every line is readable and has its columns."""
    rows: List[Row] = []
    for line_no, columns in lines:
        if isinstance(columns, FormatError):
            raise columns
        _check_columns(path, line_no, columns, first or (line_no, columns), tag_columns)
        rows.append((line_no, columns))
    return rows


def _split_line(path: Path, raw: bytes, line_no: int) -> List[str]:
    """The columns of one line; an empty list for a blank line."""
    try:
        text = decode_line(raw, first=line_no == 1)
    except LineError as err:
        raise FormatError(path, line_no, err.message, err.column) from None
    return text.split()


def _check_columns(
    path: Path, line_no: int, columns: List[str], first: Row, tag_columns: int
) -> None:
    first_line, first_columns = first
    if len(columns) <= tag_columns:
        raise FormatError(
            path,
            line_no,
            f"expected at least {tag_columns + 1} columns (the word and {tag_columns} "
            f"tag column{'s' if tag_columns > 1 else ''}), found {len(columns)}",
        )
    if len(columns) != len(first_columns):
        raise FormatError(
            path,
            line_no,
            f"expected {len(first_columns)} columns (as on line {first_line}), "
            f"found {len(columns)}",
        )


def _parse_sentence(
    path: Path,
    rows: List[Row],
    scheme: str,
    tag_columns: int,
    doc_id: Optional[str],
    index: int,
) -> NestedSentence:
    """Sentence `index` of document `doc_id`, from its token lines."""
    n_columns = len(rows[0][1])
    spans: List[LabeledSpan] = []
    for column in range(n_columns - tag_columns, n_columns):
        spans.extend(_decode_layer(path, rows, column, scheme))
    tokens = [columns[0] for _, columns in rows]
    spans = list(dict.fromkeys(spans))  # drop exact duplicates, keep order
    sent_id = f"{doc_id}-{index}" if doc_id is not None else None
    return NestedSentence(tokens=tokens, spans=spans, doc_id=doc_id, sent_id=sent_id)


def _decode_layer(path: Path, rows: List[Row], column: int, scheme: str) -> List[LabeledSpan]:
    """Decode the IOB tags of one column into half-open spans."""
    spans: List[LabeledSpan] = []
    start, label = 0, None  # the open entity, if label is not None
    for i, (line_no, columns) in enumerate(rows):
        tag = columns[column]
        prefix, tag_label = _parse_tag(path, line_no, tag, column)
        if prefix == "I" and tag_label == label:
            continue
        if label is not None:
            spans.append((start, i, label))
        start, label = i, tag_label
        if prefix == "I" and scheme == "iob2":
            message = (
                f"{path}:{line_no}: {tag!r} does not continue an open {tag_label} entity "
                f"(IOB2): read as 'B-{tag_label}'"
            )
            warnings.warn(message, FormatWarning)
    if label is not None:
        spans.append((start, len(rows), label))
    return spans


def _parse_tag(path: Path, line_no: int, tag: str, column: int) -> Tuple[str, Optional[str]]:
    """Split a tag into its prefix ("O", "B" or "I") and its label (None for O)."""
    if tag == "O":
        return "O", None
    prefix, dash, label = tag.partition("-")
    if prefix not in ("B", "I") or not dash or not label:
        raise FormatError(
            path,
            line_no,
            f"invalid tag {tag!r} in column {column + 1}: expected O, B-TYPE or I-TYPE",
        )
    return prefix, label
