"""The project workflow's per-pipeline steps: config choice, the detectors filter, reuse."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_nested.cli import app
from spacy_nested.workflow import CONFIGS, TRAINED, config_path, selected, train_pipeline

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_pipeline_has_an_existing_cpu_config(name):
    assert (REPO / config_path(name, "cpu")).exists()


def test_transformer_configs_exist_for_the_detectors():
    for name in ("locate_label", "boundary_offset", "proposer_regressor"):
        assert (REPO / config_path(name, "trf")).exists()


def test_unknown_names_and_missing_configs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown pipeline 'ner'"):
        config_path("ner", "cpu")
    with pytest.raises(ValueError, match="unknown encoder 'gpu'"):
        config_path("spancat", "gpu")
    with pytest.raises(ValueError, match="'spancat' has no 'trf' config"):
        config_path("spancat", "trf")
    with pytest.raises(ValueError, match=r"unknown pipelines in detectors: \['bopn'\]"):
        selected("spancat", "spancat bopn")


def test_detectors_filter():
    assert selected("spancat", "locate_label spancat")
    assert not selected("span_finder", "locate_label  spancat")


def test_a_finished_training_is_reused(tmp_path, monkeypatch):
    done = tmp_path / "cpu" / "spancat"
    done.mkdir(parents=True)
    (done / TRAINED).write_text("{}\n")
    monkeypatch.setattr("spacy.cli.train.train", lambda *a, **k: pytest.fail("trained again"))
    assert train_pipeline("spancat", "cpu", tmp_path) == done


def test_skipped_pipeline_and_bad_encoder_from_the_command_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train-pipeline", "spancat", "--detectors", "locate_label", "--output-root", str(tmp_path)])
    assert result.exit_code == 0 and "skipped" in result.output
    result = runner.invoke(app, ["train-pipeline", "spancat", "--encoder", "trf", "--output-root", str(tmp_path)])
    assert result.exit_code == 1 and "no 'trf' config" in result.output
