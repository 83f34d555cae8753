"""``python -m spacy_nested annotate``: what a user sees and gets, record by record."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from tests.annotation.fake import fake_pipeline
from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_examples, train

TEXTS = [text for text, _ in SENTENCES]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small trained locate_label pipeline."""
    nlp = build_nlp("locate_label_ner")
    train(nlp, make_examples(nlp), 60)
    path = tmp_path_factory.mktemp("annotate") / "model"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> Path:
    """The fast rule pipeline of tests/annotation/fake.py, saved."""
    path = tmp_path_factory.mktemp("rules") / "model"
    fake_pipeline().to_disk(path)
    return path


def _jsonl(path: Path, n: int) -> Path:
    records = [{"id": f"doc{i}", "text": TEXTS[i % len(TEXTS)], "year": 2000 + i} for i in range(n)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _run(*args):
    return CliRunner().invoke(app, ["annotate", *map(str, args)])


def _read(output: Path):
    files = [output] if output.suffix == ".jsonl" else sorted(output.glob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_jsonl_records_in_order_with_index_fields_and_sorted_char_offsets(model, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 20)
    result = _run(model, inp, tmp_path / "out.jsonl", "--piece-size", "7")
    assert result.exit_code == 0, result.output
    records = _read(tmp_path / "out.jsonl")
    assert [(r["index"], r["id"]) for r in records] == [(i, f"doc{i}") for i in range(20)]
    assert all(r["year"] == 2000 + i and "text" not in r for i, r in enumerate(records))
    assert sum(len(r["spans"]) for r in records) > 0
    for i, r in enumerate(records):
        text = TEXTS[i % len(TEXTS)]
        for span in r["spans"]:
            assert 0 <= span["start"] < span["end"] <= len(text) and 0 <= span["score"] <= 1
            assert text[span["start"]] != " " and text[span["end"] - 1] != " "
        keys = [(s["start"], s["end"], s["label"]) for s in r["spans"]]
        assert keys == sorted(keys)
    assert not (tmp_path / "out.jsonl.parts").exists()


def test_spans_are_sorted_by_position_whatever_order_the_pipeline_gives(rules, tmp_path):
    (tmp_path / "in.txt").write_text("Jurkat cells bind IL-2 in T cells\n")
    assert _run(rules, tmp_path / "in.txt", tmp_path / "out.jsonl").exit_code == 0
    spans = _read(tmp_path / "out.jsonl")[0]["spans"]
    keys = [(s["start"], s["end"], s["label"]) for s in spans]
    assert len(keys) == 6 and keys == sorted(keys)  # the pipeline lists them right to left


@pytest.mark.slow
def test_every_input_kind_numbers_its_records_from_0_and_include_text_keeps_the_text(rules, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n")
    DocBin(docs=[fake_pipeline().make_doc(t) for t in TEXTS]).to_disk(tmp_path / "in.spacy")
    _jsonl(tmp_path / "in.jsonl", len(TEXTS))
    outputs = {}
    for suffix in ("txt", "spacy", "jsonl"):
        out = tmp_path / f"{suffix}_out"
        assert _run(rules, tmp_path / f"in.{suffix}", out, "--piece-size", "3", "--include-text").exit_code == 0
        outputs[suffix] = _read(out)
    for records in outputs.values():
        assert [r["index"] for r in records] == list(range(len(TEXTS)))
        assert [r["text"] for r in records] == TEXTS
    spans = {suffix: [r["spans"] for r in records] for suffix, records in outputs.items()}
    assert spans["txt"] == spans["spacy"] == spans["jsonl"]
    assert len(sorted((tmp_path / "txt_out").glob("part-*.jsonl"))) == 3


def test_a_folder_names_each_records_file_and_numbers_within_it(rules, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("IL-2 gene\nJurkat cells\n")
    _jsonl(tmp_path / "in" / "b.jsonl", 2)
    assert _run(rules, tmp_path / "in", tmp_path / "out.jsonl").exit_code == 0
    found = [(r["file"], r["index"]) for r in _read(tmp_path / "out.jsonl")]
    assert found == [("a.txt", 0), ("a.txt", 1), ("b.jsonl", 0), ("b.jsonl", 1)]


def test_invalid_lines_stop_with_file_line_column_or_are_skipped_and_listed(rules, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 6)
    lines = inp.read_text().splitlines()
    lines[3] = '{"id": "broken", "text": '
    lines[4] = '{"id": "no text"}'
    inp.write_text("\n".join(lines) + "\n")
    result = _run(rules, inp, tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert f"{inp}:4:26: invalid JSON: Expecting value (truncated line?)" in result.output
    assert "line 1 column" not in result.output
    assert not (tmp_path / "out.jsonl").exists() and not list(tmp_path.glob("**/*.tmp"))
    result = _run(rules, inp, tmp_path / "out2.jsonl", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "Skipped 2 invalid records, listed in" in result.output
    assert [r["id"] for r in _read(tmp_path / "out2.jsonl")] == ["doc0", "doc1", "doc2", "doc5"]
    listed = (tmp_path / "out2.jsonl.skipped.txt").read_text().splitlines()
    assert listed == [
        f"{inp}:4:26: invalid JSON: Expecting value (truncated line?)",
        f"{inp}:5: no string field 'text' (--text-key)",
    ]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_bytes_that_are_not_utf8_are_a_bad_record_at_their_line_and_column(rules, tmp_path, suffix):
    inp = tmp_path / f"in{suffix}"
    good = [json.dumps({"text": t}).encode() if suffix == ".jsonl" else t.encode() for t in TEXTS[:3]]
    bad = b'{"text": "caf\xe9"}' if suffix == ".jsonl" else b"caf\xe9 au lait"
    inp.write_bytes(b"\n".join([*good[:2], bad, good[2]]) + b"\n")
    result = _run(rules, inp, tmp_path / "out.jsonl", "--piece-size", "1")
    column = bad.index(b"\xe9") + 1
    assert result.exit_code == 1
    assert f"{inp}:3:{column}: not UTF-8 (byte 0xe9 at column {column})" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.jsonl").exists()
    assert "--resume --skip-invalid goes on past it" in result.output  # line 1's piece is kept
    result = _run(rules, inp, tmp_path / "out.jsonl", "--resume", "--skip-invalid", "--piece-size", "1")
    assert result.exit_code == 0, result.output
    assert [r["index"] for r in _read(tmp_path / "out.jsonl")] == [0, 1, 3]  # the bad line alone is skipped
    assert "not UTF-8" in (tmp_path / "out.jsonl.skipped.txt").read_text()


def test_a_field_named_like_an_output_field_is_a_bad_record_not_overwritten(rules, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"text": "IL-2", "spans": [1, 2]}) + "\n")
    result = _run(rules, inp, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and f"{inp}:1: field 'spans' is one annotate writes itself" in result.output


def test_an_empty_input_is_an_error_and_an_empty_file_in_a_folder_a_warning(rules, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    result = _run(rules, tmp_path / "empty.jsonl", tmp_path / "out.jsonl")
    assert result.exit_code == 1 and f"{tmp_path / 'empty.jsonl'}: no records: the file is empty" in result.output
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.parts").exists()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("")
    assert "every input file in the folder is empty" in _run(rules, tmp_path / "in", tmp_path / "o1").output
    (tmp_path / "in" / "b.txt").write_text("IL-2 gene\n")
    result = _run(rules, tmp_path / "in", tmp_path / "o2")
    assert result.exit_code == 0 and f"{tmp_path / 'in' / 'a.txt'}: no records (the file is empty)" in result.output
    assert len(_read(tmp_path / "o2")) == 1


def test_a_text_over_max_length_is_a_bad_record_and_max_length_raises_the_guard(rules, tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("IL-2 gene\n" + "x " * 40 + "\n")
    result = _run(rules, inp, tmp_path / "out.jsonl", "--max-length", "50")
    assert result.exit_code == 1 and f"{inp}:2: 80 characters, over the pipeline's max_length of 50" in result.output
    assert _run(rules, inp, tmp_path / "out2.jsonl", "--max-length", "80").exit_code == 0


def test_an_existing_output_needs_resume_and_a_finished_one_says_so(rules, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 3)
    assert _run(rules, inp, tmp_path / "out.jsonl").exit_code == 0
    result = _run(rules, inp, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "exists; remove it to annotate again" in result.output
    result = _run(rules, inp, tmp_path / "out.jsonl", "--resume")
    assert result.exit_code == 0 and "is complete: nothing to resume" in result.output
    assert len(_read(tmp_path / "out.jsonl")) == 3


def _killed_after(tmp_path: Path, rules: Path, inp: Path, out: Path, pieces: int, *args: str) -> None:
    """A folder run whose pieces after the first ``pieces`` are gone, as if it had been killed there."""
    assert _run(rules, inp, out, *args).exit_code == 0
    for piece in sorted(out.glob("part-*.jsonl"))[pieces:]:
        piece.unlink()


def test_resume_goes_on_with_the_piece_size_it_started_with_and_says_so(rules, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 30)
    _killed_after(tmp_path, rules, inp, tmp_path / "out", 1, "--piece-size", "10")
    result = _run(rules, inp, tmp_path / "out", "--resume")  # the default piece size is 1000
    assert result.exit_code == 0, result.output
    assert "Resuming with the run's --piece-size 10 (given: 1000)" in result.output
    assert [r["index"] for r in _read(tmp_path / "out")] == list(range(30))  # each record once


def test_resume_goes_on_with_the_batch_size_it_started_with_so_batch_dependent_spans_match(tmp_path):
    """A pipeline whose scores depend on the batch (as an int8 one's do): a run resumed with another
    --batch-size writes what the uninterrupted run writes."""
    model = tmp_path / "batch_scaled"
    fake_pipeline(batch_scaled=True).to_disk(model)
    inp = _jsonl(tmp_path / "in.jsonl", 30)
    assert _run(model, inp, tmp_path / "whole", "--piece-size", "10", "--batch-size", "4").exit_code == 0
    assert _run(model, inp, tmp_path / "by8", "--piece-size", "10", "--batch-size", "8").exit_code == 0
    assert _read(tmp_path / "by8") != _read(tmp_path / "whole")  # the batch size shows in the records
    _killed_after(tmp_path, model, inp, tmp_path / "out", 1, "--piece-size", "10", "--batch-size", "4")
    result = _run(model, inp, tmp_path / "out", "--resume", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert "Resuming with the run's --batch-size 4 (given: 8)" in result.output
    assert _read(tmp_path / "out") == _read(tmp_path / "whole")


def test_a_run_record_without_the_batch_size_resumes_with_the_one_given_and_says_so(rules, tmp_path):
    """A run.json written before --batch-size was recorded (version 1) still resumes."""
    inp = _jsonl(tmp_path / "in.jsonl", 30)
    _killed_after(tmp_path, rules, inp, tmp_path / "out", 1, "--piece-size", "10")
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["version"] == 2 and record["settings"]["batch_size"] == 64
    record["version"] = 1
    del record["settings"]["batch_size"]
    (tmp_path / "out" / "run.json").write_text(json.dumps(record))
    result = _run(rules, inp, tmp_path / "out", "--resume", "--batch-size", "16")
    assert result.exit_code == 0, result.output
    assert "written by an earlier version, does not record --batch-size: going on with 16" in result.output
    assert [r["index"] for r in _read(tmp_path / "out")] == list(range(30))


@pytest.mark.parametrize("change", ["edit", "append", "pipeline"])
def test_resume_refuses_a_changed_input_or_pipeline_and_names_it(rules, tmp_path, change):
    inp = _jsonl(tmp_path / "in.jsonl", 30)
    _killed_after(tmp_path, rules, inp, tmp_path / "out", 1, "--piece-size", "10")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    model = rules
    if change == "pipeline":
        model = tmp_path / "other"
        fake_pipeline(1).to_disk(model)
    elif change == "edit":
        inp.write_text(inp.read_text().replace("doc0", "doc-zero"))
    else:
        inp.write_text(inp.read_text() + json.dumps({"text": "appended"}) + "\n")
    result = _run(model, inp, tmp_path / "out", "--resume")
    assert result.exit_code == 1
    reason = "the pipeline differs" if change == "pipeline" else "input file in.jsonl changed"
    assert f"cannot resume {tmp_path / 'out'}: {reason}" in result.output
    kept = "Its 1 complete piece were written from the input and pipeline as they were"
    assert f"{kept}; remove {tmp_path / 'out'} to start over" in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_resume_refuses_pieces_without_a_run_record(rules, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 30)
    _killed_after(tmp_path, rules, inp, tmp_path / "out", 1, "--piece-size", "10")
    (tmp_path / "out" / "run.json").unlink()
    result = _run(rules, inp, tmp_path / "out", "--resume")
    assert result.exit_code == 1 and "has no run.json, so what its pieces hold is unknown" in result.output


# SIGKILLs itself at the n-th os.replace: the temporary file is written, not yet renamed.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from spacy_nested.__main__ import app
    calls = {"n": 0}
    real_replace = os.replace
    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
    os.replace = replace
    app(sys.argv[2:], prog_name="annotate")
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("output_name,kill_at", [("out.jsonl", 3), ("out.jsonl", 7), ("out", 2)])  # 7: the joined file
def test_a_killed_process_resumes_to_the_uninterrupted_output(model, tmp_path, output_name, kill_at):
    inp = _jsonl(tmp_path / "in.jsonl", 17)
    args = [str(model), str(inp), "--piece-size", "4"]
    assert _run(*args[:2], tmp_path / "whole" / output_name, *args[2:]).exit_code == 0
    out = tmp_path / "killed" / output_name
    out.parent.mkdir()
    killed = subprocess.run([sys.executable, "-c", KILLER, str(kill_at), "annotate", *args[:2], str(out), *args[2:]])
    assert killed.returncode == -9
    result = _run(*args[:2], out, "--resume")
    assert result.exit_code == 0, result.output
    assert _read(out) == _read(tmp_path / "whole" / output_name)
    assert [r["id"] for r in _read(out)] == [f"doc{i}" for i in range(17)]  # each doc once, in order
    assert not list(out.parent.glob("**/*.tmp")) and not list(out.parent.glob("**/.*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "dask"])
def test_two_processes_or_a_local_cluster_give_the_one_process_output(model, tmp_path, engine):
    if engine == "dask":
        pytest.importorskip("distributed")
    inp = _jsonl(tmp_path / "in.jsonl", 23)
    lines = inp.read_text().splitlines()
    lines[9] = "not json"
    inp.write_text("\n".join(lines) + "\n")
    args = ["--piece-size", "5", "--skip-invalid", "--include-text"]
    assert _run(model, inp, tmp_path / "local.jsonl", *args).exit_code == 0
    result = _run(model, inp, tmp_path / "cluster.jsonl", *args, "--engine", engine, "--n-process", "2")
    assert result.exit_code == 0, result.output
    assert _read(tmp_path / "cluster.jsonl") == _read(tmp_path / "local.jsonl")
    assert len(_read(tmp_path / "cluster.jsonl")) == 22
    assert sum(len(r["spans"]) for r in _read(tmp_path / "local.jsonl")) > 0


def test_a_run_stopped_before_its_first_piece_starts_again_once_the_input_is_fixed(rules, tmp_path):
    inp = _jsonl(tmp_path / "in.jsonl", 4)
    good = inp.read_text()
    inp.write_text(good + "not json\n")
    assert _run(rules, inp, tmp_path / "out.jsonl").exit_code == 1
    inp.write_text(good)
    result = _run(rules, inp, tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert len(_read(tmp_path / "out.jsonl")) == 4
