"""The shipped pipeline package ``pipelines/en_genia_nested_fast`` (scripts/ship_pipeline.py; project.yml's
``fast`` workflow: data, train-fast, tune-fast, ship-fast).

What a user relies on once it is installed (``spacy.load("en_genia_nested_fast")``) is checked when it
is installed; what the script builds is checked on the small trained stand-in
``tests/fixtures/saved/locate_label_ner``.
"""
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import spacy
import srsly
from spacy.language import Language
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # as `python scripts/ship_pipeline.py` finds its sibling scripts

import ship_pipeline  # noqa: E402
import workflow  # noqa: E402

PACKAGE = "en_genia_nested_fast"
VERSION = "0.1.0"
STAND_IN = REPO / "tests" / "fixtures" / "saved" / "locate_label_ner"
RESULTS = REPO / "bench" / "results" / "cpu" / "locate_label-seed0.json"  # a kept result
TYPES = {"DNA", "RNA", "protein", "cell_line", "cell_type"}
# GENIA-like running text: nested entities (a protein inside a DNA or RNA span) and cells
SENTENCES = [
    "IL-2 gene expression requires NF-kappa B activation in human T cells.",
    "The c-fos promoter binds AP-1 in Jurkat cells.",
    "GATA-1 mRNA was detected in erythroid progenitor cells.",
]
# The stand-in's tokenizer is spacy_nested.WhitespaceTokenizer.v1: its own fixture's text
STAND_IN_TEXTS = ["IL-2 gene expression requires NF-kappa B activation", "the c-fos promoter binds AP-1 in Jurkat cells"]
Prediction = List[Tuple[int, int, str, float]]


def _predict(nlp: Language, texts: List[str]) -> List[Prediction]:
    """Each text's spans in doc.spans["nested"]: character offsets, label and score."""
    out = []
    for doc in nlp.pipe(texts):
        group = doc.spans["nested"]
        out.append([(s.start_char, s.end_char, s.label_, float(c)) for s, c in zip(group, group.attrs["scores"])])
    return out


def _nested_pairs(doc) -> List[Tuple[str, str]]:
    """(inner label, outer label) of each span strictly inside another of doc.spans["nested"]."""
    spans = list(doc.spans["nested"])
    return [
        (inner.label_, outer.label_)
        for inner in spans
        for outer in spans
        if outer.start <= inner.start and inner.end <= outer.end and (inner.start, inner.end) != (outer.start, outer.end)
    ]


def test_installed_package_finds_nested_entities():
    """What a user relies on: spacy.load by name, scored spans under doc.spans["nested"], entities inside
    entities. The README's install lines (and .ci/run) install it; skipped where it is not installed."""
    if importlib.util.find_spec(PACKAGE) is None:
        pytest.skip(f"{PACKAGE} is not installed (pip install pipelines/{PACKAGE})")
    nlp = spacy.load(PACKAGE)
    assert nlp.meta["license"] == ship_pipeline.LICENSE
    docs = list(nlp.pipe(SENTENCES))
    for doc in docs:
        group = doc.spans["nested"]
        assert len(group) > 0, doc.text
        assert len(group.attrs["scores"]) == len(group)
        assert all(0.0 <= score <= 1.0 for score in group.attrs["scores"])
        assert {span.label_ for span in group} <= TYPES
    assert any(_nested_pairs(doc) for doc in docs)
    # in the first sentence a protein (IL-2) inside a DNA span (IL-2 gene), and a cell_type (human T cells)
    first = docs[0]
    assert ("protein", "DNA") in _nested_pairs(first), [(s.text, s.label_) for s in first.spans["nested"]]
    assert "cell_type" in {span.label_ for span in first.spans["nested"]}


def _ship(tmp_path: Path, results: Path = RESULTS) -> Tuple[Path, Path]:
    """The stand-in shipped into tmp_path/pipelines with a licence text of its own; (package folder, licence)."""
    licence = tmp_path / "LICENSE-GENIA.txt"
    licence.write_text("GENIA Project License for Annotated Corpora\n\n(the text)\n", encoding="utf8")
    args = [str(STAND_IN), "--name", "genia_nested_fast", "--version", VERSION, "--output", str(tmp_path / "pipelines")]
    args += ["--results", str(results), "--speed", "1,234 words/s on one CPU core", "--genia-license", str(licence)]
    result = CliRunner().invoke(ship_pipeline.app, args)
    assert result.exit_code == 0, result.output
    return tmp_path / "pipelines" / PACKAGE, licence


