"""Tests for the CoNLL column reader."""

import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest
import spacy

from spacy_nested.corpora.formats import (
    FormatError,
    FormatWarning,
    NestedSentence,
    Skipped,
    TagLayout,
    detect_tag_columns,
    read_conll,
    sentences_to_docs,
)


def write_conll(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf8")
    return path


def read_all(path: Path, *args, **kwargs) -> List[NestedSentence]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatWarning)
        return list(read_conll(path, *args, **kwargs))


IOB1 = """\
-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Mary NNP I-NP B-PER
Smith NNP I-NP I-PER

-DOCSTART- -X- -X- O

Paris NNP I-NP I-LOC
"""


def test_iob1(tmp_path):
    path = write_conll(tmp_path / "eng.train", IOB1)
    sentences = read_all(path, "iob1")
    assert sentences == [
        NestedSentence(
            ["EU", "rejects", "German", "call", "."],
            [(0, 1, "ORG"), (2, 3, "MISC")],
            "eng.train:0",
            "eng.train:0-0",
        ),
        NestedSentence(
            ["Peter", "Blackburn", "Mary", "Smith"],
            [(0, 2, "PER"), (2, 4, "PER")],
            "eng.train:0",
            "eng.train:0-1",
        ),
        NestedSentence(["Paris"], [(0, 1, "LOC")], "eng.train:1", "eng.train:1-0"),
    ]
    assert read_all(path) == sentences  # scheme "auto"


IOB2 = """\
The O
Bank B-ORG
of I-ORG
England I-ORG
and O
John B-PER
Smith I-PER
Mary B-PER
. O
"""


@pytest.mark.parametrize("scheme", ["auto", "iob1", "iob2"])
def test_iob2(tmp_path, scheme):
    path = write_conll(tmp_path / "iob2.conll", IOB2)
    (sentence,) = read_all(path, scheme)
    assert sentence.tokens == ["The", "Bank", "of", "England", "and", "John", "Smith", "Mary", "."]
    assert sentence.spans == [(1, 4, "ORG"), (5, 7, "PER"), (7, 8, "PER")]
    assert (sentence.doc_id, sentence.sent_id) == (None, None)  # no -DOCSTART-


def test_iob2_repair_warns(tmp_path):
    path = write_conll(tmp_path / "bad.conll", "a O\nb I-PER\nc I-PER\nd I-LOC\n\ne I-ORG\n")
    with pytest.warns(FormatWarning) as record:
        sentences = list(read_conll(path, "iob2"))
    assert [s.spans for s in sentences] == [[(1, 3, "PER"), (3, 4, "LOC")], [(0, 1, "ORG")]]
    assert [str(w.message) for w in record] == [
        f"{path}:2: 'I-PER' does not continue an open PER entity (IOB2): read as 'B-PER'",
        f"{path}:4: 'I-LOC' does not continue an open LOC entity (IOB2): read as 'B-LOC'",
        f"{path}:6: 'I-ORG' does not continue an open ORG entity (IOB2): read as 'B-ORG'",
    ]
    assert [s.spans for s in read_all(path, "iob1")] == [s.spans for s in sentences]


NESTED = """\
-DOCSTART- O O

University B-ORG B-LOC
of I-ORG O
Paris I-ORG B-LOC
hospital B-ORG O
Bonn B-LOC B-LOC
"""


def test_nested_layers(tmp_path):
    path = write_conll(tmp_path / "nested.txt", NESTED)
    (sentence,) = read_all(path, "iob2", tag_columns=2)
    assert sentence.tokens == ["University", "of", "Paris", "hospital", "Bonn"]
    # Outer layer first, then the inner one; (4, 5, "LOC") is in both: kept once.
    assert sentence.spans == [
        (0, 3, "ORG"),
        (3, 4, "ORG"),
        (4, 5, "LOC"),
        (0, 1, "LOC"),
        (2, 3, "LOC"),
    ]
    # By default every trailing column of IOB tags that shares a type is a layer: no layer is dropped.
    assert detect_tag_columns(path) == TagLayout(tag_columns=2, n_columns=3)
    assert read_all(path, "iob2") == [sentence]
    # tag_columns=1 reads the last column only; column 1 is then data.
    (flat,) = read_all(path, "iob2", tag_columns=1)
    assert flat.spans == [(0, 1, "LOC"), (2, 3, "LOC"), (4, 5, "LOC")]


LAYOUTS = [
    # (file text, tag columns, chunk column, its types)
    ("a O\nb B-X\n", 1, None, []),
    ("a NN O\nb NN B-X\n", 1, None, []),
    ("a B-X B-X\nb O O\n", 2, None, []),
    ("a O B-X\nb O O\n", 2, None, []),  # a layer without entities in this file: read, it adds nothing
    ("a B-X B-Y B-Y\nb B-Y O I-Y\n", 3, None, []),  # column 1: X and Y, and Y is a later layer's
    ("a NN B-X B-X\nb NN O O\n", 2, None, []),  # NN ends the layers
    ("a NNP I-NP I-ORG\nb VBZ B-VP O\n", 1, 3, ["NP", "VP"]),  # CoNLL-2003
    ("a I-NP B-NP I-ORG\n", 1, 3, ["NP"]),  # the chunk column ends the layers
    ("a B-X E-X\n", 1, None, []),  # the last column is not IOB: the reader says why
    ("a B-X B-X\nb B-X\nc I-X\n", 2, None, []),  # lines with another column count are not looked at
    ("-DOCSTART- -X- O O\n\n", 1, None, []),
]


