"""The `smoke` workflow of project.yml, run end to end (explosion/projects style), and the main job's data step.

project.yml's steps run the library's commands and the project's scripts (scripts/ beside it), so a
copy of the project for a run holds project.yml, configs/ and scripts/.
"""
import json
import shutil
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner
from weasel.cli.run import project_run

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # as `python scripts/workflow.py` finds its sibling scripts

import prepare_data  # noqa: E402
import workflow  # noqa: E402
from workflow import CONFIGS  # noqa: E402


@pytest.mark.slow
def test_smoke_workflow_reports_every_pipeline(shared_data, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    project = srsly.read_yaml(REPO / "project.yml")
    project["vars"]["train_path"] = str(shared_data / "genia" / "train.jsonl")
    project["vars"]["dev_path"] = str(shared_data / "genia" / "dev.jsonl")
    srsly.write_yaml(root / "project.yml", project)
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copytree(REPO / "scripts", root / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    project_run(root, "smoke", capture=True)
    reports = root / "reports" / "genia" / "smoke" / "cpu"
    report = srsly.read_json(reports / "report.json")
    assert set(report) == set(CONFIGS)  # the three detectors and both spaCy baselines
    for name, metrics in report.items():
        assert metrics["overall"]["f"] > 0, name
        assert set(metrics["per_type"]) <= {"DNA", "RNA", "protein", "cell_line", "cell_type"}
    table = (reports / "report.md").read_text(encoding="utf8")
    assert all(f"| {name} |" in table for name in CONFIGS)
    for name in CONFIGS:
        page = (reports / f"{name}.html").read_text(encoding="utf8")
        assert "doc 4: predicted" in page


def test_all_workflow_trains_evaluates_and_reports_every_pipeline(tmp_path, monkeypatch):
    """The `all` workflow's train, evaluate and report steps, as project.yml writes them (its vars filled
    in), run through the scripts' command lines with the training and the scoring stubbed out: every
    pipeline is trained, the model it trained is the one evaluated, and its metrics are written where
    the report step reads them, in that order."""
    import shlex

    from weasel.util import load_project_config

    import spacy_nested.evaluation.report

    project = load_project_config(REPO)
    steps = project["workflows"]["all"]
    commands = {command["name"]: command for command in project["commands"]}
    trained: dict = {}
    written: dict = {}

    def train(name: str, encoder: str, output_root: Path, *args: object) -> Path:
        trained[name] = output_root / encoder / name / "model-best"
        trained[name].mkdir(parents=True)
        return trained[name].parent

    monkeypatch.setattr(workflow, "train_pipeline", train)
    monkeypatch.setattr(spacy_nested.evaluation.report, "evaluate", lambda model, docbin, **kwargs: {"model": model})
    monkeypatch.setattr(
        spacy_nested.evaluation.report, "write_metrics", lambda metrics, path: written.update({metrics["model"]: path})
    )
    monkeypatch.chdir(tmp_path)  # project.yml's paths are relative to the project's folder
    (tmp_path / "corpus" / "genia").mkdir(parents=True)
    (tmp_path / "corpus" / "genia" / "dev.spacy").touch()

    def run_step(step: str) -> None:
        for line in commands[step]["script"]:
            argv = shlex.split(line)
            assert argv[:2] == ["python", "scripts/workflow.py"], line
            result = CliRunner().invoke(workflow.app, argv[2:])
            assert result.exit_code == 0, (line, result.output)

    for name in CONFIGS:
        assert steps.index(f"train-{name}") < steps.index(f"evaluate-{name}") < steps.index("report")
        run_step(f"train-{name}")
        run_step(f"evaluate-{name}")
    assert set(trained) == set(CONFIGS)
    assert set(written) == set(trained.values())  # each evaluated model is the one its training wrote
    (report_line,) = commands["report"]["script"]
    report_argv = shlex.split(report_line)
    assert report_argv[:4] == ["python", "-m", "spacy_nested", "report"]
    assert {path.parent for path in written.values()} == {Path(report_argv[4])}  # the folder the report reads
    assert sorted(path.name for path in written.values()) == sorted(f"{name}.json" for name in CONFIGS)


CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
visits VBZ I-VP O
Brussels NNP I-NP I-LOC
"""

CONLL_VARS = {
    "vars.dataset": "conll",
    "vars.data_format": "conll",
    "vars.split_tokens": "",  # on the command line: --vars.split_tokens=
}


@pytest.mark.slow
def test_conll_vars_convert_flat_ner_into_its_own_folders(tmp_path):
    """Flat NER: the same workflow, other vars (README: CoNLL-2003)."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "project.yml", root / "project.yml")
    for split in ("train", "dev"):
        (tmp_path / f"{split}.txt").write_text(CONLL, encoding="utf8")
    overrides = {**CONLL_VARS, "vars.train_path": str(tmp_path / "train.txt"), "vars.dev_path": str(tmp_path / "dev.txt")}
    project_run(root, "convert", overrides=overrides, capture=True)
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(root / "corpus" / "conll" / "dev.spacy").get_docs(nlp.vocab))
    spans = [(sp.text, sp.label_) for doc in docs for sp in doc.spans["nested"]]
    assert spans == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER"), ("Brussels", "LOC")]


@pytest.mark.slow
def test_debug_data_shows_the_span_statistics(tmp_path):
    """spaCy's debug data reports spans only for a spancat config: the command runs it with one."""
    import subprocess
    import sys

    from tests.detectors.nested_fixture import SENTENCES, make_doc

    root = tmp_path / "project"
    (root / "corpus" / "genia").mkdir(parents=True)
    shutil.copy(REPO / "project.yml", root / "project.yml")
    shutil.copytree(REPO / "configs", root / "configs")
    vocab = spacy.blank("en").vocab
    for split in ("train", "dev"):
        docs = [make_doc(vocab, text, spans) for text, spans in SENTENCES]
        DocBin(docs=docs).to_disk(root / "corpus" / "genia" / f"{split}.spacy")
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "debug-data"], cwd=root, capture_output=True, text=True
    )
    out = result.stdout + result.stderr
    assert "Span Categorization" in out, out
    assert "Span characteristics for spans_key 'nested'" in out  # lengths and distinctiveness per label


