"""The project workflow's per-pipeline steps: config choice, the detectors filter, reuse."""
import re
from pathlib import Path

import pytest
import srsly
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.workflow import (
    CONFIGS,
    THRESHOLD_PIPES,
    TOK2VEC_LOSS_NOTE,
    TRAINED,
    TUNED,
    config_path,
    selected,
    train_pipeline,
    tune_threshold,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_pipeline_has_an_existing_cpu_config(name):
    assert (REPO / config_path(name, "cpu")).exists()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_pipeline_has_an_existing_transformer_config(name):
    assert (REPO / config_path(name, "trf")).exists()


def test_unknown_names_and_missing_configs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown pipeline 'ner'"):
        config_path("ner", "cpu")
    with pytest.raises(ValueError, match="unknown encoder 'gpu'"):
        config_path("spancat", "gpu")
    with pytest.raises(ValueError, match=r"unknown pipelines in detectors: \['bopn'\]"):
        selected("spancat", "spancat bopn")


def test_detectors_filter():
    assert selected("spancat", "locate_label spancat")
    assert not selected("span_finder", "locate_label  spancat")


def test_training_explains_the_tok2vec_loss_column(tmp_path, monkeypatch, capsys):
    """spaCy prints LOSS TOK2VEC without saying it is a sum of squared gradients (often 0.00 here)."""
    monkeypatch.setattr("spacy.cli.train.train", lambda config, output, **kwargs: output.mkdir(parents=True))
    train_pipeline("spancat", "cpu", tmp_path)
    out = " ".join(capsys.readouterr().out.split())
    assert "LOSS TOK2VEC in the table below is not a loss: spaCy prints there the sum of the squared gradients" in out
    assert TOK2VEC_LOSS_NOTE.split()[:4] == ["LOSS", "TOK2VEC", "in", "the"]


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
    result = runner.invoke(app, ["train-pipeline", "spancat", "--encoder", "gpu", "--output-root", str(tmp_path)])
    assert result.exit_code == 1 and "Error: unknown encoder 'gpu'" in result.stderr


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    """A tiny locate_label pipeline where the workflow expects it, and a gold DocBin."""
    import spacy
    from spacy.tokens import DocBin

    from .pipeline.nested_fixture import SENTENCES, build_nlp, make_doc, make_examples, train

    root = tmp_path_factory.mktemp("workflow")
    nlp = build_nlp("locate_label_ner")
    train(nlp, make_examples(nlp), n_iter=2)
    model = root / "training" / "cpu" / "locate_label" / "model-best"
    model.parent.mkdir(parents=True)
    nlp.to_disk(model)
    vocab = spacy.blank("en").vocab
    DocBin(docs=[make_doc(vocab, text, spans) for text, spans in SENTENCES]).to_disk(root / "dev.spacy")
    return root


def test_benchmark_pipeline_adds_its_result_to_the_metrics(trained_root):
    metrics = trained_root / "metrics" / "cpu" / "locate_label.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text('{"overall": {"f": 0.5}}')
    args = ["benchmark-pipeline", "locate_label", str(trained_root / "dev.spacy")]
    args += ["--output-root", str(trained_root / "training"), "--metrics-root", str(trained_root / "metrics")]
    args += ["--batch-size", "4", "--batches", "30", "--warmup", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = srsly.read_json(metrics)
    assert written["overall"] == {"f": 0.5} and written["benchmark"]["words_per_s"] > 0


def test_evaluate_and_visualize_pipeline_write_where_the_workflow_expects(trained_root, tmp_path):
    training, dev = str(trained_root / "training"), str(trained_root / "dev.spacy")
    args = ["evaluate-pipeline", "locate_label", dev, "--output-root", training, "--metrics-root", str(tmp_path / "metrics")]
    result = CliRunner().invoke(app, args + ["--limit", "2"])
    assert result.exit_code == 0, result.output
    assert srsly.read_json(tmp_path / "metrics" / "cpu" / "locate_label.json")["n_docs"] == 2
    args = ["visualize-pipeline", "locate_label", dev, "--output-root", training, "--reports-root", str(tmp_path / "reports")]
    result = CliRunner().invoke(app, args + ["--n-docs", "2"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "reports" / "cpu" / "locate_label.html").read_text(encoding="utf8")
    assert "doc 1: predicted" in page and "doc 2:" not in page
    assert not re.search(r"(DNA|RNA|protein|cell_line|cell_type) \d\.\d\d", page)


def test_visualize_pipeline_shows_the_scores_of_the_predictions(trained_root, tmp_path):
    import spacy
    from spacy.tokens import DocBin

    model = trained_root / "training" / "cpu" / "locate_label" / "model-best"
    nlp = spacy.load(model, config={"components": {"locate_label_ner": {"threshold": 0.0}}})  # spans to show
    (tmp_path / "training" / "cpu" / "locate_label").mkdir(parents=True)
    nlp.to_disk(tmp_path / "training" / "cpu" / "locate_label" / "model-best")
    args = ["visualize-pipeline", "locate_label", str(trained_root / "dev.spacy"), "--output-root", str(tmp_path / "training")]
    result = CliRunner().invoke(app, args + ["--reports-root", str(tmp_path / "reports"), "--n-docs", "2", "--show-scores"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "reports" / "cpu" / "locate_label.html").read_text(encoding="utf8")
    docs = list(DocBin().from_disk(trained_root / "dev.spacy").get_docs(nlp.vocab))[:2]
    predicted = list(nlp.pipe(doc.text for doc in docs))
    groups = [doc.spans["nested"] for doc in predicted]
    expected = {f"{span.label_} {score:.2f}" for group in groups for span, score in zip(group, group.attrs["scores"])}
    assert expected and all(label in page for label in expected)
    gold = page.split("doc 0: predicted")[0]
    assert not re.search(r"(DNA|RNA|protein|cell_line|cell_type) \d\.\d\d", gold)  # gold spans have no scores


def test_package_pipeline_builds_a_wheel(trained_root):
    packages = trained_root / "packages"
    args = ["package-pipeline", "locate_label", "--output-root", str(trained_root / "training"), "--packages-root", str(packages)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list(packages.glob("cpu/en_nested_locate_label-0.1.0/dist/en_nested_locate_label-0.1.0-*.whl"))


def test_a_pipeline_that_was_not_trained_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["package-pipeline", "spancat", "--output-root", str(tmp_path)])
    assert result.exit_code == 1 and "Error: spancat: no trained pipeline at " in result.stderr
    assert "run train-spancat first" in result.stderr


def test_tune_pipeline_sets_the_threshold_found_on_dev_and_later_steps_use_it(trained_root, tmp_path):
    import spacy

    training, dev = str(trained_root / "training"), str(trained_root / "dev.spacy")
    best = trained_root / "training" / "cpu" / "locate_label" / "model-best"
    args = ["tune-pipeline", "locate_label", dev, "--output-root", training, "--n-trials", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    found = tune_threshold(best, "locate_label", trained_root / "dev.spacy", n_trials=5)
    assert found["threshold"] in (0.0, 0.25, 0.5, 0.75, 1.0) and found["configured"] == 0.45
    assert found["score"] == max(found["scores"].values())
    tuned = spacy.load(best.parent / TUNED)
    assert tuned.get_pipe("locate_label_ner").threshold == found["threshold"]
    assert spacy.load(best).get_pipe("locate_label_ner").threshold == 0.45  # model-best is left as trained
    assert f"threshold {found['threshold']:.2f} (configured 0.45)" in " ".join(result.output.split())
    args = ["evaluate-pipeline", "locate_label", dev, "--output-root", training, "--metrics-root", str(tmp_path / "m")]
    assert CliRunner().invoke(app, args).exit_code == 0
    scored = srsly.read_json(tmp_path / "m" / "cpu" / "locate_label.json")["overall"]["f"]
    assert scored == pytest.approx(found["score"])  # evaluated with the tuned threshold


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_pipeline_has_the_threshold_it_tunes(name):
    import spacy

    config = spacy.util.load_config(config_path(name, "cpu", REPO / "configs"))
    assert "threshold" in config["components"][THRESHOLD_PIPES[name]]
