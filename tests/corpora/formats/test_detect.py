"""Tests for sniff_format: what convert --format auto recognises."""

import json
from pathlib import Path

import pytest

from spacy_nested.corpora.formats import FORMAT_NAMES, sniff_format
from spacy_nested.corpora.formats.detect import SNIFF_BYTES
from tests.conftest import find_shared_data

CONLL2003 = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n"
RECORD = json.dumps({"tokens": ["a"], "entity_mentions": []})


@pytest.mark.parametrize(
    "name,content,expected",
    [
        ("dev.jsonl", RECORD + "\n", "jsonl"),
        ("dev.txt", "\ufeff\n\n" + RECORD + "\n", "jsonl"),
        ("broken.jsonl", RECORD[:10] + "\n", "jsonl"),
        ("sample.xml", '<?xml version="1.0"?>\n<set></set>\n', "genia-xml"),
        ("no_suffix", "  <set>\n<article></article></set>\n", "genia-xml"),
        ("eng.testa", CONLL2003, "conll"),
        ("tabs.conll", "New\tB-LOC\r\nYork\tI-LOC\r\n", "conll"),
        ("bioes.conll", "a S-PER\nb O\n", "conll"),  # the CoNLL reader then says what is wrong
        ("notes.txt", "just some text\n", None),
        ("one_column.txt", "word\nword\n", None),
        ("empty.jsonl", "", None),
    ],
)
def test_sniff_a_file(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf8")
    assert sniff_format(path) == expected


def test_sniff_brat(tmp_path):
    (tmp_path / "doc.txt").write_text("IL-2 gene", encoding="utf8")
    (tmp_path / "doc.ann").write_text("T1\tDNA 0 9\tIL-2 gene\n", encoding="utf8")
    assert sniff_format(tmp_path / "doc.ann") == "brat"
    assert sniff_format(tmp_path / "doc.txt") == "brat"
    assert sniff_format(tmp_path) == "brat"


def test_sniff_a_directory(tmp_path):
    assert sniff_format(tmp_path) is None
    (tmp_path / "README.txt").write_text("a corpus\n", encoding="utf8")
    assert sniff_format(tmp_path) is None
    (tmp_path / "b.txt").write_text(CONLL2003, encoding="utf8")
    assert sniff_format(tmp_path) == "conll"
    (tmp_path / "c.xml").write_text("<set></set>\n", encoding="utf8")
    assert sniff_format(tmp_path) == "genia-xml"
    (tmp_path / "d.jsonl").write_text(RECORD + "\n", encoding="utf8")
    assert sniff_format(tmp_path) == "jsonl"  # what --format auto reads wins


def test_only_the_head_of_a_file_is_read(tmp_path):
    path = tmp_path / "big.conll"
    line = "token B-X\n"
    path.write_text(line * (2 * SNIFF_BYTES // len(line)) + "an unfinished line", encoding="utf8")
    assert sniff_format(path) == "conll"
    assert sniff_format(tmp_path / "missing.jsonl") is None
    assert set(FORMAT_NAMES) == {"jsonl", "conll", "brat", "genia-xml"}


def test_the_shared_data():
    data = find_shared_data()
    if data is None:
        pytest.skip("shared data not found")
    paths: dict = {
        data / "genia" / "dev.jsonl": "jsonl",
        data / "genia" / "raw-sample": "genia-xml",
        data / "genia" / "raw-sample" / "GENIAcorpus3.02-sample.xml": "genia-xml",
        data / "conll2003" / "dev.txt": "conll",
        data / "conll2003": "conll",
    }
    for path, expected in paths.items():
        assert sniff_format(Path(path)) == expected, path
