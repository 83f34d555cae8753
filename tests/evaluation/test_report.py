"""Tests for spacy_nested.evaluation.report: evaluate, render_report and the two commands."""
import json
import sys

import pytest
import spacy
import srsly
from spacy.language import Language
from spacy.tokens import DocBin, Span
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.evaluation.report import PLOT_NAME, benchmark_speed, evaluate, render_markdown, render_report
from spacy_nested.evaluation.scoring import DEPTH_BUCKETS, LENGTH_BUCKETS
from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_doc, make_examples, train

GOLD = dict(SENTENCES)
runner = CliRunner()


@Language.component("test_report_copy_gold")
def copy_gold(doc):
    """A perfect predictor, writing to "nested"."""
    doc.spans["nested"] = [Span(doc, s, e, label=label) for s, e, label in GOLD[doc.text]]
    return doc


@Language.component("test_report_no_single_tokens")
def no_single_tokens(doc):
    """The gold spans except those of one token, written to "sc" (like a spancat baseline)."""
    doc.spans["sc"] = [Span(doc, s, e, label=label) for s, e, label in GOLD[doc.text] if e - s > 1]
    return doc


def _nlp(component: str) -> Language:
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    nlp.add_pipe(component)
    return nlp


@pytest.fixture(scope="module")
def dev_path(tmp_path_factory):
    vocab = spacy.blank("en").vocab
    path = tmp_path_factory.mktemp("corpus") / "dev.spacy"
    DocBin(docs=[make_doc(vocab, text, spans) for text, spans in SENTENCES]).to_disk(path)
    return path


@pytest.fixture(scope="module")
def metrics(dev_path):
    return {
        "perfect": evaluate(_nlp("test_report_copy_gold"), dev_path),
        "no_single": evaluate(_nlp("test_report_no_single_tokens"), dev_path, pred_key="sc"),
    }


def test_perfect_predictor_scores_one_wherever_there_is_gold(metrics):
    m = metrics["perfect"]
    n_gold = sum(len(spans) for _, spans in SENTENCES)
    assert m["overall"] == {"p": 1.0, "r": 1.0, "f": 1.0, "n_gold": n_gold, "n_pred": n_gold}
    assert list(m["per_length"]) == list(LENGTH_BUCKETS) and list(m["per_depth"]) == list(DEPTH_BUCKETS)
    for group in ("per_type", "per_length", "per_depth"):
        for score in m[group].values():
            assert score["f"] == (1.0 if score["n_gold"] else 0.0)
    assert m["per_length"][">=10"]["n_gold"] == 1 and m["per_length"]["5-9"]["n_gold"] == 0
    assert m["per_depth"]["2"]["n_gold"] == 6 and m["per_depth"][">=3"]["n_gold"] == 0
    assert sorted(m["per_type"]) == sorted({label for _, spans in SENTENCES for *_, label in spans})
    assert m["n_docs"] == len(SENTENCES)
    assert m["n_words"] == sum(len(text.split(" ")) for text, _ in SENTENCES)
    assert m["words_per_s"] > 0 and m["peak_rss_mb"] > 10
    assert json.loads(json.dumps(m)) == m


def test_dropping_single_tokens_loses_bucket_one(metrics):
    m = metrics["no_single"]
    assert m["pred_key"] == "sc" and m["spans_key"] == "nested"
    assert m["per_length"]["1"]["r"] == 0.0 and m["per_length"]["1"]["n_pred"] == 0
    for bucket in ("2", "3", "4", ">=10"):
        assert m["per_length"][bucket]["f"] == 1.0
    assert m["overall"]["p"] == 1.0 and m["overall"]["r"] < 1.0


def test_gold_is_not_read_from_the_predictions(dev_path):
    m = evaluate(_nlp("test_report_no_single_tokens"), dev_path)  # writes "sc", scored on "nested"
    assert m["overall"]["n_pred"] == 0 and m["overall"]["r"] == 0.0


