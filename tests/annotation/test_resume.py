"""``--resume`` never writes what an uninterrupted run would not.

A run is killed at any of its renames (the run record, a piece, the joined output, its record,
the pieces' removal: the points where what is on disk changes), then the input, the options or
the pipeline may change, then the run is resumed. Either the resumed output equals the output
of an uninterrupted run over the input as it is at resume time (with the settings the run
started with, once it had written output), or the resume refuses and leaves everything it had
written untouched; and it refuses exactly when the run had written output and the input's
content or the pipeline differs.

The kill is a BaseException raised in place of ``os.replace``: nothing the run does afterwards
reaches the disk, as with SIGKILL (tests/cli/test_annotate.py kills a real process too).
"""
import json
import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacy_nested.annotation import RunSettings, annotate
from spacy_nested.annotation.run import ResumeRefused
from spacy_nested.corpora.formats.errors import FormatError
from tests.annotation.fake import fake_pipeline

PIPELINES = [fake_pipeline(0, batch_scaled=True), fake_pipeline(1, batch_scaled=True)]  # spans depend on the batch
WORDS = ["IL-2", "gene", "NF-kappa", "B", "binds", "the", "Jurkat", "cells", "of", "T"]


class Killed(BaseException):
    """The process died here."""


@contextmanager
def killed_at(n: Optional[int]) -> Iterator[None]:
    """``os.replace`` dies at its n-th call (None: never)."""
    real = os.replace
    calls = {"n": 0}

    def dying_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == n:
            raise Killed()
        real(src, dst)

    with mock.patch("os.replace", dying_replace):
        yield


def _line(k: int, valid: bool = True) -> str:
    if not valid:
        return '{"id": %d, "text": ' % k
    text = " ".join(WORDS[(k * 3 + i) % len(WORDS)] for i in range(2 + k % 4))
    body = " ".join(reversed(text.split()))
    return json.dumps({"id": k, "text": text, "body": body})


@st.composite
def cases(draw):
    n = draw(st.integers(1, 9))
    invalid = draw(st.sets(st.integers(0, n - 1), max_size=2))
    first = RunSettings(
        piece_size=draw(st.integers(1, 4)),
        text_key=draw(st.sampled_from(["text", "body"])),
        include_text=draw(st.booleans()),
        batch_size=draw(st.integers(1, 4)),
    )
    changes = draw(st.fixed_dictionaries({}, optional={
        "piece_size": st.integers(1, 5), "text_key": st.sampled_from(["text", "body"]),
        "include_text": st.booleans(), "spans_key": st.sampled_from(["nested", "other"]),
        "batch_size": st.integers(1, 5),
    }))  # fmt: skip
    return {
        "lines": [_line(k, k not in invalid) for k in range(n)],
        "folder": draw(st.booleans()),
        "single": draw(st.booleans()),
        "first": first,
        "skip": draw(st.booleans()),
        "kill_at": draw(st.one_of(st.none(), st.integers(1, 12))),
        "edit": draw(st.sampled_from(["none", "rewrite same", "change a line", "append a line", "drop the last line"])),
        "resume": replace(first, **changes),
        "skip_at_resume": draw(st.booleans()),
        "other_pipeline": draw(st.booleans()),
    }


def _write_input(root: Path, lines: List[str], folder: bool) -> Path:
    if not folder:
        (root / "in.jsonl").write_text("".join(line + "\n" for line in lines))
        return root / "in.jsonl"
    (root / "in").mkdir()
    (root / "in" / "a.txt").write_text("Jurkat cells\nthe IL-2 gene\n")
    (root / "in" / "b.jsonl").write_text("".join(line + "\n" for line in lines))
    return root / "in"


def _edit(path: Path, edit: str) -> None:
    file = path / "b.jsonl" if path.is_dir() else path
    lines = file.read_text().splitlines()
    if edit == "change a line":
        lines[0] = _line(len(lines) + 7)
    elif edit == "append a line":
        lines.append(_line(len(lines)))
    elif edit == "drop the last line" and len(lines) > 1:
        lines.pop()
    file.write_text("".join(line + "\n" for line in lines))  # "rewrite same": the same bytes again


