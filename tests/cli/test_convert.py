"""Tests for ``python -m spacy_nested``."""

import json
import re
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_nested.__main__ import app

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


@pytest.fixture
def shared_data_or_none():
    from tests.conftest import find_shared_data

    return find_shared_data()


def read_spans(path: Path, key: str):
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return [[(s.start, s.end, s.label_) for s in doc.spans[key]] for doc in docs], docs


def written_counts(path: Path, key: str = "nested") -> str:
    """"N docs, N sentences, N spans" of a DocBin as spaCy reads it back."""
    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    n_sentences = sum(len(list(doc.sents)) if doc.has_annotation("SENT_START") else 1 for doc in docs)
    return f"{len(docs)} docs, {n_sentences} sentences, {sum(len(doc.spans[key]) for doc in docs)} spans"


def printed_counts(stdout: str) -> str:
    """The "N docs, N sentences, N spans" of the command's "Converted" line."""
    match = re.search(r"Converted .* -> .*: (\d+ docs, \d+ sentences, \d+ spans)", stdout)
    assert match, stdout
    return match.group(1)


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "convert" in result.output


def test_python_m_spacy_nested_has_exactly_the_user_commands():
    """`python -m spacy_nested` registers each command module's commands on the one app: what a user of
    the library runs, and none of the spaCy project's own steps (those are scripts/ beside project.yml)."""
    names = {command.name for command in app.registered_commands}
    assert names == {
        "annotate",
        "convert",
        "evaluate",
        "report",
        "tune-ensemble",
        "combine-pipelines",
        "shared-encoder-config",
        "distill",
        "quantize",
    }
    assert not app.registered_groups
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and all(name in result.output for name in names)


@pytest.mark.slow
def test_the_library_never_imports_the_project_scripts():
    """scripts/ imports spacy_nested; importing every module of the package loads none of scripts/."""
    import os
    import pkgutil
    import subprocess
    import sys

    import spacy_nested

    modules = [m.name for m in pkgutil.walk_packages(spacy_nested.__path__, "spacy_nested.")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(n for n in ('workflow', 'prepare_data', 'write_configs') if n in sys.modules))"
    )
    scripts = str(Path(__file__).resolve().parents[2] / "scripts")
    env = {**os.environ, "PYTHONPATH": scripts}  # importable, so an import of a script would succeed and show
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["[]"]


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
    message = "invalid JSON: Unterminated string starting at (truncated line?)"
    assert result.stderr.splitlines() == [f"Error: {source}:2:30: {message}"]
    assert not output.exists()


def test_convert_not_utf8_line(tmp_path):
    """A line that is not UTF-8 is located by line and column; --skip-invalid skips that line alone."""
    source = tmp_path / "dev.jsonl"
    source.write_bytes(
        json.dumps(RECORDS[0]).encode() + b"\n" + b'{"tokens": ["caf\xe9"]}\n' + json.dumps(RECORDS[2]).encode() + b"\n"
    )
    output = tmp_path / "dev.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {source}:2:17: not UTF-8 (byte 0xe9 at column 17)"]
    result = runner.invoke(app, ["convert", str(source), str(output), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"Skipped: {source}:2:17: not UTF-8 (byte 0xe9 at column 17)"]
    listed = tmp_path / "dev.skipped.txt"
    assert listed.read_text(encoding="utf8") == f"{source}:2:17: not UTF-8 (byte 0xe9 at column 17)\n"
    assert "2 docs, 2 sentences, 3 spans" in result.stdout
    assert f"Skipped 1 invalid record (see above; all 1 listed in {listed})" in result.stdout


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


def test_convert_jsonl_directory(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_input(corpus / "b.jsonl", [json.dumps(RECORDS[2])])
    write_input(corpus / "a.jsonl", [json.dumps(r) for r in RECORDS[:2]])
    write_input(corpus / "notes.txt", ["not a corpus file"])
    output = tmp_path / "all.spacy"
    result = runner.invoke(app, ["convert", str(corpus), str(output), "-g", "doc_id"])
    assert result.exit_code == 0, result.output
    assert "2 docs, 3 sentences, 4 spans" in result.stdout
    result = runner.invoke(app, ["convert", str(corpus), str(output), "-f", "conll"])
    assert result.exit_code == 1
    assert f"{corpus / 'notes.txt'}:1: invalid tag 'file' in column 4" in result.stderr


def test_convert_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(tmp_path / "empty"), str(output)])
    assert result.exit_code == 1
    assert f"Error: no *.jsonl files in {tmp_path / 'empty'}" in result.stderr
    assert not output.exists()