@pytest.mark.parametrize("text,tag_columns,chunk_column,chunk_types", LAYOUTS)
def test_detect_tag_columns(tmp_path, text, tag_columns, chunk_column, chunk_types):
    layout = detect_tag_columns(write_conll(tmp_path / "x.conll", text))
    assert (layout.tag_columns, layout.chunk_column, layout.chunk_types) == (tag_columns, chunk_column, chunk_types)


def test_a_column_of_other_types_is_never_guessed(tmp_path):
    path = write_conll(tmp_path / "x.conll", "a B-ORG O B-LOC\nb I-ORG B-LOC I-LOC\n")
    message = (
        f"{path}: column 2 holds only IOB tags, with types (ORG) that columns 3-4 (LOC) never have: "
        "pass --tag-columns 3 to read it as a nesting layer too, or --tag-columns 2 to read it as data"
    )
    with pytest.raises(FormatError, match=re.escape(message)):
        detect_tag_columns(path)
    skipped = Skipped(skip_invalid=True)
    with pytest.raises(FormatError, match=re.escape(message)):  # a question for the user, not a record to skip
        list(read_conll(path, skipped=skipped))
    assert [s.spans for s in read_all(path, tag_columns=3)] == [[(0, 2, "ORG"), (1, 2, "LOC"), (0, 2, "LOC")]]


def test_docstart_and_blank_lines(tmp_path):
    text = "\n\n-DOCSTART- O\n\n\na O\nb B-X\n-DOCSTART- O\nc B-Y\n\n\n-DOCSTART- O\n"
    path = write_conll(tmp_path / "d.conll", "\ufeff" + text)
    sentences = read_all(path)
    assert [(s.tokens, s.spans, s.doc_id, s.sent_id) for s in sentences] == [
        (["a", "b"], [(1, 2, "X")], "d.conll:0", "d.conll:0-0"),
        (["c"], [(0, 1, "Y")], "d.conll:1", "d.conll:1-0"),
    ]


def test_tabs_and_crlf(tmp_path):
    path = tmp_path / "t.conll"
    path.write_bytes(b"New\tI-LOC\r\nYork\tI-LOC\r\n\r\nhi\tO\r\n")
    assert [(s.tokens, s.spans) for s in read_all(path)] == [
        (["New", "York"], [(0, 2, "LOC")]),
        (["hi"], []),
    ]


def test_group_by_doc_id(tmp_path):
    path = write_conll(tmp_path / "eng.train", IOB1)
    docs = list(sentences_to_docs(read_all(path), spacy.blank("en").vocab, group_by="doc_id"))
    assert [doc.text for doc in docs] == [
        "EU rejects German call . Peter Blackburn Mary Smith",
        "Paris",
    ]
    assert [[(s.text, s.label_) for s in doc.spans["nested"]] for doc in docs][0] == [
        ("EU", "ORG"),
        ("German", "MISC"),
        ("Peter Blackburn", "PER"),
        ("Mary Smith", "PER"),
    ]


ERROR_CASES = [
    # (file text, line, message after "path:line: ")
    ("a B-X\nb I-X\nc\n", 3, "expected at least 2 columns (the word and 1 tag column), found 1"),
    ("a NN B-X\nb NN I-X\n\nc I-X\n", 4, "expected 3 columns (as on line 1), found 2"),
    ("a NN B-X\nb NN I-X extra\n", 2, "expected 3 columns (as on line 1), found 4"),
    ("a O\nb X-PER\n", 2, "invalid tag 'X-PER' in column 2: expected O, B-TYPE or I-TYPE"),
    ("a O\nb S-PER\n", 2, "invalid tag 'S-PER' in column 2"),
    ("a O\nb B-\n", 2, "invalid tag 'B-' in column 2"),
    ("a O\nb PER\n", 2, "invalid tag 'PER' in column 2"),
    ("a O\nb o\n", 2, "invalid tag 'o' in column 2"),
]


@pytest.mark.parametrize("text,line_no,message", ERROR_CASES)
def test_errors_name_file_and_line(tmp_path, text, line_no, message):
    path = write_conll(tmp_path / "bad.conll", text)
    with pytest.raises(FormatError) as excinfo:
        read_all(path)
    assert (excinfo.value.path, excinfo.value.line_no) == (str(path), line_no)
    assert str(excinfo.value).startswith(f"{path}:{line_no}: {message}"), str(excinfo.value)


