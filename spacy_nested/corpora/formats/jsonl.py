"""Readers for the three JSON-lines formats of the nested NER literature.

One record per line, one sentence per record; offsets are token offsets.

* ``yhcc`` (yhcc/CNN_Nested_NER, our GENIA files)::

    {"tokens": [...], "entity_mentions": [{"start": 0, "end": 2,
     "entity_type": "DNA", "text": "IL-2 gene"}], "doc_id": ..., "sent_id": ...}

  ``end`` is exclusive. ``text``, when present, must equal the tokens joined
  by single spaces (this catches inclusive-end files).
* ``locate_label`` (Locate-and-Label, PIQN, DiffusionNER)::

    {"tokens": [...], "entities": [{"type": "DNA", "start": 0, "end": 2}],
     "ltokens": [...], "rtokens": [...], "org_id": ...}

  ``end`` is exclusive; ``ltokens``/``rtokens`` (context) are ignored and
  ``org_id`` is used as the doc id when there is no ``doc_id``.
* ``w2ner`` (W2NER)::

    {"sentence": [...], "ner": [{"index": [0, 1], "type": "DNA"}]}

  ``index`` lists the mention's tokens; it must be contiguous and ascending
  (discontinuous mentions are reported, never silently joined).

Every problem raises `FormatError` with the file and line, and so does a
file without any record (empty, or only blank lines: "no sentences found").
A line that is not JSON, or not UTF-8, is reported at its column too:
``dev.jsonl:2:90: invalid JSON: Expecting ',' delimiter (truncated line?)``,
``dev.jsonl:3:14: not UTF-8 (byte 0xff at column 14)``.
Given ``skipped=Skipped(skip_invalid=True)``, an invalid line is skipped
instead and its error kept in ``skipped.invalid`` (with format "auto", the
format is then detected from the first valid record). Exact duplicate
mentions are dropped; the same boundaries with two labels are kept.
"""

import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from spacy_nested.corpora.formats.base import LabeledSpan, NestedSentence, sentences_to_docs, split_whitespace_tokens
from spacy_nested.corpora.formats.errors import (
    NO_SENTENCES,
    FormatError,
    FormatWarning,
    Skipped,
    decode_line,
    parse_json_line,
    skip_or_raise,
)
from spacy_nested.corpora.tokenizer import token_problem

__all__ = [
    "FORMATS",
    "NestedSentence",
    "detect_format",
    "parse_record",
    "read_jsonl",
    "sentences_to_docs",
]

FORMATS = ("yhcc", "locate_label", "w2ner")
# The keys that identify each format (tokens key, mentions key).
FORMAT_KEYS: Dict[str, Tuple[str, str]] = {
    "yhcc": ("tokens", "entity_mentions"),
    "locate_label": ("tokens", "entities"),
    "w2ner": ("sentence", "ner"),
}
SPLIT_HINT = "pass split_tokens=True (CLI: --split-tokens) to split it"


def detect_format(record: Any) -> str:
    """Name the format of one record: "yhcc", "locate_label" or "w2ner".

    Raises ValueError when the record matches no format, or several.
    """
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {_type_name(record)}")
    matches = [name for name in FORMATS if all(key in record for key in FORMAT_KEYS[name])]
    if len(matches) == 1:
        return matches[0]
    expected = "; ".join(f"{name}: {' + '.join(keys)}" for name, keys in FORMAT_KEYS.items())
    if not matches:
        raise ValueError(
            f"cannot detect the format of a record with keys {sorted(record)} "
            f"(expected {expected}); pass the format explicitly"
        )
    raise ValueError(f"record matches several formats {matches}; pass the format explicitly")


def read_jsonl(
    path: Union[str, Path],
    format: str = "auto",
    *,
    split_tokens: bool = False,
    skipped: Optional[Skipped] = None,
) -> Iterator[NestedSentence]:
    """Read a JSON-lines file, one `NestedSentence` per non-blank line.

    format (str): "auto" (detected from the first record, then required of
        every record), or one of FORMATS.
    split_tokens (bool): split tokens containing whitespace (remapping the
        span offsets, with a FormatWarning) instead of raising FormatError.
    skipped (Optional[Skipped]): with ``skip_invalid``, where invalid lines
        (and an empty file) are recorded and skipped instead of raised.
    RAISES (FormatError): on the first invalid line, when iteration gets there;
        at the end, for a file without any record.
    """
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}: expected 'auto' or one of {FORMATS}")
    return _iter_jsonl(path, format, split_tokens, skipped)


