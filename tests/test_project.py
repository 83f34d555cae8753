"""The `smoke` workflow of project.yml, run end to end (explosion/projects style)."""
import shutil
from pathlib import Path

import pytest
import srsly
from weasel.cli.run import project_run

from spacy_nested.workflow import CONFIGS

REPO = Path(__file__).resolve().parents[1]
# Pipelines with dev F1 > 0 after the smoke's 60 steps on 200 sentences. boundary_offset and
# proposer_regressor still predict nothing at that point (measured 2026-11-25: F1 0 after 60 steps,
# and after 100 full-batch steps on 30 sentences at learn rate 0.01); open in the workflow issue.
LEARN_IN_SMOKE = ("locate_label", "spancat", "span_finder")


@pytest.mark.slow
def test_smoke_workflow_reports_every_pipeline(shared_data, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    project = srsly.read_yaml(REPO / "project.yml")
    project["vars"]["data_dir"] = str(shared_data / "genia")
    srsly.write_yaml(root / "project.yml", project)
    shutil.copytree(REPO / "configs", root / "configs")
    project_run(root, "smoke", capture=True)
    report = srsly.read_json(root / "reports" / "smoke" / "cpu" / "report.json")
    assert set(report) == set(CONFIGS)  # the three detectors and both spaCy baselines
    for name, metrics in report.items():
        if name in LEARN_IN_SMOKE:
            assert metrics["overall"]["f"] > 0, name
        assert set(metrics["per_type"]) <= {"DNA", "RNA", "protein", "cell_line", "cell_type"}
    table = (root / "reports" / "smoke" / "cpu" / "report.md").read_text(encoding="utf8")
    assert all(f"| {name} |" in table for name in CONFIGS)
    for name in CONFIGS:
        page = (root / "reports" / "smoke" / "cpu" / f"{name}.html").read_text(encoding="utf8")
        assert "doc 4: predicted" in page


def test_all_workflow_trains_evaluates_and_reports_every_pipeline():
    project = srsly.read_yaml(REPO / "project.yml")
    steps = project["workflows"]["all"]
    for name in CONFIGS:
        assert steps.index(f"train-{name}") < steps.index(f"evaluate-{name}") < steps.index("report")


def test_readme_lists_the_current_project_commands(tmp_path):
    """`spacy project document . --output README.md` keeps this section current."""
    from weasel.cli.document import project_document

    marker = "<!-- WEASEL: AUTO-GENERATED DOCS START (do not remove) -->"
    fresh = tmp_path / "README.md"
    project_document(REPO, fresh)
    readme, generated = (path.read_text(encoding="utf8") for path in (REPO / "README.md", fresh))
    assert readme[readme.index(marker):].strip() == generated[generated.index(marker):].strip()