INVALID = [
    "{",
    json.dumps({**RECORDS[0], "entity_mentions": [{"start": 2, "end": 1, "entity_type": "X"}]}),
    "[1]",
]


def test_convert_skip_invalid(tmp_path):
    lines = [json.dumps(RECORDS[0]), INVALID[0], "", INVALID[1], json.dumps(RECORDS[1]), INVALID[2]]
    source = write_input(tmp_path / "dev.jsonl", lines)
    output = tmp_path / "dev.spacy"
    output.write_bytes(b"previous")
    result = runner.invoke(app, ["convert", str(source), str(output)])
    assert result.exit_code == 1
    assert output.read_bytes() == b"previous"
    result = runner.invoke(app, ["convert", str(source), str(output), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "2 docs, 2 sentences, 4 spans" in result.stdout
    assert f"Skipped 3 invalid records (see above; all 3 listed in {tmp_path / 'dev.skipped.txt'})" in result.stdout
    assert result.stderr.splitlines() == [
        f"Skipped: {source}:2:2: invalid JSON: Expecting property name enclosed in double quotes "
        "(truncated line?)",
        f"Skipped: {source}:4: span start 2 >= end 1 in entity_mentions[0]",
        f"Skipped: {source}:6: expected a JSON object, got list",
    ]
    assert read_spans(output, "nested")[0] == [
        [(0, 2, "DNA"), (0, 2, "protein"), (3, 5, "cell_type")],
        [(0, 2, "protein")],
    ]


def test_convert_skip_invalid_lists_every_record_in_a_file(tmp_path):
    source = write_input(tmp_path / "dev.jsonl", ["{"] * 25 + [json.dumps(RECORDS[2])])
    output = tmp_path / "dev.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    listed = tmp_path / "dev.skipped.txt"
    assert f"Skipped 25 invalid records (see above; all 25 listed in {listed})" in result.stdout
    skipped = result.stderr.splitlines()
    assert [line.split(": ")[1] for line in skipped[:20]] == [f"{source}:{n}:2" for n in range(1, 21)]
    assert skipped[20:] == ["Skipped: ... and 5 more"]
    lines = listed.read_text(encoding="utf8").splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{source}:{n}:2" for n in range(1, 26)]
    assert all("invalid JSON" in line for line in lines)
    # Elsewhere with --skipped-file; a run that skips nothing leaves the list empty, never stale.
    elsewhere = tmp_path / "logs" / "skipped.txt"
    args = ["convert", str(source), str(output), "--skip-invalid", "--skipped-file", str(elsewhere)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and f"all 25 listed in {elsewhere}" in result.stdout
    assert elsewhere.read_text(encoding="utf8") == listed.read_text(encoding="utf8")
    clean = write_input(tmp_path / "clean.jsonl", [json.dumps(RECORDS[2])])
    result = runner.invoke(app, ["convert", str(clean), str(output), "--skip-invalid"])
    assert result.exit_code == 0 and "Skipped" not in result.output
    assert listed.read_text(encoding="utf8") == ""


def test_convert_skipped_file_needs_skip_invalid(tmp_path):
    source = write_input(tmp_path / "dev.jsonl", [json.dumps(RECORDS[0])])
    args = ["convert", str(source), str(tmp_path / "o.spacy"), "--skipped-file", str(tmp_path / "s.txt")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "needs --skip-invalid" in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "o.spacy").exists()


@pytest.mark.parametrize("name", ["dev.json", "dev.jsonl", "dev", "dev.spacy.bak"])
def test_convert_output_must_be_a_spacy_file(tmp_path, name):
    """spaCy's corpus reader reads only *.spacy files: any other name would train on nothing."""
    source = write_input(tmp_path / "in.jsonl", [json.dumps(RECORDS[0])])
    output = tmp_path / "out" / name
    result = runner.invoke(app, ["convert", str(source), str(output)])
    assert result.exit_code == 2
    assert "does not end in .spacy" in " ".join(result.output.replace("│", " ").split())
    assert not output.exists()


def test_convert_skip_invalid_nothing_left(tmp_path):
    source = write_input(tmp_path / "dev.jsonl", INVALID[:2])
    output = tmp_path / "dev.spacy"
    output.write_bytes(b"previous")
    result = runner.invoke(app, ["convert", str(source), str(output), "--skip-invalid"])
    assert result.exit_code == 1
    assert f"Skipped: {source}:1:2: invalid JSON" in result.stderr
    listed = tmp_path / "dev.skipped.txt"
    assert f"Error: {source}: no sentences found (skipped 2 invalid records; all 2 listed in {listed})" in result.stderr
    assert len(listed.read_text(encoding="utf8").splitlines()) == 2
    assert output.read_bytes() == b"previous"


@pytest.mark.parametrize(
    "name,content,args",
    [
        ("empty.jsonl", "", []),
        ("blank.jsonl", "\n \n\n", ["-f", "yhcc"]),
        ("empty.conll", "-DOCSTART- O\n\n", ["-f", "conll"]),
        ("empty.txt", "", ["-f", "brat"]),
        ("empty.xml", "<set>\n</set>\n", ["-f", "genia-xml"]),
    ],
)
@pytest.mark.parametrize("existing", [False, True])
def test_convert_empty_file(tmp_path, name, content, args, existing):
    source = tmp_path / name
    source.write_text(content, encoding="utf8")
    if name.endswith(".txt"):
        source.with_suffix(".ann").write_text("", encoding="utf8")
    output = tmp_path / "out.spacy"
    if existing:
        output.write_bytes(b"previous")
    result = runner.invoke(app, ["convert", str(source), str(output), *args])
    assert result.exit_code == 1
    assert f"Error: {source}: no sentences found" in result.stderr
    if existing:
        assert output.read_bytes() == b"previous"
    else:
        assert not output.exists()


def test_convert_empty_file_in_directory(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_input(corpus / "a.jsonl", [json.dumps(RECORDS[0])])
    (corpus / "b.jsonl").write_text("", encoding="utf8")
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(corpus), str(output)])
    assert result.exit_code == 1
    assert f"Error: {corpus / 'b.jsonl'}: no sentences found" in result.stderr
    assert not output.exists()
    result = runner.invoke(app, ["convert", str(corpus), str(output), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert f"Skipped: {corpus / 'b.jsonl'}: no sentences found" in result.stderr
    assert "1 docs, 1 sentences" in result.stdout


CONLL = """\
-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC

Peter NNP I-NP I-PER
Mary NNP I-NP B-PER

-DOCSTART- -X- -X- O

Paris NNP I-NP I-LOC
"""


def test_convert_conll(tmp_path):
    source = tmp_path / "eng.testa"
    source.write_text(CONLL, encoding="utf8")
    output = tmp_path / "dev.spacy"
    args = ["convert", str(source), str(output), "-f", "conll", "--scheme", "iob1", "-g", "doc_id"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 docs, 3 sentences, 5 spans, 4 labels (PER 2, LOC 1, MISC 1, ORG 1)" in result.stdout
    spans, docs = read_spans(output, "nested")
    assert spans == [[(0, 1, "ORG"), (2, 3, "MISC"), (3, 4, "PER"), (4, 5, "PER")], [(0, 1, "LOC")]]
    assert [doc.text for doc in docs] == ["EU rejects German Peter Mary", "Paris"]
    assert [len(list(doc.sents)) for doc in docs] == [2, 1]


def test_convert_conll_tag_columns_and_directory(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "b.conll").write_text("Bonn B-LOC B-LOC\n", encoding="utf8")
    (corpus / "a.txt").write_text("University B-ORG O\nof I-ORG O\nBonn I-ORG B-LOC\n")
    (corpus / "c.jsonl").write_text("{}\n")
    output = tmp_path / "o.spacy"
    args = ["convert", str(corpus), str(output), "-f", "conll", "--tag-columns", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_spans(output, "nested")[0] == [[(0, 3, "ORG"), (2, 3, "LOC")], [(0, 1, "LOC")]]


def test_convert_conll_keeps_the_chunk_column_as_data(tmp_path):
    """CoNLL-2003's CHUNK column holds IOB tags too (I-NP): it is said, and not read as entities."""
    source = tmp_path / "eng.testa"
    source.write_text(CONLL, encoding="utf8")
    output = tmp_path / "dev.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "conll"])
    assert result.exit_code == 0, result.output
    assert f"Note: {source}: column 3 holds chunk tags (NP, VP): read as data" in result.stderr
    assert read_spans(output, "nested")[0] == [[(0, 1, "ORG"), (2, 3, "MISC")], [(0, 1, "PER"), (1, 2, "PER")], [(0, 1, "LOC")]]


NESTED_CONLL = """\
University B-ORG B-LOC
of I-ORG O
Paris I-ORG B-LOC

Bonn B-LOC O
"""


def test_convert_conll_reads_every_layer_of_iob_tags(tmp_path):
    """A nested corpus's layer columns are all read, and said, without --tag-columns."""
    source = tmp_path / "nested.conll"
    source.write_text(NESTED_CONLL, encoding="utf8")
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "conll"])
    assert result.exit_code == 0, result.output
    assert f"Note: {source}: columns 2 and 3 hold only IOB tags: read as 2 nesting layers (--tag-columns 2)" in result.stderr
    assert read_spans(output, "nested")[0] == [[(0, 3, "ORG"), (0, 1, "LOC"), (2, 3, "LOC")], [(0, 1, "LOC")]]
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "conll", "--tag-columns", "1"])
    assert result.exit_code == 0 and "Note:" not in result.output
    assert read_spans(output, "nested")[0] == [[(0, 1, "LOC"), (2, 3, "LOC")], []]


def test_convert_conll_ambiguous_column_stops_and_names_tag_columns(tmp_path):
    source = tmp_path / "x.conll"
    source.write_text("University B-ORG B-LOC\nof I-ORG O\n", encoding="utf8")
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "conll"])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"Error: {source}: column 2 holds only IOB tags, with types (ORG) that column 3 (LOC) never has" in message
    assert "pass --tag-columns 2 to read it as a nesting layer too, or --tag-columns 1 to read it as data" in message
    assert not output.exists()
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "conll", "--tag-columns", "2"])
    assert result.exit_code == 0, result.output
    assert read_spans(output, "nested")[0] == [[(0, 2, "ORG"), (0, 1, "LOC")]]