def test_the_pipeline_runs_on_the_gold_tokens_whatever_its_tokenizer(dev_path):
    nlp = spacy.blank("en")  # its rule-based tokenizer would split "NF-kappa": span indices would not compare
    nlp.add_pipe("test_report_copy_gold")
    m = evaluate(nlp, dev_path)
    assert m["overall"]["f"] == 1.0 and m["overall"]["n_pred"] == m["overall"]["n_gold"] > 0


def test_render_report(metrics, tmp_path):
    pytest.importorskip("matplotlib")
    paths = render_report(metrics, tmp_path / "report")
    assert [p.name for p in paths] == ["report.md", "report.json", PLOT_NAME]
    md = paths[0].read_text(encoding="utf8")
    assert md.count("\n| perfect | 100.00 | 100.00 | 100.00 |") == 1
    assert md.count("\n| no_single |") == 3  # overall, per type, per depth
    assert "| 0.0 |" in md  # F1 of length 1 for no_single
    assert json.loads(paths[1].read_text(encoding="utf8")) == metrics  # no baseline among them: nothing added
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_compares_each_pipeline_with_the_best_baseline(metrics, tmp_path):
    """The best of spaCy's baselines present (here a "spancat" that misses single tokens) is the
    reference; the ΔF1 column gives each other pipeline's difference and its bootstrap interval."""
    named = {"locate_label": metrics["perfect"], "spancat": metrics["no_single"]}
    paths = render_report(named, tmp_path)
    report = json.loads(paths[1].read_text(encoding="utf8"))
    versus = report["locate_label"]["vs_baseline"]
    f1 = {name: 100 * m["overall"]["f"] for name, m in named.items()}
    assert versus["baseline"] == "spancat" and "vs_baseline" not in report["spancat"]
    assert versus["delta"] == pytest.approx(f1["locate_label"] - f1["spancat"]) and versus["delta"] > 0
    low, high = versus["ci95"]
    assert low <= versus["delta"] <= high
    md = paths[0].read_text(encoding="utf8")
    assert "ΔF1 vs spancat (95% CI)" in md
    assert f"| {versus['delta']:+.2f} ({low:+.2f} to {high:+.2f}) |" in md


def test_evaluate_gives_the_counts_of_every_doc(metrics):
    per_doc, overall = metrics["no_single"]["per_doc"], metrics["no_single"]["overall"]
    assert len(per_doc["tp"]) == metrics["no_single"]["n_docs"]
    assert sum(per_doc["n_gold"]) == overall["n_gold"] and sum(per_doc["n_pred"]) == overall["n_pred"]
    assert sum(per_doc["tp"]) == round(overall["p"] * overall["n_pred"])