def parse_record(record: Any, format: str, *, split_tokens: bool = False) -> NestedSentence:
    """Parse one decoded record of the given format. Raises ValueError."""
    sentence, split = _parse(record, format, split_tokens)
    for i in split:
        warnings.warn(f"split token {i} containing whitespace", FormatWarning)
    return sentence


def _iter_jsonl(
    path: Union[str, Path], format: str, split_tokens: bool, skipped: Optional[Skipped]
) -> Iterator[NestedSentence]:
    empty = True  # no record yet, valid or not
    with Path(path).open("rb") as file_:
        for line_no, raw in enumerate(file_, start=1):
            try:
                record = _decode_line(raw, line_no)
                if record is None:
                    continue
                empty = False
                record_format = detect_format(record) if format == "auto" else format
                sentence, split = _parse(record, record_format, split_tokens)
            except ValueError as err:
                empty = False  # a line that cannot be decoded is not blank
                skip_or_raise(FormatError.at_line(path, line_no, err), skipped)
                continue
            format = record_format
            for i in split:
                token = _raw_token(record, format, i)
                message = f"{path}:{line_no}: split token {i} {token!r} at whitespace"
                warnings.warn(message, FormatWarning)
            yield sentence
    if empty:
        skip_or_raise(FormatError(path, None, NO_SENTENCES), skipped)


def _raw_token(record: Dict[str, Any], format: str, i: int) -> str:
    """Token `i` of a valid record, as written in the file."""
    return record[FORMAT_KEYS[format][0]][i]


def _decode_line(raw: bytes, line_no: int) -> Optional[Any]:
    """The JSON value of one line; None for a blank line. RAISES (LineError)."""
    text = decode_line(raw, first=line_no == 1)
    if not text.strip():
        return None
    return parse_json_line(text)