@pytest.mark.parametrize("kind", ["xml", "sample_xml", "brat_dir", "brat_ann", "brat_txt", "conll", "conll_dir"])
def test_convert_auto_names_the_format_to_use(tmp_path, shared_data_or_none, kind):
    """--format auto reads JSON lines; XML, BRAT and CoNLL input get the --format that reads them."""
    expected = {"xml": "genia-xml", "sample_xml": "genia-xml", "conll": "conll", "conll_dir": "conll"}.get(kind, "brat")
    if kind == "xml":
        source = write_input(tmp_path / "sample.xml", ['<?xml version="1.0"?>', "<set><article></article></set>"])
    elif kind == "sample_xml":
        if shared_data_or_none is None:
            pytest.skip("shared data not found")
        source = shared_data_or_none / "genia" / "raw-sample" / "GENIAcorpus3.02-sample.xml"
    elif kind.startswith("brat"):
        ann = write_brat(tmp_path / "brat", "doc", "IL-2 gene", ["T1\tDNA 0 9\tIL-2 gene"])
        source = {"brat_dir": tmp_path / "brat", "brat_ann": ann, "brat_txt": ann.with_suffix(".txt")}[kind]
    else:
        (tmp_path / "conll").mkdir()
        source = tmp_path / "conll" / "eng.testa.txt"
        source.write_text(CONLL, encoding="utf8")
        source = source if kind == "conll" else source.parent
    output = tmp_path / "o.spacy"
    for args in ([], ["-f", "yhcc"]):
        result = runner.invoke(app, ["convert", str(source), str(output), *args])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: {source} looks like ")
        assert f"not JSON lines: use --format {expected}" in result.stderr
        assert "invalid JSON" not in result.stderr and "no *.jsonl files" not in result.stderr
    assert not output.exists()
    if kind in ("brat_dir", "conll"):  # the named format then converts it
        result = runner.invoke(app, ["convert", str(source), str(output), "-f", expected])
        assert result.exit_code == 0, result.output


