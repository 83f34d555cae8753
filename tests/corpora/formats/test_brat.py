"""Tests for the BRAT standoff reader, and for records that carry `spaces` and `sent_starts`."""

import re
import warnings
from pathlib import Path
from typing import List

import pytest
import spacy

from spacy_nested.corpora.formats import (
    FormatError,
    FormatWarning,
    NestedSentence,
    NonEntityLines,
    Skipped,
    read_brat,
    sentences_to_docs,
)

NLP = spacy.blank("en")
TEXT = "IL-2 gene  expression\nin T-cells.\n"
ANN = [
    "T1\tDNA 0 9\tIL-2 gene",
    "T2\tprotein 0 4\tIL-2",
    "T3\tprotein 0 4\tIL-2",  # an exact duplicate of T2: dropped
    "T4\tcell_type 25 32\tT-cells",
    "T5\tRNA 0 9\tIL-2 gene",  # the same boundaries as T1, another type: kept
    "R1\tRegulates Arg1:T1 Arg2:T2",
    "E1\tExpression:T2 Theme:T1",
    "A1\tNegated E1",
    "N1\tReference T2 Uniprot:P60568\tIL2",
    "#1\tAnnotatorNotes T1\ta note",
    "*\tEquiv T1 T5",
    "*\tEquiv T2 T3",
]


