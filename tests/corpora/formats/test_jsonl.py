"""Tests for the JSON-lines readers and `sentences_to_docs`."""

import json
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_nested.corpora.formats import (
    FORMATS,
    FormatError,
    FormatWarning,
    NestedSentence,
    Skipped,
    detect_format,
    parse_record,
    read_jsonl,
    sentences_to_docs,
)

VOCAB = spacy.blank("en").vocab
TOKENS = ["IL-2", "gene", "expression", "in", "T", "cells"]
# (0, 2) carries two types; (4, 6) is nested in nothing, (0, 3) contains (0, 2).
SPANS = [(0, 2, "DNA"), (0, 2, "protein"), (0, 3, "DNA"), (4, 6, "cell_type")]

YHCC = {
    "tokens": TOKENS,
    "doc_id": "MEDLINE:1",
    "sent_id": "MEDLINE:1-0",
    "entity_mentions": [
        {"start": s, "end": e, "entity_type": t, "text": " ".join(TOKENS[s:e])} for s, e, t in SPANS
    ],
}
LOCATE_LABEL = {
    "tokens": TOKENS,
    "entities": [{"type": t, "start": s, "end": e} for s, e, t in SPANS],
    "relations": [],
    "org_id": "MEDLINE:1",
    "ltokens": ["Previous", "sentence", "."],
    "rtokens": [],
}
W2NER = {
    "sentence": TOKENS,
    "ner": [{"index": list(range(s, e)), "type": t} for s, e, t in SPANS],
    "word": [[0], [1]],
}
RECORDS = {"yhcc": YHCC, "locate_label": LOCATE_LABEL, "w2ner": W2NER}