def test_convert_conll_iob2_warning(tmp_path):
    source = tmp_path / "x.conll"
    source.write_text("a O\nb I-PER\n", encoding="utf8")
    output = tmp_path / "o.spacy"
    args = ["convert", str(source), str(output), "-f", "conll", "--scheme", "iob2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"Warning: {source}:2: 'I-PER' does not continue an open PER entity" in result.stderr


@pytest.mark.parametrize(
    "text,message",
    [
        ("a NN B-X\nb I-X\n", "2: expected 3 columns (as on line 1), found 2"),
        ("a O\nb X-PER\n", "2: invalid tag 'X-PER' in column 2"),
    ],
)
def test_convert_conll_error(tmp_path, text, message):
    source = tmp_path / "bad.conll"
    source.write_text(text, encoding="utf8")
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), "-f", "conll"])
    assert result.exit_code == 1
    assert f"Error: {source}:{message}" in result.stderr
    assert not output.exists()


def test_convert_conll_skip_invalid(tmp_path):
    source = tmp_path / "x.conll"
    source.write_text("a B-X\nb E-X\n\nc I-Y\n", encoding="utf8")
    output = tmp_path / "o.spacy"
    args = ["convert", str(source), str(output), "-f", "conll", "--skip-invalid"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"Skipped: {source}:2: invalid tag 'E-X' in column 2" in result.stderr
    assert "Skipped 1 invalid record (see above; all 1 listed in" in result.stdout
    assert read_spans(output, "nested")[0] == [[(0, 1, "Y")]]


@pytest.mark.parametrize(
    "args,option",
    [
        (["--scheme", "iob2"], "--scheme"),
        (["-f", "brat", "--tag-columns", "2"], "--tag-columns"),
        (["-f", "conll", "--split-tokens"], "--split-tokens"),
        (["-f", "conll", "--doc-ids", "{source}"], "--doc-ids"),
        (["-f", "genia-xml", "--skip-invalid"], "--skip-invalid"),
    ],
)
def test_convert_option_for_another_format(tmp_path, args, option):
    source = write_input(tmp_path / "dev.jsonl", [json.dumps(RECORDS[0])])
    args = [arg.format(source=source) for arg in args]
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), *args])
    assert result.exit_code == 2
    assert option in result.output
    assert "only applies to --format" in result.output
    assert not output.exists()


