"""The `smoke` workflow of project.yml, run end to end (explosion/projects style)."""
import shutil
from pathlib import Path

import pytest
import srsly
from weasel.cli.run import project_run

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_workflow(shared_data, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    project = srsly.read_yaml(REPO / "project.yml")
    project["vars"]["data_dir"] = str(shared_data / "genia")
    srsly.write_yaml(root / "project.yml", project)
    shutil.copytree(REPO / "configs", root / "configs")
    project_run(root, "smoke", capture=True)
    metrics = srsly.read_json(root / "metrics" / "smoke.json")
    assert metrics["spans_nested_f"] > 0
    assert set(metrics["spans_nested_per_type"]) <= {"DNA", "RNA", "protein", "cell_line", "cell_type"}
