"""The spaCy project's per-pipeline steps (scripts/workflow.py): config choice, the detectors filter, reuse."""
import re
import sys
from pathlib import Path

import pytest
import srsly
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # as `python scripts/workflow.py` finds its sibling scripts

import workflow  # noqa: E402
from workflow import (  # noqa: E402
    CONFIGS,
    ENCODERS,
    ENSEMBLE,
    ENSEMBLE_MEMBERS,
    SMOKE,
    THRESHOLD_PIPES,
    TOK2VEC_LOSS_NOTE,
    TRAINED,
    TUNED,
    build_ensemble,
    config_path,
    selected,
    smoke_overrides,
    train_pipeline,
    tune_threshold,
)

app = workflow.app


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
    result = runner.invoke(app, ["train", "spancat", "--detectors", "locate_label", "--output-root", str(tmp_path)])
    assert result.exit_code == 0 and "skipped" in result.output
    result = runner.invoke(app, ["train", "spancat", "--encoder", "gpu", "--output-root", str(tmp_path)])
    assert result.exit_code == 1 and "Error: unknown encoder 'gpu'" in result.stderr


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_smoke_shortens_each_config_s_own_schedule(name, encoder):
    """--smoke: a transformer config keeps its warm-up and decay, peaking at the smoke's rate at 10% of the
    smoke's steps and reaching 0 at its end (the tok2vec smoke's flat 0.01 made MiniLM predict nothing)."""
    import itertools

    from spacy.util import load_config, registry

    smoke = SMOKE[encoder][name]
    config = load_config(REPO / config_path(name, encoder), overrides=smoke_overrides(name, encoder, REPO / "configs"))
    assert config["training"]["max_steps"] == config["training"]["eval_frequency"] == smoke.steps
    rate = registry.resolve({"rate": config["training"]["optimizer"]["learn_rate"]})["rate"]
    if encoder == "cpu":
        assert rate == smoke.learn_rate
        return
    rates = list(itertools.islice(rate, smoke.steps + 1))
    assert max(rates) == pytest.approx(smoke.learn_rate) == rates[smoke.steps // 10]
    assert rates[0] < rates[smoke.steps // 10] and rates[smoke.steps] == 0


def test_smoke_and_extra_overrides_reach_the_training_from_the_command_line(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(workflow, "train_pipeline", lambda *args: seen.update(args[4]))
    args = ["train", "locate_label", "--encoder", "minilm", "--output-root", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--training.max_steps", "7", "--smoke"])  # project.yml's order
    assert result.exit_code == 0, result.output
    assert seen == {**smoke_overrides("locate_label", "minilm", REPO / "configs"), "training.max_steps": 7}


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    """A tiny locate_label pipeline where the workflow expects it, and a gold DocBin."""
    import spacy
    from spacy.tokens import DocBin

    from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_doc, make_examples, train

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
    args = ["benchmark", "locate_label", str(trained_root / "dev.spacy")]
    args += ["--output-root", str(trained_root / "training"), "--metrics-root", str(trained_root / "metrics")]
    args += ["--batch-size", "4", "--batches", "30", "--warmup", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = srsly.read_json(metrics)
    assert written["overall"] == {"f": 0.5} and written["benchmark"]["words_per_s"] > 0


def test_evaluate_and_visualize_pipeline_write_where_the_workflow_expects(trained_root, tmp_path):
    training, dev = str(trained_root / "training"), str(trained_root / "dev.spacy")
    args = ["evaluate", "locate_label", dev, "--output-root", training, "--metrics-root", str(tmp_path / "metrics")]
    result = CliRunner().invoke(app, args + ["--limit", "2"])
    assert result.exit_code == 0, result.output
    assert srsly.read_json(tmp_path / "metrics" / "cpu" / "locate_label.json")["n_docs"] == 2
    args = ["visualize", "locate_label", dev, "--output-root", training, "--reports-root", str(tmp_path / "reports")]
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
    args = ["visualize", "locate_label", str(trained_root / "dev.spacy"), "--output-root", str(tmp_path / "training")]
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


@pytest.mark.slow
def test_package_pipeline_builds_a_wheel(trained_root):
    packages = trained_root / "packages"
    args = ["package", "locate_label", "--output-root", str(trained_root / "training"), "--packages-root", str(packages)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list(packages.glob("cpu/en_nested_locate_label-0.1.0/dist/en_nested_locate_label-0.1.0-*.whl"))


def test_a_pipeline_that_was_not_trained_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["package", "spancat", "--output-root", str(tmp_path)])
    assert result.exit_code == 1 and "Error: spancat: no trained pipeline at " in result.stderr
    assert "run train-spancat first" in result.stderr


def test_tune_pipeline_sets_the_threshold_found_on_dev_and_later_steps_use_it(trained_root, tmp_path):
    import spacy

    training, dev = str(trained_root / "training"), str(trained_root / "dev.spacy")
    best = trained_root / "training" / "cpu" / "locate_label" / "model-best"
    args = ["tune", "locate_label", dev, "--output-root", training, "--n-trials", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    found = tune_threshold(best, "locate_label", trained_root / "dev.spacy", n_trials=5)
    assert found["threshold"] in (0.0, 0.25, 0.5, 0.75, 1.0) and found["configured"] == 0.45
    assert found["score"] == max(found["scores"].values())
    tuned = spacy.load(best.parent / TUNED)
    assert tuned.get_pipe("locate_label_ner").threshold == found["threshold"]
    assert spacy.load(best).get_pipe("locate_label_ner").threshold == 0.45  # model-best is left as trained
    assert f"threshold {found['threshold']:.2f} (configured 0.45)" in " ".join(result.output.split())
    args = ["evaluate", "locate_label", dev, "--output-root", training, "--metrics-root", str(tmp_path / "m")]
    assert CliRunner().invoke(app, args).exit_code == 0
    scored = srsly.read_json(tmp_path / "m" / "cpu" / "locate_label.json")["overall"]["f"]
    assert scored == pytest.approx(found["score"])  # evaluated with the tuned threshold


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_pipeline_has_the_threshold_it_tunes(name):
    import spacy

    config = spacy.util.load_config(config_path(name, "cpu", REPO / "configs"))
    assert "threshold" in config["components"][THRESHOLD_PIPES[name]]


# --- the ensemble step: build-ensemble, tune ensemble, the later steps ------------------
ENSEMBLE_DETECTORS = "locate_label boundary_offset proposer_regressor ensemble"
# updates and learn rate per member: enough for each to predict spans on the fixture (boundary_offset is slower)
MEMBER_TRAINING = {"locate_label": (12, 0.01), "boundary_offset": (20, 0.01), "proposer_regressor": (12, 0.01)}


def _member_spans(doc, key):
    group = doc.spans[key]
    return {(s.start, s.end, s.label_): round(float(x), 5) for s, x in zip(group, group.attrs["scores"])}


@pytest.fixture(scope="module")
def members_root(tmp_path_factory):
    """Tiny trained locate_label, boundary_offset and proposer_regressor pipelines (each with its own
    tok2vec) where the workflow expects them, and a gold DocBin."""
    import spacy
    from spacy.tokens import DocBin

    from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_doc, make_examples, train

    root = tmp_path_factory.mktemp("ensemble")
    for name, (n_iter, learn_rate) in MEMBER_TRAINING.items():
        nlp = build_nlp(THRESHOLD_PIPES[name])
        train(nlp, make_examples(nlp), n_iter, learn_rate=learn_rate)
        model = root / "training" / "cpu" / name / "model-best"
        model.parent.mkdir(parents=True)
        nlp.to_disk(model)
        (model.parent / TRAINED).write_text("{}\n")
    vocab = spacy.blank("en").vocab
    DocBin(docs=[make_doc(vocab, text, spans) for text, spans in SENTENCES]).to_disk(root / "dev.spacy")
    return root


@pytest.mark.slow
def test_build_ensemble_sources_the_trained_members_and_merges_their_spans(members_root):
    import spacy

    from tests.detectors.nested_fixture import SENTENCES

    training = members_root / "training"
    args = ["build-ensemble", "--encoder", "cpu", "--detectors", ENSEMBLE_DETECTORS, "--output-root", str(training)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model = training / "cpu" / "ensemble" / "model-best"
    assert (model.parent / TRAINED).exists()
    assert set(srsly.read_json(model.parent / TRAINED)["members"]) == set(ENSEMBLE_MEMBERS)
    nlp = spacy.load(model)
    assert nlp.pipe_names == ["tok2vec", "locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner", "nested_ensemble"]
    assert nlp.get_pipe("nested_ensemble").members == ["nested_ll", "nested_bo", "nested_pr"]
    texts = [text for text, _ in SENTENCES]
    docs = list(nlp.pipe(texts))
    for name, key in ENSEMBLE_MEMBERS.items():
        # each member predicts, inside the ensemble, exactly what its own pipeline predicts (its own encoder)
        alone = [_member_spans(doc, "nested") for doc in spacy.load(training / "cpu" / name / "model-best").pipe(texts)]
        assert sum(map(len, alone)) > 0, name
        assert [_member_spans(doc, key) for doc in docs] == alone, name
        assert THRESHOLD_PIPES[name] in nlp.pipe_names
    merged = [_member_spans(doc, "nested") for doc in docs]
    assert sum(map(len, merged)) > 0
    member_triples = [set().union(*(_member_spans(doc, key) for key in ENSEMBLE_MEMBERS.values())) for doc in docs]
    assert all(set(m) <= t for m, t in zip(merged, member_triples))  # the ensemble only keeps member spans


@pytest.mark.slow
def test_tune_and_evaluate_the_ensemble_where_the_report_reads_it(members_root, tmp_path):
    import spacy

    from spacy_nested.evaluation.report import evaluate

    training, dev = members_root / "training", str(members_root / "dev.spacy")
    common = ["--encoder", "cpu", "--detectors", ENSEMBLE_DETECTORS, "--output-root", str(training)]
    assert CliRunner().invoke(app, ["build-ensemble", *common, "--members", "locate_label proposer_regressor"]).exit_code == 0
    tuning = CliRunner().invoke(app, ["tune", "ensemble", dev, *common, "--n-trials", "5"])
    assert tuning.exit_code == 0, tuning.output
    tuned = training / "cpu" / "ensemble" / TUNED
    ensemble = spacy.load(tuned).get_pipe("nested_ensemble")
    assert ensemble.members == ["nested_ll", "nested_pr"] and ensemble.threshold in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert "saved to" in tuning.output and "member nested_pr" in tuning.output
    metrics = tmp_path / "metrics"
    result = CliRunner().invoke(app, ["evaluate", "ensemble", dev, *common, "--metrics-root", str(metrics)])
    assert result.exit_code == 0, result.output
    written = srsly.read_json(metrics / "cpu" / "ensemble.json")
    assert written["n_docs"] == 8 and written["overall"]["n_pred"] > 0
    # scored with model-tuned, picked over model-best, whose untuned setting scores lower on this dev set
    best_f = float(re.search(r"F (\d+\.\d\d) \(configured", " ".join(tuning.output.split())).group(1))
    assert 100 * written["overall"]["f"] == pytest.approx(best_f, abs=0.01)
    assert evaluate(tuned.parent / "model-best", dev)["overall"]["f"] < written["overall"]["f"]
    args = ["visualize", "ensemble", dev, *common, "--reports-root", str(tmp_path / "reports"), "--n-docs", "2"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert "doc 1: predicted" in (tmp_path / "reports" / "cpu" / "ensemble.html").read_text(encoding="utf8")
    # a new build drops the tuned ensemble of the members it replaces
    assert CliRunner().invoke(app, ["build-ensemble", *common]).exit_code == 0
    assert not tuned.exists()


def test_an_ensemble_member_that_was_not_trained_is_a_clear_error(members_root, tmp_path):
    import shutil

    shutil.copytree(members_root / "training" / "cpu" / "locate_label", tmp_path / "cpu" / "locate_label")
    args = ["build-ensemble", "--detectors", ENSEMBLE_DETECTORS, "--output-root", str(tmp_path)]
    result = CliRunner().invoke(app, args + ["--members", "locate_label proposer_regressor"])
    assert result.exit_code == 1
    err = " ".join(result.stderr.split())
    assert "ensemble members not trained: proposer_regressor: no trained pipeline at " in err
    assert "run train-proposer_regressor first" in err and "locate_label:" not in err
    assert not (tmp_path / "cpu" / "ensemble").exists()
    result = CliRunner().invoke(app, args + ["--members", "locate_label spancat"])
    assert result.exit_code == 1 and "unknown ensemble members ['spancat']" in result.stderr
    result = CliRunner().invoke(app, args + ["--members", "locate_label"])
    assert result.exit_code == 1 and "at least two different members" in result.stderr
    result = CliRunner().invoke(app, ["evaluate", "ensemble", str(members_root / "dev.spacy"), *args[1:]])
    assert result.exit_code == 1 and "run the ensemble step (build-ensemble) first" in result.stderr


def test_the_ensemble_is_skipped_unless_in_detectors_and_is_never_trained(tmp_path):

    assert ENSEMBLE not in CONFIGS and selected(ENSEMBLE, "locate_label ensemble")
    result = CliRunner().invoke(app, ["build-ensemble", "--output-root", str(tmp_path)])  # the default detectors
    assert result.exit_code == 0 and "ensemble: not in detectors, skipped" in result.output
    result = CliRunner().invoke(app, ["tune", "ensemble", __file__, "--output-root", str(tmp_path)])
    assert result.exit_code == 0 and "skipped" in result.output
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="'ensemble' has no config and is not trained"):
        config_path(ENSEMBLE, "cpu")
    result = CliRunner().invoke(app, ["train", "ensemble", "--detectors", "ensemble", "--output-root", str(tmp_path)])
    assert result.exit_code == 1 and "build it with build-ensemble" in result.stderr


def _transformer_member(factory: str, bert_dir: str, seed: int):
    """A detector listening to its own tiny BERT ("transformer", as the trf and minilm configs), updated
    10 times: both detectors then predict spans, and the two members' transformers differ."""
    import spacy
    from spacy.training import Example
    from thinc.api import Adam

    from tests.detectors.nested_fixture import HEAD_SIZES
    from tests.tiny_bert import add_tiny_transformer, make_nested_docs, train_step, transformer_listener

    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    add_tiny_transformer(nlp, bert_dir, window=16, stride=12)
    listener = transformer_listener()
    from spacy.language import Language

    model = {**Language.get_factory_meta(factory).default_config["model"], **HEAD_SIZES[factory], "tok2vec": listener}
    nlp.add_pipe(factory, config={"model": model, "threshold": 0.0})
    spacy.util.fix_random_seed(seed)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in make_nested_docs(nlp.vocab)]
    nlp.initialize(lambda: examples)
    optimizer = Adam(learn_rate=0.01)
    for _ in range(10):
        train_step(nlp, examples, optimizer)
    return nlp


@pytest.mark.slow
def test_build_ensemble_replaces_the_transformer_listeners_of_trf_members(tmp_path):
    import spacy

    from tests.tiny_bert import NESTED_SENTENCES, make_tiny_bert

    bert_dir = make_tiny_bert(tmp_path / "tiny_bert")
    members = ("locate_label", "proposer_regressor")
    for seed, name in enumerate(members):
        (tmp_path / "trf" / name).mkdir(parents=True)
        _transformer_member(THRESHOLD_PIPES[name], bert_dir, seed).to_disk(tmp_path / "trf" / name / "model-best")
    model = build_ensemble("trf", tmp_path, members)
    nlp = spacy.load(model)
    assert nlp.pipe_names == ["transformer", "locate_label_ner", "proposer_regressor_ner", "nested_ensemble"]
    texts = [" ".join(words) for words, _ in NESTED_SENTENCES]
    docs = list(nlp.pipe(texts))
    for name, key in (("locate_label", "nested_ll"), ("proposer_regressor", "nested_pr")):
        alone = [_member_spans(doc, "nested") for doc in spacy.load(tmp_path / "trf" / name / "model-best").pipe(texts)]
        assert sum(map(len, alone)) > 0, name
        assert [_member_spans(doc, key) for doc in docs] == alone, name
    assert sum(len(doc.spans["nested"]) for doc in docs) > 0


@pytest.mark.slow
def test_the_script_runs_from_the_project_folder_as_project_yml_calls_it(tmp_path):
    """`python scripts/workflow.py ...` as a process (no test's sys.path): it finds the library and its sibling scripts."""
    import subprocess

    args = ["train", "spancat", "--detectors", "locate_label", "--output-root", str(tmp_path)]
    result = subprocess.run([sys.executable, "scripts/workflow.py", *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "spancat: not in detectors, skipped" in result.stdout