def write_brat(directory: Path, name: str, text: str, ann) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_text(text, encoding="utf8")
    return write_input(directory / f"{name}.ann", ann)


def test_convert_brat(tmp_path):
    text = "IL-2 gene  expression\nin T-cells.\n"
    ann = [
        "T1\tDNA 0 9\tIL-2 gene",
        "T2\tprotein 0 4\tIL-2",
        "T3\tcell_type 25 32\tT-cells",
        "T4\tcell_type 28 32\tells",
        "T5\tprotein 0 4;11 21\tIL-2 expression",
        "R1\tRegulates Arg1:T1 Arg2:T2",
    ]
    ann_path = write_brat(tmp_path / "brat", "doc1", text, ann)
    write_brat(tmp_path / "brat", "doc2", "Bonn", ["T1\tLOC 0 4\tBonn"])
    output = tmp_path / "brat.spacy"
    result = runner.invoke(app, ["convert", str(tmp_path / "brat"), str(output), "-f", "brat"])
    assert result.exit_code == 0, result.output
    assert "2 docs, 3 sentences, 4 spans" in result.stdout
    assert "Skipped 1 misaligned, 1 discontinuous entities" in result.stdout
    assert "Skipped standoff lines that are not entities: 1 relation (R)" in result.stdout
    assert f"Warning: {ann_path}: skipped 2 entities" in result.stderr
    spans, docs = read_spans(output, "nested")
    assert spans == [[(0, 2, "DNA"), (0, 1, "protein"), (6, 9, "cell_type")], [(0, 1, "LOC")]]
    assert [doc.text for doc in docs] == [text, "Bonn"]
    result = runner.invoke(app, ["convert", str(ann_path), str(output), "-f", "brat"])
    assert result.exit_code == 0, result.output
    assert "1 docs, 2 sentences, 3 spans" in result.stdout