def test_error_in_inner_layer(tmp_path):
    path = write_conll(tmp_path / "bad.conll", "a B-X O\nb I-X E-Y\n")
    with pytest.raises(FormatError, match=r"bad\.conll:2: invalid tag 'E-Y' in column 3"):
        read_all(path, tag_columns=2)
    with pytest.raises(FormatError, match=r"bad\.conll:1: expected at least 4 columns"):
        read_all(path, tag_columns=3)


def test_invalid_utf8(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_bytes(b"a O\nb\xc3\xa9\xff O\n")
    with pytest.raises(FormatError) as excinfo:
        read_all(path)
    assert str(excinfo.value) == f"{path}:2:4: not UTF-8 (byte 0xff at column 4)"
    assert (excinfo.value.line_no, excinfo.value.column) == (2, 4)


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff\n", "-DOCSTART- -X- O O\n\n"])
def test_empty_file(tmp_path, text):
    path = write_conll(tmp_path / "empty.conll", text)
    with pytest.raises(FormatError) as excinfo:
        read_all(path)
    assert (excinfo.value.path, excinfo.value.line_no) == (str(path), None)
    assert str(excinfo.value) == f"{path}: no sentences found"


SKIP_INVALID = (
    b"-DOCSTART- O\n\n"
    b"a B-X\nb X-Y\n\n"  # lines 3-4: invalid tag
    b"c O\nd\n\n"  # lines 6-7: too few columns
    b"e I-Z\n\n"  # line 9: valid
    b"\xff O\nf O\n\n"  # lines 11-12: invalid UTF-8
    b"g O extra\n\n"  # line 14: more columns than line 3
    b"-DOCSTART- O\nh B-X\n"  # line 17: valid
)


def test_skip_invalid(tmp_path):
    path = tmp_path / "d.conll"
    path.write_bytes(SKIP_INVALID)
    skipped = Skipped(skip_invalid=True)
    sentences = list(read_conll(path, skipped=skipped))
    assert [(s.tokens, s.spans, s.sent_id) for s in sentences] == [
        (["e"], [(0, 1, "Z")], "d.conll:0-2"),  # keeps its index
        (["h"], [(0, 1, "X")], "d.conll:1-0"),
    ]
    assert [str(e)[len(str(path)) :] for e in skipped.invalid] == [
        ":4: invalid tag 'X-Y' in column 2: expected O, B-TYPE or I-TYPE",
        ":7: expected at least 2 columns (the word and 1 tag column), found 1",
        ":11:1: not UTF-8 (byte 0xff at column 1)",
        ":14: expected 2 columns (as on line 3), found 3",
    ]
    with pytest.raises(FormatError, match=r"d\.conll:4: invalid tag 'X-Y'"):
        list(read_conll(path))


def test_skip_invalid_empty_file(tmp_path):
    path = write_conll(tmp_path / "empty.conll", "\n")
    skipped = Skipped(skip_invalid=True)
    assert list(read_conll(path, skipped=skipped)) == []
    assert [str(e) for e in skipped.invalid] == [f"{path}: no sentences found"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown scheme 'bioes'"):
        read_conll(tmp_path / "missing.conll", "bioes")
    with pytest.raises(ValueError, match="tag_columns must be at least 1, got 0"):
        read_conll(tmp_path / "missing.conll", tag_columns=0)


# ../shared/data/README.md, CoNLL-2003 section.
CONLL2003_COUNTS: Dict[str, Dict[str, object]] = {
    "train": {
        "docs": 946,
        "sentences": 14041,
        "tokens": 203621,
        "entities": {"LOC": 7140, "PER": 6600, "ORG": 6321, "MISC": 3438},
    },
    "dev": {
        "docs": 216,
        "sentences": 3250,
        "tokens": 51362,
        "entities": {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922},
    },
    "test": {
        "docs": 231,
        "sentences": 3453,
        "tokens": 46435,
        "entities": {"LOC": 1668, "ORG": 1661, "PER": 1617, "MISC": 702},
    },
}


@pytest.mark.parametrize("split", sorted(CONLL2003_COUNTS))
def test_conll2003_counts(shared_data, split):
    path = shared_data / "conll2003" / f"{split}.txt"
    if not path.exists():
        pytest.skip(f"{path} not found")
    sentences = read_all(path, "iob1")
    counts = {
        "docs": len({s.doc_id for s in sentences}),
        "sentences": len(sentences),
        "tokens": sum(len(s.tokens) for s in sentences),
        "entities": dict(Counter(label for s in sentences for _, _, label in s.spans)),
    }
    assert counts == CONLL2003_COUNTS[split]
    assert None not in {s.doc_id for s in sentences}
    assert not any("-DOCSTART-" in s.tokens for s in sentences)


def test_conll2003_reading_does_not_change(shared_data):
    """Its CHUNK column holds IOB tags (I-NP) too: the default still reads the NER column only."""
    path = shared_data / "conll2003" / "dev.txt"
    if not path.exists():
        pytest.skip(f"{path} not found")
    layout = detect_tag_columns(path)
    assert (layout.tag_columns, layout.chunk_column) == (1, 3)
    assert set(layout.chunk_types) <= {"ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP"}
    assert read_all(path, "iob1") == read_all(path, "iob1", tag_columns=1)