def write_pair(directory: Path, name: str, text: str, ann: List[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_bytes(text.encode("utf8"))
    (directory / f"{name}.ann").write_text("".join(line + "\n" for line in ann), encoding="utf8")
    return directory / f"{name}.ann"


def read_all(path: Path, skipped=None) -> List[NestedSentence]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatWarning)
        return list(read_brat(path, NLP, skipped=skipped))


def test_nested_entities(tmp_path):
    write_pair(tmp_path, "doc1", TEXT, ANN)
    (sentence,) = read_all(tmp_path)
    assert sentence.doc_id == "doc1"
    assert sentence.sent_id is None
    assert sentence.tokens == [
        "IL-2", "gene", " ", "expression", "\n", "in", "T", "-", "cells", ".", "\n",
    ]  # fmt: skip
    assert sentence.spans == [(0, 2, "DNA"), (0, 1, "protein"), (6, 9, "cell_type"), (0, 2, "RNA")]
    (doc,) = sentences_to_docs([sentence], NLP.vocab)
    assert doc.text == TEXT
    assert [(s.text, s.label_) for s in doc.spans["nested"]] == [
        ("IL-2 gene", "DNA"),
        ("IL-2", "protein"),
        ("T-cells", "cell_type"),
        ("IL-2 gene", "RNA"),
    ]


@pytest.mark.parametrize(
    "text,sentences",
    [
        (TEXT, ["IL-2 gene  expression\n", "in T-cells.\n"]),
        ("Bonn", ["Bonn"]),
        ("Café\r\nMünchen\r\n", ["Café\r\n", "München\r\n"]),
        # Blank lines, and a line's trailing whitespace, stay in the sentence before them; the
        # document's leading whitespace is in the first one, whitespace before a line's text in the one before.
        ("\n\nBonn\n\n\nParis  \n  Rome", ["\n\nBonn\n\n\n", "Paris  \n  ", "Rome"]),
        (" \t\nBonn", [" \t\nBonn"]),
        ("a\n \nb c\n", ["a\n \n", "b c\n"]),
    ],
)
def test_each_line_with_text_starts_a_sentence(tmp_path, text, sentences):
    write_pair(tmp_path, "doc", text, [])
    (sentence,) = read_all(tmp_path)
    (doc,) = sentences_to_docs([sentence], NLP.vocab)
    assert doc.text == text
    assert [s.text_with_ws for s in doc.sents] == sentences
    assert sentence.sent_starts == [s.start for s in doc.sents]


def test_entity_across_a_line_break_is_kept(tmp_path):
    write_pair(tmp_path, "n", "New\nYork", ["T1\tLOC 0 8\tNew York"])
    (sentence,) = read_all(tmp_path)
    (doc,) = sentences_to_docs([sentence], NLP.vocab)
    assert [s.text for s in doc.sents] == ["New\n", "York"]
    assert [s.text for s in doc.spans["nested"]] == ["New\nYork"]


def test_non_entity_lines_counted_by_kind(tmp_path):
    write_pair(tmp_path, "doc1", TEXT, ANN)
    write_pair(tmp_path, "doc2", "Bonn", ["T1\tLOC 0 4\tBonn", "R1\tIn Arg1:T1 Arg2:T1", "M1\tNegated T1"])
    (tmp_path / "doc3.ann").write_text("R1\tIn Arg1:T1 Arg2:T1\n")  # no doc3.txt: not read
    non_entities = NonEntityLines()
    sentences = list(read_brat(tmp_path, NLP, skipped=Skipped(skip_invalid=True), non_entities=non_entities))
    assert [s.doc_id for s in sentences] == ["doc1", "doc2"]
    assert non_entities.counts == {"R": 2, "E": 1, "A": 1, "N": 1, "#": 1, "*": 2, "M": 1}
    assert str(non_entities) == (
        "2 relations (R), 1 event (E), 1 attribute (A), 1 attribute (M), 1 normalization (N), "
        "1 note (#), 2 equivalences (*)"
    )
    assert bool(non_entities) and not NonEntityLines() and str(NonEntityLines()) == "none"


def test_directory_sorted_and_single_files(tmp_path):
    write_pair(tmp_path, "b", "Bonn", ["T1\tLOC 0 4\tBonn"])
    write_pair(tmp_path, "a", "Paris", ["T1\tLOC 0 5\tParis"])
    (tmp_path / "README.txt").write_text("not a document")
    assert [(s.doc_id, s.tokens) for s in read_all(tmp_path)] == [("a", ["Paris"]), ("b", ["Bonn"])]
    for path in (tmp_path / "b.ann", tmp_path / "b.txt", str(tmp_path / "b.ann")):
        assert [s.doc_id for s in read_all(path)] == ["b"]


def test_crlf_and_unicode_offsets(tmp_path):
    text = "Café\r\nMünchen\r\n"
    write_pair(tmp_path, "u", text, ["T1\tLOC 6 13\tMünchen", "T2\tORG 0 4\tCafé"])
    (sentence,) = read_all(tmp_path)
    (doc,) = sentences_to_docs([sentence], NLP.vocab)
    assert doc.text == text
    spans = [(s.text, s.label_) for s in doc.spans["nested"]]
    assert spans == [("München", "LOC"), ("Café", "ORG")]


def test_line_break_in_entity_reads_as_space(tmp_path):
    write_pair(tmp_path, "n", "New\nYork", ["T1\tLOC 0 8\tNew York"])
    (sentence,) = read_all(tmp_path)
    assert (sentence.tokens, sentence.spans) == (["New", "\n", "York"], [(0, 3, "LOC")])


@pytest.mark.parametrize("text", ["", " \n\n"])
def test_empty_document(tmp_path, text):
    write_pair(tmp_path, "e", text, [])
    with pytest.raises(FormatError) as excinfo:
        read_all(tmp_path)
    assert str(excinfo.value) == f"{tmp_path / 'e.txt'}: no sentences found (the text is empty)"


def test_misaligned_and_discontinuous_counted(tmp_path):
    ann = ANN + [
        "T6\tcell_type 28 32\tells",  # inside the token "cells"
        "T7\tDNA 0 10\tIL-2 gene ",  # ends on whitespace
        "T8\tprotein 0 4;11 21\tIL-2 expression",
    ]
    path = write_pair(tmp_path, "doc1", TEXT, ann)
    write_pair(tmp_path, "doc2", "Bonn", ["T1\tLOC 0 2;2 4\tBo nn"])
    write_pair(tmp_path, "doc3", "Bonn", ["T1\tLOC 0 4\tBonn"])
    skipped = Skipped()
    with pytest.warns(FormatWarning) as record:
        sentences = list(read_brat(tmp_path, NLP, skipped=skipped))
    assert [len(s.spans) for s in sentences] == [4, 0, 1]
    assert (skipped.misaligned, skipped.discontinuous) == (2, 2)
    assert str(skipped) == "2 misaligned, 2 discontinuous entities"
    assert [str(w.message) for w in record] == [
        f"{path}: skipped 3 entities: 2 not aligned to token boundaries (lines 13, 14), "
        "1 discontinuous (line 15)",
        f"{tmp_path / 'doc2.ann'}: skipped 1 entity: 1 discontinuous (line 1)",
    ]


def test_skipped_entities():
    assert not Skipped()
    assert not Skipped(skip_invalid=True)
    assert Skipped(misaligned=1)
    assert Skipped(discontinuous=1)
    assert Skipped(invalid=[FormatError("a.ann", 1, "bad")])
    assert str(Skipped()) == "nothing"


def test_tokenizer_callable(tmp_path):
    write_pair(tmp_path, "t", "IL-2 gene", ["T1\tDNA 0 9\tIL-2 gene"])
    (sentence,) = list(read_brat(tmp_path, NLP.tokenizer))
    assert (sentence.tokens, sentence.spans) == (["IL-2", "gene"], [(0, 2, "DNA")])


ERROR_CASES = [
    # (.ann line 2, message after "doc.ann:2: ")
    ("T2\tDNA 0 4\tIL-3", "entity text 'IL-3' does not match the text at 0 4: 'IL-2'"),
    ("T2\tDNA 0 4;5 9\tIL-2 gen", "entity text 'IL-2 gen' does not match the text at 0 4;5 9"),
    ("T2\tDNA 0 4", "expected 3 tab-separated fields (ID, 'TYPE START END', text), found 2"),
    ("T2\tDNA 0\tIL-2", "invalid offsets in 'DNA 0': expected 'TYPE START END'"),
    ("T2\tDNA zero 4\tIL-2", "invalid offsets in 'DNA zero 4'"),
    ("T2\tDNA -1 4\tIL-2", "invalid offsets in 'DNA -1 4'"),
    ("T2\tDNA 0 4;\tIL-2", "invalid offsets in 'DNA 0 4;'"),
    ("T2\t 0 4\tIL-2", "missing entity type in ' 0 4'"),
    ("T2\tDNA 4 4\t", "start 4 >= end 4 in 'DNA 4 4'"),
    ("T2\tDNA 0 99\tIL-2", "end 99 > 34 characters in the text, in 'DNA 0 99'"),
    ("T1\tDNA 0 4\tIL-2", "duplicate id 'T1' (first on line 1)"),
    ("X1\tDNA 0 4\tIL-2", "unknown annotation id 'X1': expected T (entity) or one of R, E, A"),
]


@pytest.mark.parametrize("line,message", ERROR_CASES)
def test_errors_name_file_and_line(tmp_path, line, message):
    path = write_pair(tmp_path, "doc", TEXT, ["T1\tDNA 0 9\tIL-2 gene", line])
    with pytest.raises(FormatError) as excinfo:
        read_all(tmp_path)
    assert (excinfo.value.path, excinfo.value.line_no) == (str(path), 2)
    assert str(excinfo.value).startswith(f"{path}:2: {message}"), str(excinfo.value)


def test_skip_invalid(tmp_path):
    ann = [
        "T1\tDNA 0 9\tIL-2 gene",
        "T2\tDNA 0 4\tIL-3",  # text does not match the offsets
        "T3\tDNA 0 99\tIL-2",  # out of range
        "T1\tprotein 0 4\tIL-2",  # duplicate id
        "T4\tcell_type 25 32\tT-cells",
        "T5\tcell_type 28 32\tells",  # valid, misaligned: counted, not invalid
    ]
    path = write_pair(tmp_path, "a", TEXT, ann)
    write_pair(tmp_path, "b", "", ["T1\tX 0 1\tx"])  # empty text: the document is skipped
    write_pair(tmp_path, "c", "Bonn", ["T1\tLOC 0 4\tBonn"])
    (tmp_path / "d.ann").write_text("T1\tLOC 0 4\tBonn\n")  # no d.txt
    skipped = Skipped(skip_invalid=True)
    with pytest.warns(FormatWarning, match="1 not aligned to token boundaries"):
        sentences = list(read_brat(tmp_path, NLP, skipped=skipped))
    assert [(s.doc_id, s.spans) for s in sentences] == [
        ("a", [(0, 2, "DNA"), (6, 9, "cell_type")]),
        ("c", [(0, 1, "LOC")]),
    ]
    assert [str(e) for e in skipped.invalid] == [
        f"{path}:2: entity text 'IL-3' does not match the text at 0 4: 'IL-2'",
        f"{path}:3: end 99 > 34 characters in the text, in 'DNA 0 99'",
        f"{path}:4: duplicate id 'T1' (first on line 1)",
        f"{tmp_path / 'b.txt'}: no sentences found (the text is empty)",
        f"{tmp_path / 'd.ann'}:1: missing text file {tmp_path / 'd.txt'}",
    ]
    assert str(skipped) == "1 misaligned, 0 discontinuous entities, 5 invalid records"
    with pytest.raises(FormatError, match=r"a\.ann:2: entity text 'IL-3'"):
        list(read_brat(tmp_path, NLP, skipped=Skipped()))


def test_missing_txt(tmp_path):
    path = write_pair(tmp_path, "doc", TEXT, ANN)
    (tmp_path / "doc.txt").unlink()
    message = f"{path}:1: missing text file {tmp_path / 'doc.txt'}"
    for source in (tmp_path, path):
        with pytest.raises(FormatError) as excinfo:
            read_all(source)
        assert str(excinfo.value) == message


def test_missing_ann(tmp_path):
    write_pair(tmp_path, "doc", TEXT, ANN)
    (tmp_path / "doc.ann").unlink()
    with pytest.raises(FormatError) as excinfo:
        read_all(tmp_path / "doc.txt")
    message = f"{tmp_path / 'doc.txt'}:1: missing annotation file {tmp_path / 'doc.ann'}"
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    "data,line_no,column,byte",
    [
        (b"line one\nline \xff two\n", 2, 6, "ff"),
        (b"caf\xc3\xa9\r\nM\xc3\xbcn\xfe\r\n", 2, 5, "fe"),  # bytes, not characters: "ü" is two
        (b"\x80 first", 1, 1, "80"),
    ],
)
def test_txt_not_utf8_at_line_and_column(tmp_path, data, line_no, column, byte):
    """The .txt is read as a whole, and its undecodable byte is located by line and column all the same."""
    write_pair(tmp_path, "doc", TEXT, ANN)
    (tmp_path / "doc.txt").write_bytes(data)
    with pytest.raises(FormatError) as excinfo:
        read_all(tmp_path)
    message = f"not UTF-8 (byte 0x{byte} at column {column})"
    assert str(excinfo.value) == f"{tmp_path / 'doc.txt'}:{line_no}:{column}: {message}"
    assert (excinfo.value.line_no, excinfo.value.column) == (line_no, column)