def test_convert_brat_lines_are_sentences_and_non_entities_are_said(tmp_path):
    """Each line of the .txt is a sentence in the DocBin; R and # lines are skipped, and said."""
    ann = [
        "T1\tDNA 0 9\tIL-2 gene",
        "R1\tRegulates Arg1:T1 Arg2:T2",
        "T2\tcell_type 13 20\tT-cells",
        "#1\tAnnotatorNotes T1\ta note",
    ]
    ann_path = write_brat(tmp_path / "brat", "doc", "IL-2 gene\nin T-cells.\n", ann)
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(ann_path), str(output), "-f", "brat"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Converted {ann_path} -> {output}: 1 docs, 2 sentences, 2 spans, 2 labels (DNA 1, cell_type 1)",
        "Skipped standoff lines that are not entities: 1 relation (R), 1 note (#)",
    ]
    (doc,) = DocBin().from_disk(output).get_docs(spacy.blank("en").vocab)
    assert [s.text_with_ws for s in doc.sents] == ["IL-2 gene\n", "in T-cells.\n"]
    assert [(s.text, s.label_) for s in doc.spans["nested"]] == [("IL-2 gene", "DNA"), ("T-cells", "cell_type")]


def test_convert_brat_not_utf8(tmp_path):
    ann_path = write_brat(tmp_path / "brat", "doc", "IL-2 gene", ["T1\tDNA 0 9\tIL-2 gene"])
    ann_path.write_bytes(b"T1\tDNA 0 9\tIL-2 gene\nT2\tDNA 0 4\tIL-\xb2\n")
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(ann_path), str(output), "-f", "brat"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {ann_path}:2:15: not UTF-8 (byte 0xb2 at column 15)"]
    txt_path = ann_path.with_suffix(".txt")
    txt_path.write_bytes(b"IL-2 gene\nin T-c\xe9lls\n")
    result = runner.invoke(app, ["convert", str(ann_path), str(output), "-f", "brat"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {txt_path}:2:7: not UTF-8 (byte 0xe9 at column 7)"]
    assert not output.exists()


@pytest.mark.parametrize(
    "kind,args",
    [
        ("jsonl", []),
        ("jsonl", ["-g", "doc_id"]),
        ("conll", ["-f", "conll"]),
        ("conll", ["-f", "conll", "-g", "doc_id"]),
        ("brat", ["-f", "brat"]),
        ("brat", ["-f", "brat", "-g", "doc_id"]),
    ],
)
def test_convert_counts_what_the_docbin_holds(tmp_path, kind, args):
    """The docs, sentences and spans that the command prints are those spaCy reads back from its DocBin."""
    if kind == "jsonl":
        source = write_input(tmp_path / "dev.jsonl", [json.dumps(r) for r in RECORDS])
    elif kind == "conll":
        source = tmp_path / "eng.testa"
        source.write_text(CONLL, encoding="utf8")
    else:
        write_brat(tmp_path / "brat", "a", "IL-2 gene\n\nin T-cells.\nBonn", ["T1\tDNA 0 9\tIL-2 gene", "R1\tX Arg1:T1 Arg2:T1"])
        write_brat(tmp_path / "brat", "b", "Bonn", ["T1\tLOC 0 4\tBonn"])
        source = tmp_path / "brat"
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(source), str(output), *args])
    assert result.exit_code == 0, result.output
    assert printed_counts(result.stdout) == written_counts(output)


