"""Reader for CoNLL-style column files: CoNLL-2003 and nested variants.

One token per line, whitespace-separated columns, a blank line between
sentences (CoNLL-2003 English, ``WORD POS CHUNK NER``)::

    -DOCSTART- -X- O O

    EU NNP I-NP I-ORG
    rejects VBZ I-VP O

* The word is column 0; the tags are the last `tag_columns` columns
  (default 1). Tag columns are never guessed: CoNLL-2003's CHUNK column
  (``I-NP``) looks exactly like an entity layer. Several tag columns are
  nesting layers (one per level, e.g. GermEval 2014's outer and inner
  columns): each is decoded on its own and the spans are merged, in column
  order, exact duplicates dropped.
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

Every problem raises `FormatError` with the file and line.
"""

import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from .base import LabeledSpan, NestedSentence
from .errors import FormatError, FormatWarning

__all__ = ["DOCSTART", "SCHEMES", "read_conll"]

SCHEMES = ("auto", "iob1", "iob2")
DOCSTART = "-DOCSTART-"
Row = Tuple[int, List[str]]  # (1-based line number, columns)


def read_conll(
    path: Union[str, Path], scheme: str = "auto", *, tag_columns: int = 1
) -> Iterator[NestedSentence]:
    """Read a CoNLL column file, one `NestedSentence` per sentence.

    scheme (str): "auto", "iob1" or "iob2" (see the module docstring).
    tag_columns (int): how many trailing columns are tag columns, one per
        nesting layer.
    RAISES (FormatError): on the first invalid line, when iteration gets there.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown scheme {scheme!r}: expected one of {SCHEMES}")
    if tag_columns < 1:
        raise ValueError(f"tag_columns must be at least 1, got {tag_columns}")
    return _iter_conll(Path(path), scheme, tag_columns)


def _iter_conll(path: Path, scheme: str, tag_columns: int) -> Iterator[NestedSentence]:
    first: Optional[Row] = None  # the first token line: it fixes the column count
    doc_id: Optional[str] = None
    n_docs = n_sents = 0
    rows: List[Row] = []
    with path.open("rb") as file_:
        for line_no, raw in enumerate(file_, start=1):
            columns = _split_line(path, raw, line_no)
            if columns and columns[0] != DOCSTART:
                if first is None:
                    first = (line_no, columns)
                _check_columns(path, line_no, columns, first, tag_columns)
                rows.append((line_no, columns))
                continue
            if rows:
                yield _parse_sentence(path, rows, scheme, tag_columns, doc_id, n_sents)
                n_sents += 1
                rows = []
            if columns:  # -DOCSTART-
                doc_id = f"{path.name}:{n_docs}"
                n_docs += 1
                n_sents = 0
    if rows:
        yield _parse_sentence(path, rows, scheme, tag_columns, doc_id, n_sents)


def _split_line(path: Path, raw: bytes, line_no: int) -> List[str]:
    """The columns of one line; an empty list for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(path, line_no, f"invalid UTF-8 at byte {err.start}") from None
    if line_no == 1:
        text = text.lstrip("\ufeff")
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