@pytest.mark.slow
def test_genia_xml_assets_convert_into_the_splits(shared_data, tmp_path):
    """all-from-xml's first step on assets built from the real raw sample (offline stand-ins
    for the downloads): the archive is unpacked and split by the document lists."""
    import re
    import tarfile

    from spacy_nested.corpora.formats import read_genia_xml

    sample = shared_data / "genia" / "raw-sample" / "GENIAcorpus3.02-sample.xml"
    root = tmp_path / "project"
    (root / "assets" / "genia_splits").mkdir(parents=True)
    shutil.copy(REPO / "project.yml", root / "project.yml")
    with tarfile.open(root / "assets" / "GENIAcorpus3.02.tgz", "w:gz") as archive:
        archive.add(sample, arcname="GENIA_term_3.02/GENIAcorpus3.02.xml")
    ids = list(dict.fromkeys(re.findall(r"MEDLINE:\d+", sample.read_text(encoding="utf8"))))
    (root / "assets" / "genia_splits" / "train.txt").write_text("\n".join(ids[:50]) + "\n")
    (root / "assets" / "genia_splits" / "dev.txt").write_text("\n".join(ids[50:]) + "\n")
    project = srsly.read_yaml(root / "project.yml")
    assert {asset["dest"]: len(asset["checksum"]) for asset in project["assets"]} == {
        "assets/GENIAcorpus3.02.tgz": 32, "assets/genia_splits/train.txt": 32, "assets/genia_splits/dev.txt": 32,
        "assets/genia/dev.jsonl": 32}
    project_run(root, "convert-genia-xml", overrides={"vars.dataset": "genia_xml"}, capture=True)
    expected = list(read_genia_xml(sample))
    nlp = spacy.blank("en")
    n_docs = {split: len(DocBin().from_disk(root / "corpus" / "genia_xml" / f"{split}.spacy")) for split in ("train", "dev")}
    by_split = {"train": set(ids[:50]), "dev": set(ids[50:])}
    assert n_docs == {split: sum(s.doc_id in by_split[split] for s in expected) for split in ("train", "dev")}
    dev = list(DocBin().from_disk(root / "corpus" / "genia_xml" / "dev.spacy").get_docs(nlp.vocab))
    dev_sentences = [s for s in expected if s.doc_id in by_split["dev"]]
    assert [[t.text for t in doc] for doc in dev] == [list(s.tokens) for s in dev_sentences]