def test_render_report_without_matplotlib(metrics, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    for name in [m for m in sys.modules if m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    paths = render_report(metrics, tmp_path)
    assert [p.name for p in paths] == ["report.md", "report.json"]
    assert not (tmp_path / PLOT_NAME).exists()
    assert "pip install spacy-nested[plot]" in " ".join(capsys.readouterr().out.split())


def test_markdown_tolerates_missing_groups():
    md = render_markdown({"old": {"overall": {"p": 0.5, "r": 0.5, "f": 0.5, "n_gold": 2, "n_pred": 2}}})
    assert "| old | 50.00 | 50.00 | 50.00 | – |" in md


def test_commands(dev_path, tmp_path):
    for name, component in (("perfect", "test_report_copy_gold"), ("no_single", "test_report_no_single_tokens")):
        _nlp(component).to_disk(tmp_path / name)
    output = tmp_path / "metrics" / "perfect.json"
    result = runner.invoke(app, ["evaluate", str(tmp_path / "perfect"), str(dev_path), "--output", str(output)])
    assert result.exit_code == 0, result.output
    args = ["evaluate", str(tmp_path / "no_single"), str(dev_path), "-o", str(tmp_path / "metrics" / "no_single.json")]
    result = runner.invoke(app, args + ["--spans-key", "nested", "--pred-key", "sc", "--gpu-id", "-1"])
    assert result.exit_code == 0, result.output
    assert srsly.read_json(tmp_path / "metrics" / "no_single.json")["per_length"]["1"]["r"] == 0.0
    files = [str(tmp_path / "metrics" / f"{name}.json") for name in ("perfect", "no_single")]
    result = runner.invoke(app, ["report", *files, "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "out" / "report.json")
    assert list(report) == ["perfect", "no_single"] and report["perfect"]["overall"]["f"] == 1.0
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf8")
    assert "| perfect |" in md and "| no_single |" in md
    result = runner.invoke(app, ["report", files[0], files[0], "--output-dir", str(tmp_path / "out")])
    assert result.exit_code != 0


def test_evaluate_a_trained_detector(dev_path):
    nlp = build_nlp("locate_label_ner")
    train(nlp, make_examples(nlp), n_iter=2)
    m = evaluate(nlp, dev_path, batch_size=4)
    assert set(m["overall"]) == {"p", "r", "f", "n_gold", "n_pred"}
    assert m["overall"]["n_pred"] == sum(s["n_pred"] for s in m["per_length"].values())
    assert m["overall"]["n_gold"] == sum(s["n_gold"] for s in m["per_depth"].values())
    assert json.loads(json.dumps(m)) == m


def test_evaluate_a_spancat_baseline_writing_another_key(dev_path):
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    nlp.add_pipe("spancat", config={"spans_key": "sc"})
    train(nlp, make_examples(nlp, key="sc"), n_iter=2)
    m = evaluate(nlp, dev_path, pred_key="sc")
    assert m["pred_key"] == "sc" and m["overall"]["n_gold"] == sum(len(spans) for _, spans in SENTENCES)
    assert m["overall"]["n_pred"] == sum(s["n_pred"] for s in m["per_type"].values())


def test_benchmark_speed_gives_a_mean_inside_its_interval(dev_path):
    result = benchmark_speed(_nlp("test_report_copy_gold"), dev_path, batch_size=4, n_batches=30, warmup_epochs=0)
    low, high = result["ci95"]
    assert 0 < low <= result["words_per_s"] <= high
    assert (result["batch_size"], result["n_batches"]) == (4, 30)


def test_markdown_shows_the_benchmark_when_there_is_one():
    overall = {"p": 0.5, "r": 0.5, "f": 0.5, "n_gold": 2, "n_pred": 2}
    benchmark = {"words_per_s": 1234.4, "ci95": [1100.2, 1300.9]}
    md = render_markdown({"a": {"overall": overall, "benchmark": benchmark}, "b": {"overall": overall}})
    assert "| 1,234 (1,100–1,301) |" in md
    assert next(line for line in md.splitlines() if line.startswith("| b |")).endswith("| – |")  # b: no benchmark


def test_per_depth_table_says_what_each_column_counts():
    """R per gold depth and P per predicted depth are different spans: every header says which."""
    score = {"p": 0.5, "r": 0.25, "f": 1 / 3, "n_gold": 4, "n_pred": 2}
    per_depth = {b: score for b in DEPTH_BUCKETS}
    md = render_markdown({"a": {"overall": score, "per_depth": per_depth}})
    section = md[md.index("## Per nesting depth"):]
    assert section.startswith("## Per nesting depth: recall by gold depth, precision by predicted depth")
    header = next(line for line in section.splitlines() if line.startswith("| pipeline"))
    for b in DEPTH_BUCKETS:
        assert f"| R: gold at depth {b} (n=4) | P: predicted at depth {b} | F1 of these R, P (depth {b}) |" in header
    row = next(line for line in section.splitlines() if line.startswith("| a |"))
    assert row == "| a |" + " 25.0 | 50.0 | 33.3 |" * len(DEPTH_BUCKETS)
    assert "R the gold spans at that depth among the gold spans" in section
    assert "P the predicted spans at that depth among the predictions" in section