@pytest.mark.slow
def test_ship_builds_spacy_package_folder_with_meta_licence_and_card(tmp_path):
    folder, licence = _ship(tmp_path)
    data = folder / PACKAGE / f"{PACKAGE}-{VERSION}"  # what pip installs: spaCy's package layout
    files = {"setup.py", "MANIFEST.in", "meta.json", "README.md", "LICENSE-GENIA.txt", PACKAGE}
    assert {p.name for p in folder.iterdir()} == files
    assert [p.name for p in (tmp_path / "pipelines").iterdir()] == [PACKAGE]  # no version in the name, nothing left over
    for copy in (folder / "LICENSE-GENIA.txt", data / "LICENSE-GENIA.txt"):
        assert copy.read_bytes() == licence.read_bytes()
    assert "include LICENSE-GENIA.txt" in (folder / "MANIFEST.in").read_text(encoding="utf8").splitlines()
    meta = srsly.read_json(folder / "meta.json")
    assert srsly.read_json(data / "meta.json") == meta == srsly.read_json(folder / PACKAGE / "meta.json")
    assert (meta["lang"], meta["name"], meta["version"]) == ("en", "genia_nested_fast", VERSION)
    assert meta["license"] == "GENIA Project License for Annotated Corpora (training data)"
    (source,) = meta["sources"]
    assert source["url"] == "http://www.geniaproject.org/" and source["license"] == "GENIA Project License for Annotated Corpora"
    assert "GENIA 3.02" in source["name"] and "LICENSE-GENIA.txt" in source["note"]
    kept = srsly.read_json(RESULTS)
    perf = meta["performance"]
    assert [perf[f"spans_nested_{k}"] for k in "prf"] == pytest.approx([kept["overall"][k] for k in "prf"])
    assert set(perf["spans_nested_per_type"]) == TYPES
    assert perf["spans_nested_per_type"]["DNA"]["f"] == pytest.approx(kept["per_type"]["DNA"]["f"])
    assert any(r.startswith("spacy-nested>=") for r in meta["requirements"])
    assert sum(r.startswith("spacy>=") for r in meta["requirements"]) == 1
    card = (folder / "README.md").read_text(encoding="utf8")
    assert card == (data / "README.md").read_text(encoding="utf8")
    for said in ("GENIA 3.02", "15,038 sentences", "DNA, RNA, protein, cell_line, cell_type", "| all | 74.83 | 74.18 | 74.51 |",
                 "1,234 words/s on one CPU core", "Biomedical abstracts only", "English", "spacy_nested.WhitespaceTokenizer.v1",
                 "single sentences", 'doc.spans["nested"].attrs["scores"]', "Not for clinical use", "LICENSE-GENIA.txt"):
        assert said in card, said
    # no file of the machine that built it: the config's training paths are null
    config = spacy.util.load_config(data / "config.cfg", interpolate=False)
    assert all(value is None for value in config["paths"].values())
    assert ship_pipeline.absolute_paths(folder, [str(REPO), str(Path.home()), str(tmp_path)]) == []
    # the data folder loads, and predicts what the shipped pipeline predicted
    expected = _predict(spacy.load(STAND_IN), STAND_IN_TEXTS)
    assert expected and all(expected)
    assert _predict(spacy.load(data), STAND_IN_TEXTS) == expected


@pytest.mark.slow
def test_ship_replaces_a_package_all_at_once_or_not_at_all(tmp_path, monkeypatch):
    folder, _ = _ship(tmp_path)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    monkeypatch.setattr(ship_pipeline, "absolute_paths", lambda *args: ["config.cfg: /home/someone"])
    result = CliRunner().invoke(ship_pipeline.app, [str(STAND_IN), "--output", str(tmp_path / "pipelines"),
                                                    "--genia-license", str(tmp_path / "LICENSE-GENIA.txt")])  # fmt: skip
    assert result.exit_code == 1 and "would name files of this machine: config.cfg: /home/someone" in result.output
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert [p.name for p in (tmp_path / "pipelines").iterdir()] == [PACKAGE]
    result = CliRunner().invoke(ship_pipeline.app, [str(STAND_IN), "--output", str(tmp_path / "x"),
                                                    "--genia-license", str(tmp_path / "none.txt")])  # fmt: skip
    assert result.exit_code == 1 and "none.txt: the GENIA licence text is not there" in result.output