def _offline_project(root: Path, assets: dict = None) -> Path:
    """A copy of project.yml whose asset URLs are `assets` (dest -> (url, md5)), by default a
    file:// URL that exists nowhere: the download fails at once, with or without internet."""
    import hashlib

    root.mkdir(parents=True, exist_ok=True)
    project = srsly.read_yaml(REPO / "project.yml")
    for asset in project["assets"]:
        missing = ((root / "nowhere" / Path(asset["dest"]).name).as_uri(), asset["checksum"])
        url, checksum = (assets or {}).get(asset["dest"], missing)
        if checksum is None:  # the MD5 of the file at url
            checksum = hashlib.md5(Path(url[len("file://"):]).read_bytes()).hexdigest()
        asset["url"], asset["checksum"] = url, checksum
    srsly.write_yaml(root / "project.yml", project)
    shutil.copytree(REPO / "scripts", root / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _local_genia(folder: Path) -> dict:
    """Small train and dev jsonlines in yhcc's format, and the vars that name them."""
    from tests.detectors.nested_fixture import SENTENCES

    folder.mkdir(parents=True, exist_ok=True)
    for split, sentences in (("train", SENTENCES[:6]), ("dev", SENTENCES[6:])):
        lines = []
        for i, (text, spans) in enumerate(sentences):
            tokens = text.split(" ")
            mentions = [{"start": s, "end": e, "entity_type": label, "text": " ".join(tokens[s:e])} for s, e, label in spans]
            lines.append(json.dumps({"tokens": tokens, "entity_mentions": mentions, "doc_id": "D", "sent_id": f"D-{i}"}))
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf8")
    return {"vars.train_path": str(folder / "train.jsonl"), "vars.dev_path": str(folder / "dev.jsonl")}


def _n_docs(path: Path) -> int:
    return len(DocBin().from_disk(path))


def test_main_job_starts_with_the_data_step():
    """`spacy project run all`, the README's main command, gets its data through `data`; smoke reads the vars."""
    project = srsly.read_yaml(REPO / "project.yml")
    assert project["workflows"]["all"][0] == "data"
    assert project["workflows"]["smoke"][0] == "convert"
    assert project["vars"]["data_source"] == "auto"
    assert project["vars"]["train_path"] == "../shared/data/genia/train.jsonl"
    readme = (REPO / "README.md").read_text(encoding="utf8")
    assert "python -m spacy project run all\n" in readme


@pytest.mark.slow
def test_main_job_data_offline_falls_back_to_the_local_files_and_says_so(tmp_path):
    """No internet (as on this project's machines): the `data` step reads vars.train_path/dev_path."""
    import subprocess
    import sys

    root = _offline_project(tmp_path / "project")
    overrides = _local_genia(tmp_path / "local")
    args = [f"--{key}={value}" for key, value in overrides.items()]
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "data", ".", *args], cwd=root, capture_output=True, text=True
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, out
    assert "Falling back to the local files" in out
    assert f"Data: the local files {overrides['vars.train_path']} and {overrides['vars.dev_path']}" in out
    assert "the project's assets could not be fetched: GENIAcorpus3.02.tgz: cannot download" in out
    corpus = root / "corpus" / "genia"
    assert (_n_docs(corpus / "train.spacy"), _n_docs(corpus / "dev.spacy")) == (6, 2)
    record = srsly.read_json(corpus / "data.json")
    local = (overrides["vars.train_path"], overrides["vars.dev_path"])
    assert (record["source"], record["train"], record["dev"]) == ("local", *local)
    assert not list((root / "assets").rglob("*.tmp"))  # no half-downloaded file left behind