def test_ann_not_utf8_at_line_and_column(tmp_path):
    path = write_pair(tmp_path, "doc", TEXT, ANN)
    path.write_bytes(b"T1\tDNA 0 9\tIL-2 gene\nT2\tDNA 0 4\t\xff\nT3\tprotein 0 4\tIL-2\n")
    with pytest.raises(FormatError) as excinfo:
        read_all(tmp_path)
    assert str(excinfo.value) == f"{path}:2:12: not UTF-8 (byte 0xff at column 12)"
    skipped = Skipped(skip_invalid=True)
    (sentence,) = read_all(tmp_path, skipped=skipped)  # the line alone is skipped
    assert sentence.spans == [(0, 2, "DNA"), (0, 1, "protein")]
    assert [str(e) for e in skipped.invalid] == [f"{path}:2:12: not UTF-8 (byte 0xff at column 12)"]


def test_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="no .ann files in"):
        read_brat(tmp_path, NLP)
    with pytest.raises(ValueError, match="expected a directory, an .ann or a .txt file"):
        read_brat(tmp_path / "doc.xml", NLP)


# Records with `spaces` (base.py), as the BRAT reader makes them.


def test_spaces_length_checked():
    with pytest.raises(ValueError, match="1 spaces for 2 tokens"):
        NestedSentence(["a", "b"], spaces=[True])


