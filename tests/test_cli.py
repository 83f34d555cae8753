"""Tests for ``python -m spacy_nested``."""

import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_nested.cli import app

runner = CliRunner()
RECORDS = [
    {
        "tokens": ["IL-2", "gene", "in", "T", "cells"],
        "doc_id": "D1",
        "sent_id": "D1-0",
        "entity_mentions": [
            {"start": 0, "end": 2, "entity_type": "DNA", "text": "IL-2 gene"},
            {"start": 0, "end": 2, "entity_type": "protein", "text": "IL-2 gene"},
            {"start": 3, "end": 5, "entity_type": "cell_type", "text": "T cells"},
        ],
    },
    {
        "tokens": ["NF-kappa", "B", "binds", "."],
        "doc_id": "D1",
        "sent_id": "D1-1",
        "entity_mentions": [{"start": 0, "end": 2, "entity_type": "protein", "text": "NF-kappa B"}],
    },
    {"tokens": ["Nothing", "."], "doc_id": "D2", "sent_id": "D2-0", "entity_mentions": []},
]


def write_input(path: Path, lines) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def read_spans(path: Path, key: str):
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return [[(s.start, s.end, s.label_) for s in doc.spans[key]] for doc in docs], docs


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "convert" in result.output


def test_convert(tmp_path):
    source = write_input(tmp_path / "dev.jsonl", [json.dumps(r) for r in RECORDS])
    output = tmp_path / "out" / "dev.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "--spans-key", "sc"])
    assert result.exit_code == 0, result.output
    assert "3 docs, 3 sentences, 4 spans, 3 labels (protein 2, DNA 1, cell_type 1)" in result.stdout
    spans, docs = read_spans(output, "sc")
    assert spans == [
        [(0, 2, "DNA"), (0, 2, "protein"), (3, 5, "cell_type")],
        [(0, 2, "protein")],
        [],
    ]
    assert [doc.text for doc in docs] == [" ".join(r["tokens"]) for r in RECORDS]
    assert sorted(p.name for p in output.parent.iterdir()) == ["dev.spacy"]


def test_convert_group_by_doc_id(tmp_path):
    source = write_input(tmp_path / "dev.jsonl", [json.dumps(r) for r in RECORDS])
    output = tmp_path / "dev.spacy"
    args = ["convert", str(source), str(output), "--group-by", "doc_id", "--format", "yhcc"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 docs, 3 sentences, 4 spans" in result.stdout
    spans, docs = read_spans(output, "nested")
    assert spans[0] == [(0, 2, "DNA"), (0, 2, "protein"), (3, 5, "cell_type"), (5, 7, "protein")]
    assert [s.text for s in docs[0].sents] == ["IL-2 gene in T cells", "NF-kappa B binds ."]


def test_convert_w2ner(tmp_path):
    record = {"sentence": ["a", "b", "c"], "ner": [{"index": [1, 2], "type": "X"}]}
    source = write_input(tmp_path / "w.jsonl", [json.dumps(record)])
    output = tmp_path / "w.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "w2ner"])
    assert result.exit_code == 0, result.output
    assert read_spans(output, "nested")[0] == [[(1, 3, "X")]]


@pytest.mark.parametrize("existing", [False, True])
def test_convert_failure_writes_nothing(tmp_path, existing):
    bad = {"sentence": ["a", "b", "c"], "ner": [{"index": [0, 2], "type": "X"}]}
    source = write_input(tmp_path / "w.jsonl", ["", json.dumps(bad)])
    output = tmp_path / "out.spacy"
    if existing:
        output.write_bytes(b"previous")
    result = runner.invoke(app, ["convert", str(source), str(output)])
    assert result.exit_code == 1
    assert f"{source}:2: non-contiguous index [0, 2] in ner[0]" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["out.spacy", "w.jsonl"] if existing else ["w.jsonl"]
    )
    if existing:
        assert output.read_bytes() == b"previous"


def test_convert_truncated_file(tmp_path):
    source = write_input(
        tmp_path / "t.jsonl", [json.dumps(RECORDS[0]), json.dumps(RECORDS[1])[:30]]
    )
    output = tmp_path / "t.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output)])
    assert result.exit_code == 1
    assert f"{source}:2: invalid JSON" in result.stderr
    assert not output.exists()


def test_convert_split_tokens(tmp_path):
    record = {
        "tokens": ["ER- cells", "die"],
        "entities": [{"type": "cell_line", "start": 0, "end": 1}],
    }
    source = write_input(tmp_path / "s.jsonl", [json.dumps(record)])
    output = tmp_path / "s.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output)])
    assert result.exit_code == 1
    assert "--split-tokens" in result.stderr
    result = runner.invoke(app, ["convert", str(source), str(output), "--split-tokens"])
    assert result.exit_code == 0, result.output
    assert f"{source}:1: split token 0 'ER- cells'" in result.stderr
    assert read_spans(output, "nested")[0] == [[(0, 2, "cell_line")]]


def test_convert_missing_input(tmp_path):
    result = runner.invoke(
        app, ["convert", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.spacy")]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "o.spacy").exists()