def _fake_genia_assets(shared_data: Path, folder: Path) -> Tuple[dict, List[str]]:
    """Stand-ins for the three assets of the data step, built from the real raw sample and dev file."""
    import re
    import tarfile

    sample = shared_data / "genia" / "raw-sample" / "GENIAcorpus3.02-sample.xml"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "GENIAcorpus3.02.tgz", "w:gz") as archive:
        archive.add(sample, arcname="GENIA_term_3.02/GENIAcorpus3.02.xml")
    ids = list(dict.fromkeys(re.findall(r"MEDLINE:\d+", sample.read_text(encoding="utf8"))))[:3]
    (folder / "train.txt").write_text("\n".join(ids) + "\n", encoding="utf8")
    dev_lines = (shared_data / "genia" / "dev.jsonl").read_text(encoding="utf8").splitlines()[:5]
    (folder / "dev.jsonl").write_text("\n".join(dev_lines) + "\n", encoding="utf8")
    names = {"assets/GENIAcorpus3.02.tgz": "GENIAcorpus3.02.tgz", "assets/genia_splits/train.txt": "train.txt",
             "assets/genia/dev.jsonl": "dev.jsonl"}
    return {dest: ((folder / name).as_uri(), None) for dest, name in names.items()}, ids


def test_main_job_data_comes_from_the_assets_when_they_can_be_fetched(shared_data, tmp_path):
    """Online (here: file:// URLs to stand-ins with their MD5s): train from the XML with the
    document list, dev from yhcc's jsonlines; a second run finds them there and downloads nothing."""
    from spacy_nested.corpora.formats import read_genia_xml

    assets, ids = _fake_genia_assets(shared_data, tmp_path / "remote")
    root = _offline_project(tmp_path / "project", assets)
    overrides = _local_genia(tmp_path / "local")
    args = ["--train", overrides["vars.train_path"], "--dev", overrides["vars.dev_path"]]
    args += ["--output-dir", str(root / "corpus" / "genia"), "--project-dir", str(root), "--split-tokens"]
    result = CliRunner().invoke(prepare_data.app, args)
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "Data: the project's assets, MD5-checked: train from the official GENIA 3.02 XML" in out
    assert "downloaded from file://" in out
    corpus = root / "corpus" / "genia"
    expected = [s for s in read_genia_xml(shared_data / "genia" / "raw-sample") if s.doc_id in ids]
    assert (_n_docs(corpus / "train.spacy"), _n_docs(corpus / "dev.spacy")) == (len(expected), 5)
    assert srsly.read_json(corpus / "data.json")["source"] == "assets"
    shutil.rmtree(tmp_path / "remote")  # there with the right MD5: nothing to download
    result = CliRunner().invoke(prepare_data.app, args)
    assert result.exit_code == 0 and "Asset assets/genia/dev.jsonl: there, MD5 checked" in result.output
    assert srsly.read_json(corpus / "data.json")["source"] == "assets"