@pytest.mark.parametrize("starts", [[], [1], [0, 0], [0, 2, 1], [0, 3]])
def test_sent_starts_checked(starts):
    with pytest.raises(ValueError, match=re.escape(f"sentence starts {starts} for 3 tokens: expected 0 first")):
        NestedSentence(["a", "b", "c"], sent_starts=starts)


def test_sent_starts_set_with_and_without_group_by():
    sentences = [
        NestedSentence(["a", "\n", "b"], [(0, 3, "X")], "d", spaces=[False] * 3, sent_starts=[0, 2]),
        NestedSentence(["c", "d"], [(1, 2, "Y")], "d"),  # one sentence
    ]
    docs = list(sentences_to_docs(sentences, NLP.vocab))
    assert [[s.text for s in doc.sents] for doc in docs[:1]] == [["a\n", "b"]]
    assert not docs[1].has_annotation("SENT_START")
    (doc,) = sentences_to_docs(sentences, NLP.vocab, group_by="doc_id")
    assert [s.text for s in doc.sents] == ["a\n", "b", "c d"]
    assert [(s.text, s.label_) for s in doc.spans["nested"]] == [("a\nb", "X"), ("d", "Y")]


def test_group_by_doc_id_with_spaces():
    sentences = [
        NestedSentence(["Hi", "!", "\n"], [(0, 1, "X")], "d", spaces=[False, False, False]),
        NestedSentence(["a", "b"], [(1, 2, "Y")], "d"),  # no spaces: joined by single spaces
        NestedSentence(["c", "\n\n"], [(0, 1, "Z")], "d", spaces=[True, False]),
        NestedSentence(["e", "f"], [], "d"),
    ]
    (doc,) = sentences_to_docs(sentences, NLP.vocab, group_by="doc_id")
    assert doc.text == "Hi!\na b c \n\ne f"
    assert [(s.text, s.label_) for s in doc.spans["nested"]] == [
        ("Hi", "X"),
        ("b", "Y"),
        ("c", "Z"),
    ]
    assert [s.text_with_ws for s in doc.sents] == ["Hi!\n", "a b ", "c \n\n", "e f"]
    without_spaces = [NestedSentence(s.tokens, s.spans, s.doc_id) for s in sentences[1:2]]
    (doc,) = sentences_to_docs(without_spaces * 2, NLP.vocab, group_by="doc_id")
    assert doc.text == "a b a b"