def _parse(record: Any, format: str, split_tokens: bool) -> Tuple[NestedSentence, List[int]]:
    """Validate and parse one record; also return the indices of split tokens."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {_type_name(record)}")
    tokens_key, mentions_key = FORMAT_KEYS[format]
    for key in (tokens_key, mentions_key):
        if key not in record:
            raise ValueError(
                f"missing key {key!r} (format {format!r}){_looks_like(record, format)}"
            )
    tokens = _parse_tokens(record[tokens_key], tokens_key, split_tokens)
    mentions = record[mentions_key]
    if not isinstance(mentions, list):
        raise ValueError(f"{mentions_key!r} must be a list, got {_type_name(mentions)}")
    spans: List[LabeledSpan] = []
    for i, mention in enumerate(mentions):
        where = f"{mentions_key}[{i}]"
        if not isinstance(mention, dict):
            raise ValueError(f"{where} must be an object, got {_type_name(mention)}")
        spans.append(MENTION_PARSERS[format](mention, tokens, where))
    spans = list(dict.fromkeys(spans))  # drop exact duplicates, keep order
    doc_id, sent_id = _parse_ids(record, format)
    split: List[int] = []
    if split_tokens:
        tokens, spans, split = split_whitespace_tokens(tokens, spans)
    return NestedSentence(tokens=tokens, spans=spans, doc_id=doc_id, sent_id=sent_id), split


def _parse_tokens(tokens: Any, key: str, split_tokens: bool) -> List[str]:
    if not isinstance(tokens, list):
        raise ValueError(f"{key!r} must be a list of strings, got {_type_name(tokens)}")
    if not tokens:
        raise ValueError(f"{key!r} is empty")
    for i, token in enumerate(tokens):
        problem = token_problem(token)
        if problem is None:
            continue
        if split_tokens and isinstance(token, str) and token.strip():
            continue
        hint = f"; {SPLIT_HINT}" if isinstance(token, str) and token.strip() else ""
        raise ValueError(f"{key}[{i}] {problem}{hint}")
    return tokens


def _parse_yhcc(mention: Dict[str, Any], tokens: List[str], where: str) -> LabeledSpan:
    start, end = _get_int(mention, "start", where), _get_int(mention, "end", where)
    label = _get_label(mention, "entity_type", where)
    _check_span(start, end, len(tokens), where)
    text = mention.get("text")
    if text is not None:
        expected = " ".join(tokens[start:end])
        if text != expected:
            raise ValueError(
                f"text {text!r} does not match tokens[{start}:{end}] {expected!r} in {where} "
                "(is 'end' inclusive?)"
            )
    return (start, end, label)


def _parse_locate_label(mention: Dict[str, Any], tokens: List[str], where: str) -> LabeledSpan:
    start, end = _get_int(mention, "start", where), _get_int(mention, "end", where)
    label = _get_label(mention, "type", where)
    _check_span(start, end, len(tokens), where)
    return (start, end, label)


def _parse_w2ner(mention: Dict[str, Any], tokens: List[str], where: str) -> LabeledSpan:
    index = _get(mention, "index", where)
    if not isinstance(index, list):
        raise ValueError(f"'index' must be a list of integers, got {_type_name(index)} in {where}")
    if not index:
        raise ValueError(f"empty index in {where}")
    for value in index:
        if not _is_int(value):
            raise ValueError(f"'index' must be a list of integers, found {value!r} in {where}")
    label = _get_label(mention, "type", where)
    if index != list(range(index[0], index[0] + len(index))):
        raise ValueError(
            f"non-contiguous index {index} in {where}: discontinuous mentions are not supported"
        )
    for value in (index[0], index[-1]):  # the index is ascending
        if not 0 <= value < len(tokens):
            raise ValueError(
                f"'index' value {value} out of range 0..{len(tokens) - 1} "
                f"({len(tokens)} tokens) in {where}"
            )
    return (index[0], index[-1] + 1, label)


MENTION_PARSERS: Dict[str, Callable[[Dict[str, Any], List[str], str], LabeledSpan]] = {
    "yhcc": _parse_yhcc,
    "locate_label": _parse_locate_label,
    "w2ner": _parse_w2ner,
}


def _parse_ids(record: Dict[str, Any], format: str) -> Tuple[Optional[str], Optional[str]]:
    doc_key = "doc_id"
    if format == "locate_label" and record.get("doc_id") is None:
        doc_key = "org_id"
    return _get_id(record, doc_key), _get_id(record, "sent_id")


def _get_id(record: Dict[str, Any], key: str) -> Optional[str]:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, str) or _is_int(value):
        return str(value)
    raise ValueError(f"{key!r} must be a string, got {_type_name(value)}")


def _get(mention: Dict[str, Any], key: str, where: str) -> Any:
    if key not in mention:
        raise ValueError(f"missing key {key!r} in {where}")
    return mention[key]


def _get_int(mention: Dict[str, Any], key: str, where: str) -> int:
    value = _get(mention, key, where)
    if not _is_int(value):
        raise ValueError(f"{key!r} must be an integer, got {_type_name(value)} in {where}")
    return value


def _get_label(mention: Dict[str, Any], key: str, where: str) -> str:
    value = _get(mention, key, where)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, got {_type_name(value)} in {where}")
    if not value.strip():
        raise ValueError(f"empty entity type {value!r} in {where}")
    return value


def _check_span(start: int, end: int, n_tokens: int, where: str) -> None:
    if start < 0:
        raise ValueError(f"span start {start} < 0 in {where}")
    if start >= end:
        raise ValueError(f"span start {start} >= end {end} in {where}")
    if end > n_tokens:
        raise ValueError(f"span end {end} > {n_tokens} tokens in {where}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _looks_like(record: Dict[str, Any], format: str) -> str:
    try:
        other = detect_format(record)
    except ValueError:
        return ""
    return f"; the record looks like {other!r}" if other != format else ""