@pytest.mark.slow
def test_shipped_folder_installs_and_annotates_by_name(tmp_path):
    """pip installs the folder (into a throwaway --target) and, by its name, spacy.load and
    `python -m spacy_nested annotate` give the shipped pipeline's predictions."""
    folder, licence = _ship(tmp_path)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    result = subprocess.run([*pip, "--target", str(target), str(folder)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = target / PACKAGE / f"{PACKAGE}-{VERSION}"
    assert (installed / "LICENSE-GENIA.txt").read_bytes() == licence.read_bytes()
    assert srsly.read_json(installed / "meta.json")["license"] == ship_pipeline.LICENSE
    (tmp_path / "in.txt").write_text("\n".join(STAND_IN_TEXTS) + "\n", encoding="utf8")
    env: Dict[str, str] = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "spacy_nested", "annotate", PACKAGE, str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf8").splitlines()]
    annotated = [sorted((s["start"], s["end"], s["label"], s["score"]) for s in r["spans"]) for r in records]
    predicted = _predict(spacy.load(STAND_IN), STAND_IN_TEXTS)
    expected = [sorted((s, e, label, round(score, 6)) for s, e, label, score in p) for p in predicted]
    assert [[row[:3] for row in doc] for doc in annotated] == [[row[:3] for row in doc] for doc in expected]
    scores = [row[3] for doc in annotated for row in doc]
    assert scores == pytest.approx([row[3] for doc in expected for row in doc], abs=1e-5)


def test_fast_workflow_trains_tunes_and_ships_one_model(tmp_path, monkeypatch):
    """project.yml's `fast`: train-fast's overrides reach the training and the config, tune-fast tunes
    what it trained, and ship-fast ships that model-tuned with the scores its evaluate step writes."""
    from weasel.util import load_project_config

    project = load_project_config(REPO)
    assert project["workflows"]["fast"] == ["data", "train-fast", "tune-fast", "ship-fast"]
    commands = {command["name"]: command for command in project["commands"]}
    trained: Dict[str, object] = {}

    def train(name: str, encoder: str, output_root: Path, gpu_id: int = -1, overrides: object = None) -> Path:
        trained.update(output=output_root / encoder / name, overrides=overrides)
        return output_root / encoder / name

    monkeypatch.setattr(workflow, "train_pipeline", train)
    monkeypatch.chdir(tmp_path)
    (train_line,) = commands["train-fast"]["script"]
    argv = shlex.split(train_line)
    assert argv[:4] == ["python", "scripts/workflow.py", "train", "locate_label"]
    result = CliRunner().invoke(workflow.app, argv[2:])
    assert result.exit_code == 0, result.output
    overrides = trained["overrides"]
    assert isinstance(overrides, dict)
    fast = {"components.locate_label_ner.model.hidden_width": 128, "components.locate_label_ner.seed_widths.max_width": 5}
    assert fast.items() <= overrides.items()
    config = spacy.util.load_config(REPO / workflow.config_path("locate_label", "cpu"), overrides=fast)
    assert config["components"]["locate_label_ner"]["model"]["hidden_width"] == 128
    assert config["components"]["locate_label_ner"]["seed_widths"]["max_width"] == 5
    model = Path(str(trained["output"]))
    assert model == Path("training/genia/fast/cpu/locate_label")
    (tune_line,) = commands["tune-fast"]["script"]
    tune = shlex.split(tune_line)
    assert tune[2:4] == ["tune", "locate_label"] and tune[tune.index("--output-root") + 1] == "training/genia/fast"
    assert tune[tune.index("--encoder") + 1] == "cpu"
    evaluate, benchmark, ship = (shlex.split(line) for line in commands["ship-fast"]["script"])
    assert evaluate[2:4] == ["evaluate", "locate_label"] and benchmark[2:4] == ["benchmark", "locate_label"]
    assert evaluate[evaluate.index("--output-root") + 1] == "training/genia/fast"
    metrics = Path(evaluate[evaluate.index("--metrics-root") + 1]) / "cpu" / "locate_label.json"
    assert benchmark[benchmark.index("--metrics-root") + 1] == evaluate[evaluate.index("--metrics-root") + 1]
    assert ship[:3] == ["python", "scripts/ship_pipeline.py", str(model / "model-tuned")]
    assert Path(ship[ship.index("--results") + 1]) == metrics
    assert (ship[ship.index("--name") + 1], ship[ship.index("--output") + 1]) == ("genia_nested_fast", "pipelines")
