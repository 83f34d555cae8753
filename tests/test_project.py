"""The `smoke` workflow of project.yml, run end to end (explosion/projects style)."""
import shutil
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from weasel.cli.run import project_run

from spacy_nested.workflow import CONFIGS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_workflow_reports_every_pipeline(shared_data, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    project = srsly.read_yaml(REPO / "project.yml")
    project["vars"]["train_path"] = str(shared_data / "genia" / "train.jsonl")
    project["vars"]["dev_path"] = str(shared_data / "genia" / "dev.jsonl")
    srsly.write_yaml(root / "project.yml", project)
    shutil.copytree(REPO / "configs", root / "configs")
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


def test_all_workflow_trains_evaluates_and_reports_every_pipeline():
    project = srsly.read_yaml(REPO / "project.yml")
    steps = project["workflows"]["all"]
    for name in CONFIGS:
        assert steps.index(f"train-{name}") < steps.index(f"evaluate-{name}") < steps.index("benchmark") < steps.index("report")


def test_readme_lists_the_current_project_commands(tmp_path):
    """`spacy project document . --output README.md` keeps this section current."""
    from weasel.cli.document import project_document

    marker = "<!-- WEASEL: AUTO-GENERATED DOCS START (do not remove) -->"
    fresh = tmp_path / "README.md"
    project_document(REPO, fresh)
    readme, generated = (path.read_text(encoding="utf8") for path in (REPO / "README.md", fresh))
    assert readme[readme.index(marker):].strip() == generated[generated.index(marker):].strip()


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


def test_debug_data_shows_the_span_statistics(tmp_path):
    """spaCy's debug data reports spans only for a spancat config: the command runs it with one."""
    import subprocess
    import sys

    from .pipeline.nested_fixture import SENTENCES, make_doc

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


def test_genia_xml_assets_convert_into_the_splits(shared_data, tmp_path):
    """all-from-xml's first step on assets built from the real raw sample (offline stand-ins
    for the downloads): the archive is unpacked and split by the document lists."""
    import re
    import tarfile

    from spacy_nested.formats import read_genia_xml

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
        "assets/GENIAcorpus3.02.tgz": 32, "assets/genia_splits/train.txt": 32, "assets/genia_splits/dev.txt": 32}
    project_run(root, "convert-genia-xml", overrides={"vars.dataset": "genia_xml"}, capture=True)
    expected = list(read_genia_xml(sample))
    nlp = spacy.blank("en")
    n_docs = {split: len(DocBin().from_disk(root / "corpus" / "genia_xml" / f"{split}.spacy")) for split in ("train", "dev")}
    by_split = {"train": set(ids[:50]), "dev": set(ids[50:])}
    assert n_docs == {split: sum(s.doc_id in by_split[split] for s in expected) for split in ("train", "dev")}
    dev = list(DocBin().from_disk(root / "corpus" / "genia_xml" / "dev.spacy").get_docs(nlp.vocab))
    dev_sentences = [s for s in expected if s.doc_id in by_split["dev"]]
    assert [[t.text for t in doc] for doc in dev] == [list(s.tokens) for s in dev_sentences]
