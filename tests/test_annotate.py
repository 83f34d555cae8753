"""``annotate``: every input doc once, in order, with its fields; a killed run resumes to the same output."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.annotate import count_records, progress_bar, read_records
from spacy_nested.formats.errors import Skipped

from .pipeline.nested_fixture import SENTENCES, build_nlp, make_examples, train

TEXTS = [text for text, _ in SENTENCES]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    nlp = build_nlp("locate_label_ner")
    train(nlp, make_examples(nlp), 60)
    path = tmp_path_factory.mktemp("annotate") / "model"
    nlp.to_disk(path)
    return path


def _jsonl(path: Path, n: int) -> Path:
    records = [{"id": f"doc{i}", "text": TEXTS[i % len(TEXTS)], "year": 2000 + i} for i in range(n)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _run(*args: str):
    return CliRunner().invoke(app, ["annotate", *map(str, args)])


def _read(output: Path):
    files = [output] if output.suffix == ".jsonl" else sorted(output.glob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_jsonl_records_in_order_with_fields_and_char_offsets(model, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 20)
    result = _run(model, inp, tmp_path / "out.jsonl", "--piece-size", "7")
    assert result.exit_code == 0, result.output
    records = _read(tmp_path / "out.jsonl")
    assert [r["id"] for r in records] == [f"doc{i}" for i in range(20)]
    assert all(r["year"] == 2000 + i and "text" not in r for i, r in enumerate(records))
    assert sum(len(r["spans"]) for r in records) > 0
    for i, r in enumerate(records):
        text = TEXTS[i % len(TEXTS)]
        for span in r["spans"]:
            assert 0 <= span["start"] < span["end"] <= len(text) and 0 <= span["score"] <= 1
            assert text[span["start"]] != " " and text[span["end"] - 1] != " "
    assert not (tmp_path / "out.jsonl.parts").exists()


def test_folder_output_txt_and_docbin_inputs_agree(model, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n")
    nlp = build_nlp("locate_label_ner")
    DocBin(docs=[nlp.make_doc(t) for t in TEXTS]).to_disk(tmp_path / "in.spacy")
    assert _run(model, tmp_path / "in.txt", tmp_path / "txt_out", "--piece-size", "3").exit_code == 0
    assert _run(model, tmp_path / "in.spacy", tmp_path / "bin_out").exit_code == 0
    from_txt, from_bin = _read(tmp_path / "txt_out"), _read(tmp_path / "bin_out")
    assert len(sorted((tmp_path / "txt_out").glob("part-*.jsonl"))) == 3
    assert [r["id"] for r in from_txt] == list(range(1, len(TEXTS) + 1))
    assert [r["spans"] for r in from_txt] == [r["spans"] for r in from_bin]


def test_invalid_line_stops_with_file_and_line_or_is_skipped_and_listed(model, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 6)
    lines = inp.read_text().splitlines()
    lines[3] = '{"id": "broken", "text": '
    lines[4] = '{"id": "no text"}'
    inp.write_text("\n".join(lines) + "\n")
    result = _run(model, inp, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "in.jsonl:4:" in result.output
    assert not (tmp_path / "out.jsonl").exists() and not list(tmp_path.glob("**/*.tmp"))
    result = _run(model, inp, tmp_path / "out2.jsonl", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in _read(tmp_path / "out2.jsonl")] == ["doc0", "doc1", "doc2", "doc5"]
    listed = (tmp_path / "out2.jsonl.skipped.txt").read_text().splitlines()
    assert [line.split(": ")[0][-len("in.jsonl:4"):] for line in listed] == ["in.jsonl:4", "in.jsonl:5"]


def test_an_existing_output_needs_resume(model, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 3)
    assert _run(model, inp, tmp_path / "out.jsonl").exit_code == 0
    result = _run(model, inp, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "--resume" in result.output
    assert _run(model, inp, tmp_path / "out.jsonl", "--resume").exit_code == 0  # finished: nothing to do
    assert len(_read(tmp_path / "out.jsonl")) == 3


# SIGKILLs itself at the n-th os.replace: the temporary piece is written, not yet renamed.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import spacy_nested.annotate as annotate
    from spacy_nested.__main__ import app
    calls = {"n": 0}
    real_replace = os.replace
    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
    annotate.os.replace = replace
    app(sys.argv[2:], prog_name="annotate")
    """
)


@pytest.mark.parametrize("output_name,kill_at", [("out.jsonl", 3), ("out.jsonl", 6), ("out", 2)])  # 6: while joining
def test_killed_run_resumes_to_the_uninterrupted_output(model, tmp_path, output_name, kill_at):
    inp = _jsonl(tmp_path / "in.jsonl", 17)
    args = [str(model), str(inp), "--piece-size", "4"]
    assert _run(*args[:2], tmp_path / "whole" / output_name, *args[2:]).exit_code == 0
    out = tmp_path / "killed" / output_name
    out.parent.mkdir()
    killed = subprocess.run([sys.executable, "-c", KILLER, str(kill_at), "annotate", *args[:2], str(out), *args[2:]])
    assert killed.returncode == -9
    result = _run(*args[:2], out, *args[2:], "--resume")
    assert result.exit_code == 0, result.output
    assert _read(out) == _read(tmp_path / "whole" / output_name)
    assert [r["id"] for r in _read(out)] == [f"doc{i}" for i in range(17)]  # each doc once, in order
    assert not list(out.parent.glob("**/*.tmp")) and not list(out.parent.glob("**/.*.tmp"))


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_two_processes_or_a_local_cluster_give_the_one_process_output(model, tmp_path, engine):
    if engine == "dask":
        pytest.importorskip("distributed")
    inp = _jsonl(tmp_path / "in.jsonl", 23)
    lines = inp.read_text().splitlines()
    lines[9] = "not json"
    inp.write_text("\n".join(lines) + "\n")
    args = ["--piece-size", "5", "--skip-invalid"]
    assert _run(model, inp, tmp_path / "local.jsonl", *args).exit_code == 0
    result = _run(model, inp, tmp_path / "cluster.jsonl", *args, "--engine", engine, "--n-process", "2")
    assert result.exit_code == 0, result.output
    assert _read(tmp_path / "cluster.jsonl") == _read(tmp_path / "local.jsonl")
    assert len(_read(tmp_path / "cluster.jsonl")) == 22


def test_the_progress_bar_counts_every_input_record_for_its_eta(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("one\n\nthree")  # an empty line is a record; so is a last line without newline
    _jsonl(folder / "b.jsonl", 4).write_text(_jsonl(folder / "b.jsonl", 4).read_text() + "not json\n")
    nlp = build_nlp("locate_label_ner")
    DocBin(docs=[nlp.make_doc(t) for t in TEXTS[:2]]).to_disk(folder / "c.spacy")
    assert count_records(folder) == 3 + 5 + 2 == len(list(read_records(folder, "text", nlp, Skipped(skip_invalid=True))))
    with progress_bar(folder, 4, enabled=True) as bar:
        assert bar.total == 6  # what a resumed run still has to do
    with progress_bar(folder, 0, enabled=False) as bar:
        assert bar.total is None  # in a pipe nothing is counted