def test_convert_brat_errors(tmp_path):
    ann_path = write_brat(tmp_path / "brat", "doc", "IL-2 gene", ["T1\tDNA 0 9\tIL-3 gene"])
    output = tmp_path / "o.spacy"
    result = runner.invoke(app, ["convert", str(tmp_path / "brat"), str(output), "-f", "brat"])
    assert result.exit_code == 1
    assert f"Error: {ann_path}:1: entity text 'IL-3 gene' does not match" in result.stderr
    assert not output.exists()
    (tmp_path / "brat" / "doc.txt").unlink()
    result = runner.invoke(app, ["convert", str(ann_path), str(output), "-f", "brat"])
    assert result.exit_code == 1
    assert f"Error: {ann_path}:1: missing text file" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["convert", str(empty), str(output), "-f", "brat"])
    assert result.exit_code == 1
    assert f"Error: no .ann files in {empty}" in result.stderr
    assert not output.exists()


def test_convert_brat_skip_invalid(tmp_path):
    ann = ["T1\tDNA 0 9\tIL-3 gene", "T2\tprotein 0 4\tIL-2", "T3\tprotein 5 4\tgene"]
    ann_path = write_brat(tmp_path / "brat", "doc", "IL-2 gene", ann)
    output = tmp_path / "o.spacy"
    args = ["convert", str(ann_path), str(output), "-f", "brat", "--skip-invalid"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Skipped: {ann_path}:1: entity text 'IL-3 gene' does not match the text at 0 9: "
        "'IL-2 gene'",
        f"Skipped: {ann_path}:3: start 5 >= end 4 in 'protein 5 4'",
    ]
    assert "Skipped 2 invalid records (see above; all 2 listed in" in result.stdout
    assert read_spans(output, "nested")[0] == [[(0, 1, "protein")]]


def test_convert_genia_xml(shared_data, tmp_path):
    source = shared_data / "genia" / "raw-sample"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    ids = write_input(tmp_path / "ids.txt", ["MEDLINE:95333264", "MEDLINE:95369245"])
    output = tmp_path / "genia.spacy"
    args = ["convert", str(source), str(output), "-f", "genia-xml", "--doc-ids", str(ids)]
    result = runner.invoke(app, [*args, "-g", "doc_id"])
    assert result.exit_code == 0, result.output
    assert "Converted" in result.stdout and " 2 docs, " in result.stdout
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert len(docs) == 2 and all(len(doc.spans["nested"]) for doc in docs)
