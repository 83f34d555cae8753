"""docs/frontier.svg (`python bench/frontier.py`): current, and a point for every pipeline with both figures.

The chart is drawn from the kept results (bench/results/) and bench/figures.json only, so these
tests train and predict nothing.
"""
import copy
import importlib
import re
import shutil
import subprocess
import sys
from types import ModuleType
from typing import Any, Dict

import pytest

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench"
CHART = REPO_ROOT / "docs" / "frontier.svg"


@pytest.fixture
def frontier(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/frontier.py as a module (bench/ on sys.path, as when it runs: it imports bench/results.py)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("frontier")


@pytest.mark.slow
def test_frontier_chart_is_what_its_command_writes() -> None:
    """After a change to bench/figures.json or bench/results/, rerun `python bench/frontier.py`."""
    matplotlib = pytest.importorskip("matplotlib")
    written_by = re.search(r"Matplotlib v([^,\s]+)", CHART.read_text(encoding="utf8"))
    if written_by and written_by.group(1) != matplotlib.__version__:
        pytest.skip(f"{CHART.name} was written by matplotlib {written_by.group(1)}, this is {matplotlib.__version__}")
    done = subprocess.run([sys.executable, str(BENCH / "frontier.py"), "--check"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_benchmarks_page_is_what_its_command_writes() -> None:
    """The page embeds the chart under its caption (figures.json's `frontier`)."""
    done = subprocess.run([sys.executable, str(BENCH / "benchmarks_page.py"), "--check"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (REPO_ROOT / "docs" / "benchmarks.md").read_text(encoding="utf8")
    assert "](frontier.svg)" in page and "python bench/frontier.py" in page


def test_a_point_for_each_pipeline_with_both_figures(frontier: ModuleType) -> None:
    """Every summary row with a dev F1 and a speed is drawn, at the words/s the summary gives, and labelled."""
    pytest.importorskip("matplotlib")
    figures: Dict[str, Any] = frontier.load_figures()
    points = frontier.points(figures)
    names = frontier.encoders(figures, points)
    for row in figures["summary"]["rows"]:
        if row["words"] == "–" and not row["ratio"].endswith("‡"):
            continue  # no speed measured
        if "kept" in row:
            found = [point for point in points if point.kept == row["kept"]]
        else:
            found = [point for point in points if not point.kept and names[point.encoder] == row["encoder"]
                     and point.label in row["pipeline"]]
        assert len(found) == 1, row
        if row["words"] != "–":
            low, high = min(found[0].words), max(found[0].words)
            assert row["words"] == (f"{low:,.0f}" if low == high else f"{low:,.0f}–{high:,.0f}"), row
    assert {point.kept for point in points if point.kept} >= {"minilm/ens5-ensemble", "cpu/shared-ll-bo-ensemble"}
    assert {point.encoder for point in points} == {"cpu", "minilm"}
    for point in points:
        assert point.low <= point.f1 <= point.high and min(point.words) > 0
    fig = frontier.draw(figures, points)
    assert sorted(text.get_text() for text in fig.axes[0].texts) == sorted(point.text for point in points)


def test_a_new_pipeline_needs_its_kept_result_and_a_speed_row(frontier: ModuleType, tmp_path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept result (here a copy, as `cpu/fast-int8`), a row in a speed table and an entry make a point."""
    shutil.copytree(frontier.results.ROOT, tmp_path / "results")
    shutil.copy(tmp_path / "results" / "cpu" / "locate_label-small.json", tmp_path / "results" / "cpu" / "fast-int8.json")
    monkeypatch.setattr(frontier.results, "ROOT", tmp_path / "results")
    figures = copy.deepcopy(frontier.load_figures())
    before = frontier.points(figures)
    speed_section = next(section for section in figures["sections"] if section["title"] == "Prediction speed")
    table = speed_section["tables"][0]
    table["rows"].append(["fast, int8", *["1,234 / 1,432"] * (len(table["columns"]) - 1)])
    figures["frontier"]["points"].append({"kept": "cpu/fast-int8", "speed": [{"table": table["title"], "row": "fast, int8"}]})
    after = frontier.points(figures)
    assert after[:-1] == before
    new = after[-1]
    assert (new.label, new.encoder, new.words, new.int8) == ("fast-int8", "cpu", (1234.0, 1432.0), True)
    assert new.low < new.f1 < new.high  # paired against the CPU reference