def _snapshot(root: Path, skip: Path) -> Dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and skip not in p.parents and p != skip
    }


def _records(output: Path) -> List[dict]:
    files = [output] if output.suffix == ".jsonl" else sorted(output.glob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _run(nlp, inp: Path, out: Path, run_settings: RunSettings, *, skip: bool, resume: bool = False) -> Optional[FormatError]:
    """The run; the FormatError of a bad record that stopped it (None: it finished)."""
    try:
        annotate(nlp, inp, out, run_settings, resume=resume, skip_invalid=skip)
    except FormatError as err:
        return err
    return None


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_a_resume_gives_the_uninterrupted_output_or_refuses_untouched(tmp_path_factory, case):
    root = tmp_path_factory.mktemp("resume")
    inp = _write_input(root, case["lines"], case["folder"])
    out = root / ("out.jsonl" if case["single"] else "out")
    finished = False
    with killed_at(case["kill_at"]):
        try:
            finished = _run(PIPELINES[0], inp, out, case["first"], skip=case["skip"]) is None
        except Killed:
            pass
    recorded = any(p.name in ("part-00000.jsonl", "out.jsonl.run.json") for p in root.rglob("*"))  # it wrote output
    before = inp.read_bytes() if inp.is_file() else (inp / "b.jsonl").read_bytes()
    _edit(inp, case["edit"])
    after = inp.read_bytes() if inp.is_file() else (inp / "b.jsonl").read_bytes()
    nlp = PIPELINES[1] if case["other_pipeline"] else PIPELINES[0]
    written = _snapshot(root, inp)

    try:
        stopped = _run(nlp, inp, out, case["resume"], skip=case["skip_at_resume"], resume=True)
    except ResumeRefused:
        assert recorded and (before != after or case["other_pipeline"])
        assert _snapshot(root, inp) == written  # nothing it had written changed
        return
    assert not (recorded and (before != after or case["other_pipeline"])), "a changed input or pipeline was not refused"

    in_force = case["first"] if recorded else case["resume"]
    whole = root / ("whole.jsonl" if case["single"] else "whole")
    if finished and case["single"]:  # a finished file is left as it is: the first run's output
        assert _snapshot(root, inp) == written
        stopped_too = _run(nlp, inp, whole, in_force, skip=case["skip"])
    else:
        stopped_too = _run(nlp, inp, whole, in_force, skip=case["skip_at_resume"])
    assert (stopped is None) == (stopped_too is None), (stopped, stopped_too)
    if stopped is None:
        assert _records(out) == _records(whole)
        assert _records(out) or b'"body"' not in after, "nothing was compared"
    else:
        assert str(stopped) == str(stopped_too)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(3, 9),
    first=st.builds(RunSettings, piece_size=st.integers(2, 4), batch_size=st.integers(1, 4)),
    batch_at_resume=st.integers(1, 5),
    kill_at=st.integers(3, 5),
    single=st.booleans(),
)
def test_a_resume_with_another_batch_size_gives_the_uninterrupted_output(
    tmp_path_factory, n, first, batch_at_resume, kill_at, single
):
    """The pipeline's spans depend on its batches (as an int8 pipeline's do): the resumed run keeps
    the batch size it started with, so its later pieces are batched as they would have been."""
    root = tmp_path_factory.mktemp("batch")
    inp = _write_input(root, [_line(k) for k in range(n)], folder=False)
    out = root / ("out.jsonl" if single else "out")
    with killed_at(kill_at):  # 1: the run record, 2: the first piece, 3 on: later pieces or the join
        try:
            _run(PIPELINES[0], inp, out, first, skip=False)
        except Killed:
            pass
    _run(PIPELINES[0], inp, out, replace(first, batch_size=batch_at_resume), skip=False, resume=True)
    whole = root / ("whole.jsonl" if single else "whole")
    _run(PIPELINES[0], inp, whole, first, skip=False)
    assert _records(out) == _records(whole) and _records(whole)