def test_data_with_a_wrong_checksum_or_another_dataset_reads_the_local_files(tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    for name in ("archive.tgz", "train.txt", "dev.jsonl"):
        (remote / name).write_bytes(b"not what project.yml names")
    dests = ("assets/GENIAcorpus3.02.tgz", "assets/genia_splits/train.txt", "assets/genia/dev.jsonl")
    assets = {dest: ((remote / name).as_uri(), "0" * 32) for dest, name in zip(dests, ("archive.tgz", "train.txt", "dev.jsonl"))}
    root = _offline_project(tmp_path / "project", assets)
    local = _local_genia(tmp_path / "local")
    base = ["--train", local["vars.train_path"], "--dev", local["vars.dev_path"], "--project-dir", str(root)]
    result = CliRunner().invoke(prepare_data.app, [*base, "--output-dir", str(root / "corpus" / "genia")])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "GENIAcorpus3.02.tgz: the download from file://" in out and f"project.yml says {'0' * 32}" in out
    assert not (root / "assets" / "GENIAcorpus3.02.tgz").exists()  # a wrong download is never kept
    assert srsly.read_json(root / "corpus" / "genia" / "data.json")["source"] == "local"
    result = CliRunner().invoke(prepare_data.app, [*base, "--output-dir", str(root / "corpus" / "genia"), "--source", "assets"])
    assert result.exit_code == 1 and "Error: the project's assets cannot be used: GENIAcorpus3.02.tgz" in result.stderr
    result = CliRunner().invoke(prepare_data.app, [*base, "--output-dir", str(root / "corpus" / "mine"), "--dataset", "mine"])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "Asset" not in out and "the assets hold genia, not 'mine'" in out
    args = [*base, "--output-dir", str(tmp_path / "x"), "--train", str(tmp_path / "none.jsonl")]
    result = CliRunner().invoke(prepare_data.app, args)
    assert result.exit_code == 1 and f"Error: {tmp_path / 'none.jsonl'} not found" in result.stderr


def test_dev_asset_is_the_shared_dev_file(shared_data):
    """yhcc's dev.jsonlines at the pinned commit is byte-identical to ../shared/data/genia/dev.jsonl."""
    import hashlib

    project = srsly.read_yaml(REPO / "project.yml")
    dev = next(asset for asset in project["assets"] if asset["dest"] == "assets/genia/dev.jsonl")
    assert "yhcc/CNN_Nested_NER/d1c9fae196e2d7692f3d5afd86694dd933b08d71/preprocess/outputs/genia/dev.jsonlines" in dev["url"]
    assert dev["checksum"] == hashlib.md5((shared_data / "genia" / "dev.jsonl").read_bytes()).hexdigest()


def test_readme_has_a_library_only_install_line():
    """Besides the two commands (main job, tests): the package alone, without the test extra."""
    from importlib.metadata import requires

    readme = (REPO / "README.md").read_text(encoding="utf8")
    assert "```bash\npip install torch==2.13.0 && pip install . ./pipelines/en_genia_nested_fast\n```" in readme
    dependencies = " ".join(r for r in requires("spacy-nested") or [] if "extra ==" not in r)
    assert "spacy" in dependencies and "torch" in dependencies
    assert not any(tool in dependencies for tool in ("pytest", "hypothesis", "ruff", "mypy", "matplotlib"))


def test_data_step_with_the_readme_conll_vars_reads_the_local_files(tmp_path):
    """README's CoNLL-2003 command (--vars.dataset conll --vars.data_format conll --vars.split_tokens=):
    the data step reads the local files, the chunk column as data."""
    root = _offline_project(tmp_path / "project")
    for split in ("train", "dev"):
        (tmp_path / f"{split}.txt").write_text(CONLL, encoding="utf8")
    args = ["--dataset", "conll", "--format", "conll", "--project-dir", str(root)]
    args += ["--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt")]
    args += ["--output-dir", str(root / "corpus" / "conll")]
    result = CliRunner().invoke(prepare_data.app, args)
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "Asset" not in out and "the assets hold genia, not 'conll'" in out
    assert "column 3 holds chunk tags (NP, VP): read as data" in out
    docs = list(DocBin().from_disk(root / "corpus" / "conll" / "dev.spacy").get_docs(spacy.blank("en").vocab))
    spans = [(sp.text, sp.label_) for doc in docs for sp in doc.spans["nested"]]
    assert spans == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER"), ("Brussels", "LOC")]