def write_lines(path: Path, lines: List[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    return path


def write_records(path: Path, records: List[object]) -> Path:
    return write_lines(path, [json.dumps(record) for record in records])


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("given_format", ["auto", "explicit"])
def test_read_each_format(tmp_path, format, given_format):
    path = write_records(tmp_path / "in.jsonl", [RECORDS[format]])
    sentences = list(read_jsonl(path, format if given_format == "explicit" else "auto"))
    assert len(sentences) == 1
    assert sentences[0].tokens == TOKENS
    assert sentences[0].spans == SPANS
    assert sentences[0].doc_id == (None if format == "w2ner" else "MEDLINE:1")
    assert sentences[0].sent_id == ("MEDLINE:1-0" if format == "yhcc" else None)


@pytest.mark.parametrize("format", FORMATS)
def test_detect_format(format):
    assert detect_format(RECORDS[format]) == format


@pytest.mark.parametrize(
    "record,message",
    [
        ({"tokens": ["a"]}, "cannot detect the format"),
        ({"tokens": ["a"], "entities": [], "entity_mentions": []}, "several formats"),
        (["a"], "expected a JSON object, got list"),
    ],
)
def test_detect_format_errors(record, message):
    with pytest.raises(ValueError, match=message):
        detect_format(record)


def test_parse_record():
    sentence = parse_record(W2NER, "w2ner")
    assert sentence == NestedSentence(tokens=TOKENS, spans=SPANS)


def test_unknown_format_argument(tmp_path):
    with pytest.raises(ValueError, match="Unknown format 'conll'"):
        read_jsonl(tmp_path / "missing.jsonl", "conll")


def test_blank_lines_skipped_and_counted(tmp_path):
    lines = ["", json.dumps(YHCC), "   ", json.dumps(YHCC), "{"]
    path = write_lines(tmp_path / "in.jsonl", lines)
    with pytest.raises(FormatError) as excinfo:
        list(read_jsonl(path))
    assert excinfo.value.line_no == 5
    assert str(excinfo.value).startswith(f"{path}:5:2: invalid JSON")


def test_detection_uses_first_record(tmp_path):
    path = write_records(tmp_path / "in.jsonl", [YHCC, W2NER])
    with pytest.raises(FormatError) as excinfo:
        list(read_jsonl(path))
    message = str(excinfo.value)
    assert message.startswith(f"{path}:2: missing key 'tokens' (format 'yhcc')")
    assert "looks like 'w2ner'" in message


def test_undetectable_first_record(tmp_path):
    path = write_records(tmp_path / "in.jsonl", [{"words": ["a"]}])
    with pytest.raises(FormatError, match=r"in\.jsonl:1: cannot detect the format"):
        list(read_jsonl(path))


def _yhcc(tokens=("a", "b", "c"), **mention):
    record = {
        "tokens": list(tokens),
        "entity_mentions": [{"start": 0, "end": 1, "entity_type": "X"}],
    }
    record["entity_mentions"][0].update(mention)
    return json.dumps(record)


def _w2ner(index, tokens=("a", "b", "c"), type="X"):
    return json.dumps({"sentence": list(tokens), "ner": [{"index": index, "type": type}]})


ERROR_CASES: List[Tuple[str, str, str]] = [
    # (format, second line of the file, expected message after "path:2: ")
    ("yhcc", "[1, 2]", "expected a JSON object, got list"),
    ("yhcc", '"text"', "expected a JSON object, got string"),
    ("yhcc", json.dumps({"tokens": ["a"]}), "missing key 'entity_mentions' (format 'yhcc')"),
    (
        "yhcc",
        json.dumps({"tokens": "a b", "entity_mentions": []}),
        "'tokens' must be a list of strings, got string",
    ),
    ("yhcc", json.dumps({"tokens": [], "entity_mentions": []}), "'tokens' is empty"),
    (
        "yhcc",
        json.dumps({"tokens": ["a", 1], "entity_mentions": []}),
        "tokens[1] must be a string, got int",
    ),
    ("yhcc", json.dumps({"tokens": ["a", ""], "entity_mentions": []}), "tokens[1] is empty"),
    (
        "yhcc",
        _yhcc(tokens=["a", "b c"]),
        "tokens[1] 'b c' contains whitespace; pass split_tokens=True",
    ),
    ("yhcc", _yhcc(tokens=["a", "\t"]), "tokens[1] '\\t' contains whitespace"),
    (
        "yhcc",
        json.dumps({"tokens": ["a"], "entity_mentions": {}}),
        "'entity_mentions' must be a list, got object",
    ),
    (
        "yhcc",
        json.dumps({"tokens": ["a"], "entity_mentions": [[0, 1]]}),
        "entity_mentions[0] must be an object, got list",
    ),
    (
        "yhcc",
        json.dumps({"tokens": ["a"], "entity_mentions": [{"start": 0, "end": 1}]}),
        "missing key 'entity_type' in entity_mentions[0]",
    ),
    ("yhcc", _yhcc(start="0"), "'start' must be an integer, got string in entity_mentions[0]"),
    ("yhcc", _yhcc(end=1.0), "'end' must be an integer, got float in entity_mentions[0]"),
    ("yhcc", _yhcc(end=True), "'end' must be an integer, got boolean in entity_mentions[0]"),
    ("yhcc", _yhcc(entity_type=3), "'entity_type' must be a string, got int in entity_mentions[0]"),
    ("yhcc", _yhcc(entity_type=""), "empty entity type '' in entity_mentions[0]"),
    ("yhcc", _yhcc(entity_type="  "), "empty entity type '  ' in entity_mentions[0]"),
    ("yhcc", _yhcc(start=1, end=1), "span start 1 >= end 1 in entity_mentions[0]"),
    ("yhcc", _yhcc(start=2, end=1), "span start 2 >= end 1 in entity_mentions[0]"),
    ("yhcc", _yhcc(start=-1), "span start -1 < 0 in entity_mentions[0]"),
    ("yhcc", _yhcc(end=30), "span end 30 > 3 tokens in entity_mentions[0]"),
    (
        "yhcc",
        _yhcc(end=2, text="a"),
        "text 'a' does not match tokens[0:2] 'a b' in entity_mentions[0]",
    ),
    (
        "yhcc",
        json.dumps({**json.loads(_yhcc()), "doc_id": ["x"]}),
        "'doc_id' must be a string, got list",
    ),
    (
        "locate_label",
        json.dumps({"tokens": ["a"], "entities": [{"type": "X", "start": 0, "end": 2}]}),
        "span end 2 > 1 tokens in entities[0]",
    ),
    (
        "locate_label",
        json.dumps({"tokens": ["a"], "entities": [{"type": "", "start": 0, "end": 1}]}),
        "empty entity type '' in entities[0]",
    ),
    (
        "locate_label",
        json.dumps({"tokens": ["a"], "entities": [{"start": 0, "end": 1}]}),
        "missing key 'type' in entities[0]",
    ),
    (
        "w2ner",
        _w2ner([0, 2]),
        "non-contiguous index [0, 2] in ner[0]: discontinuous mentions are not supported",
    ),
    ("w2ner", _w2ner([1, 0]), "non-contiguous index [1, 0] in ner[0]"),
    ("w2ner", _w2ner([1, 1]), "non-contiguous index [1, 1] in ner[0]"),
    ("w2ner", _w2ner([]), "empty index in ner[0]"),
    ("w2ner", _w2ner(1), "'index' must be a list of integers, got int in ner[0]"),
    ("w2ner", _w2ner(["1"]), "'index' must be a list of integers, found '1' in ner[0]"),
    ("w2ner", _w2ner([2, 3]), "'index' value 3 out of range 0..2 (3 tokens) in ner[0]"),
    ("w2ner", _w2ner([-1, 0]), "'index' value -1 out of range 0..2 (3 tokens) in ner[0]"),
    ("w2ner", _w2ner([0], type=None), "'type' must be a string, got null in ner[0]"),
    ("w2ner", _w2ner([0], tokens=["a", " "]), "sentence[1] ' ' contains whitespace"),
]
FIRST_LINES = {"yhcc": _yhcc(), "locate_label": json.dumps(LOCATE_LABEL), "w2ner": _w2ner([0])}


@pytest.mark.parametrize("given_format", ["auto", "explicit"])
@pytest.mark.parametrize("format,line,message", ERROR_CASES)
def test_errors_name_file_and_line(tmp_path, format, line, message, given_format):
    path = write_lines(tmp_path / "bad.jsonl", [FIRST_LINES[format], line])
    with pytest.raises(FormatError) as excinfo:
        list(read_jsonl(path, format if given_format == "explicit" else "auto"))
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert (error.path, error.line_no, error.column) == (str(path), 2, None)
    assert str(error).startswith(f"{path}:2: {message}"), str(error)


COLUMN_ERROR_CASES: List[Tuple[bytes, int, str]] = [
    # (second line of the file, column, expected message after "path:2:column: ")
    (_yhcc()[:-3].encode(), 90, "invalid JSON: Expecting ',' delimiter (truncated line?)"),
    (
        b'{"tokens": ["a"], ',
        19,
        "invalid JSON: Expecting property name enclosed in double quotes (truncated line?)",
    ),
    (b'{"tokens": ["a"] "entity_mentions": []}', 18, "invalid JSON: Expecting ',' delimiter"),
    # A column counts bytes on a line that is not UTF-8: "é" is two.
    (b'{"tokens": ["\xc3\xa9\xff"]}', 16, "not UTF-8 (byte 0xff at column 16)"),
]


@pytest.mark.parametrize("given_format", ["auto", "explicit"])
@pytest.mark.parametrize("line,column,message", COLUMN_ERROR_CASES)
def test_errors_name_file_line_and_column(tmp_path, line, column, message, given_format):
    """A line that is not JSON, or not UTF-8, is located by one line:column, not by a column in the message."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(FIRST_LINES["yhcc"].encode() + b"\n" + line + b"\n")
    with pytest.raises(FormatError) as excinfo:
        list(read_jsonl(path, "yhcc" if given_format == "explicit" else "auto"))
    error = excinfo.value
    assert (error.path, error.line_no, error.column, error.message) == (str(path), 2, column, message)
    assert str(error) == f"{path}:2:{column}: {message}"


def test_truncated_last_line(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps(YHCC) + "\n" + json.dumps(YHCC)[:40], encoding="utf8")
    with pytest.raises(FormatError, match=r"cut\.jsonl:2:41: invalid JSON: .*\(truncated line\?\)"):
        list(read_jsonl(path))


@pytest.mark.parametrize("content", ["", "\n", "\n  \n\t\n", "\ufeff\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf8")
    with pytest.raises(FormatError) as excinfo:
        list(read_jsonl(path))
    assert (excinfo.value.path, excinfo.value.line_no) == (str(path), None)
    assert str(excinfo.value) == f"{path}: no sentences found"


def test_format_error_pickles_without_line():
    error = pickle.loads(pickle.dumps(FormatError("a.jsonl", None, "no sentences found")))
    assert (str(error), error.line_no) == ("a.jsonl: no sentences found", None)


def test_skip_invalid(tmp_path):
    lines = [
        "[1]",  # undetectable: the format is detected from the next record
        json.dumps(YHCC),
        "",
        _yhcc(start=2, end=1),
        json.dumps(W2NER),  # another format than the first valid record
        json.dumps(YHCC)[:40],
        '{"tokens": ["\udcff"], "entity_mentions": []}',  # the byte 0xff: not UTF-8
        json.dumps({**YHCC, "tokens": ["a"], "entity_mentions": []}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf8", "surrogateescape"))
    skipped = Skipped(skip_invalid=True)
    sentences = list(read_jsonl(path, skipped=skipped))
    assert [s.tokens for s in sentences] == [TOKENS, ["a"]]
    assert [(e.path, e.line_no) for e in skipped.invalid] == [(str(path), n) for n in (1, 4, 5, 6, 7)]
    assert [str(e)[len(str(path)) :] for e in skipped.invalid] == [
        ":1: expected a JSON object, got list",
        ":4: span start 2 >= end 1 in entity_mentions[0]",
        ":5: missing key 'tokens' (format 'yhcc'); the record looks like 'w2ner'",
        ":6:41: invalid JSON: Expecting ',' delimiter (truncated line?)",
        ":7:14: not UTF-8 (byte 0xff at column 14)",
    ]
    assert str(skipped) == "5 invalid records"
    for not_skipping in (None, Skipped()):
        with pytest.raises(FormatError, match=r"in\.jsonl:1: expected a JSON object"):
            list(read_jsonl(path, skipped=not_skipping))


def test_skip_invalid_empty_file(tmp_path):
    path = write_lines(tmp_path / "empty.jsonl", [""])
    skipped = Skipped(skip_invalid=True)
    assert list(read_jsonl(path, skipped=skipped)) == []
    assert [str(e) for e in skipped.invalid] == [f"{path}: no sentences found"]
    only_invalid = write_lines(tmp_path / "bad.jsonl", ["{"])
    skipped = Skipped(skip_invalid=True)
    assert list(read_jsonl(only_invalid, skipped=skipped)) == []
    assert [e.line_no for e in skipped.invalid] == [1]  # not also "no sentences found"


def test_exact_duplicates_dropped():
    record = {
        "sentence": ["a", "b"],
        "ner": [{"index": [0], "type": "X"}] * 2 + [{"index": [0], "type": "Y"}],
    }
    assert parse_record(record, "w2ner").spans == [(0, 1, "X"), (0, 1, "Y")]


def test_split_tokens(tmp_path):
    record = {
        "tokens": ["treatment", "of", "ER- cells", "protein - RNA", "complex"],
        "entity_mentions": [
            {"start": 2, "end": 3, "entity_type": "cell_line", "text": "ER- cells"},
            {"start": 3, "end": 5, "entity_type": "protein", "text": "protein - RNA complex"},
        ],
    }
    path = write_records(tmp_path / "in.jsonl", [record])
    with pytest.raises(
        FormatError, match=r"in\.jsonl:1: tokens\[2\] 'ER- cells' contains whitespace"
    ):
        list(read_jsonl(path))
    with pytest.warns(FormatWarning) as record:
        (sentence,) = read_jsonl(path, split_tokens=True)
    assert [str(w.message) for w in record] == [
        f"{path}:1: split token 2 'ER- cells' at whitespace",
        f"{path}:1: split token 3 'protein - RNA' at whitespace",
    ]
    assert sentence.tokens == ["treatment", "of", "ER-", "cells", "protein", "-", "RNA", "complex"]
    assert sentence.spans == [(2, 4, "cell_line"), (4, 8, "protein")]


def test_sentences_to_docs_one_per_sentence():
    sentences = [
        NestedSentence(TOKENS, SPANS, "d1", "d1-0"),
        NestedSentence(["x"], [], "d1", "d1-1"),
    ]
    docs = list(sentences_to_docs(sentences, VOCAB, spans_key="sc"))
    assert len(docs) == 2
    assert docs[0].text == " ".join(TOKENS)
    assert [(s.start, s.end, s.label_) for s in docs[0].spans["sc"]] == SPANS
    assert docs[0].spans["sc"].name == "sc"
    assert len(docs[1].spans["sc"]) == 0
    assert not docs[0].has_annotation("SENT_START")


def test_sentences_to_docs_group_by_doc_id():
    sentences = [
        NestedSentence(["a", "b"], [(0, 2, "X")], "d1"),
        NestedSentence(["c", "d", "e"], [(1, 3, "Y"), (1, 3, "Z")], "d1"),
        NestedSentence(["f"], [(0, 1, "X")], "d2"),
        NestedSentence(["g"], [], None),
        NestedSentence(["h"], [], None),
        NestedSentence(["i"], [], "d1"),
    ]
    docs = list(sentences_to_docs(sentences, VOCAB, group_by="doc_id"))
    assert [doc.text for doc in docs] == ["a b c d e", "f", "g", "h", "i"]
    first = docs[0]
    assert [t.is_sent_start for t in first] == [True, False, True, False, False]
    assert [s.text for s in first.sents] == ["a b", "c d e"]
    assert [(s.start, s.end, s.label_) for s in first.spans["nested"]] == [
        (0, 2, "X"),
        (3, 5, "Y"),
        (3, 5, "Z"),
    ]
    assert all(doc.has_annotation("SENT_START") for doc in docs)


def test_sentences_to_docs_bad_group_by():
    with pytest.raises(ValueError, match="Unknown group_by 'sent_id'"):
        list(sentences_to_docs([], VOCAB, group_by="sent_id"))


def _to_record(format: str, tokens: List[str], spans: List[Tuple[int, int, str]]) -> dict:
    if format == "yhcc":
        mentions = [
            {"start": s, "end": e, "entity_type": t, "text": " ".join(tokens[s:e])}
            for s, e, t in spans
        ]
        return {"tokens": tokens, "entity_mentions": mentions}
    if format == "locate_label":
        return {
            "tokens": tokens,
            "entities": [{"type": t, "start": s, "end": e} for s, e, t in spans],
        }
    return {
        "sentence": tokens,
        "ner": [{"index": list(range(s, e)), "type": t} for s, e, t in spans],
    }


@st.composite
def sentence_records(draw):
    token = st.text(alphabet=st.sampled_from("abcXYZ-().,;é1"), min_size=1, max_size=6)
    tokens = draw(st.lists(token, min_size=1, max_size=12))
    n = len(tokens)
    span = st.tuples(
        st.integers(0, n - 1), st.integers(1, n), st.sampled_from(["DNA", "protein", "cell type"])
    )
    raw = draw(st.lists(span.filter(lambda s: s[0] < s[1]), max_size=8, unique=True))
    return tokens, raw


@settings(max_examples=60, deadline=None)
@given(sentence_records(), st.sampled_from(FORMATS), st.booleans())
def test_round_trip_property(sentence, format, auto):
    tokens, spans = sentence
    with tempfile.TemporaryDirectory() as tmp:
        path = write_records(Path(tmp) / "x.jsonl", [_to_record(format, tokens, spans)] * 2)
        read = list(read_jsonl(path, "auto" if auto else format))
    assert [s.tokens for s in read] == [tokens, tokens]
    assert [s.spans for s in read] == [spans, spans]
    (doc,) = sentences_to_docs(read[:1], VOCAB)
    assert [t.text for t in doc] == tokens
    assert [(s.start, s.end, s.label_) for s in doc.spans["nested"]] == spans


def test_genia_dev(shared_data):
    path = shared_data / "genia" / "dev.jsonl"
    with pytest.raises(FormatError) as excinfo:
        list(read_jsonl(path))
    assert str(excinfo.value).startswith(f"{path}:145: tokens[23] 'ER- cells' contains whitespace")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FormatWarning)
        sentences = list(read_jsonl(path, split_tokens=True))
    assert [str(w.message).split(": ")[0] for w in caught] == [
        f"{path}:{n}" for n in (145, 1442, 1443)
    ]
    docs = list(sentences_to_docs(sentences, VOCAB))
    assert len(docs) == 1765
    assert sum(len(doc.spans["nested"]) for doc in docs) == 4714
    grouped = list(sentences_to_docs(sentences, VOCAB, group_by="doc_id"))
    assert len(grouped) == 199
    assert sum(len(doc.spans["nested"]) for doc in grouped) == 4714
    assert sum(t.is_sent_start for doc in grouped for t in doc) == 1765
    texts = {(s.text, s.label_) for doc in docs for s in doc.spans["nested"]}
    assert texts == {(s.text, s.label_) for doc in grouped for s in doc.spans["nested"]}
