"""Trained pipelines travel: GPU-saved weights load on CPU, and `spacy package` wheels install.

Identical predictions across ``nlp.pipe`` batch sizes and ``n_process`` are
tested in ``tests/detectors/test_common.py``.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from io import BytesIO
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy
import pytest
import spacy
import srsly
import torch
from spacy.language import Language
from spacy.tokens import Doc

from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_examples, train

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
# updates after which each detector predicts some spans on the fixture (measured 2026-11-28)
N_UPDATES = {"locate_label_ner": 20, "boundary_offset_ner": 80, "proposer_regressor_ner": 20}
TEXTS = [text for text, _ in SENTENCES]
KEY = "nested"
PACKAGE_NAME, PACKAGE_VERSION = "nested_test", "0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
Prediction = Tuple[List[Tuple[int, int, str]], numpy.ndarray]


def trained_pipeline(factory: str) -> Language:
    """The fixture pipeline after a few updates, so that it predicts spans."""
    nlp = build_nlp(factory)
    train(nlp, make_examples(nlp), N_UPDATES[factory])
    return nlp


def predictions(docs: Sequence[Doc]) -> List[Prediction]:
    """Spans and their scores per doc."""
    out = []
    for doc in docs:
        group = doc.spans[KEY]
        out.append(([(s.start, s.end, s.label_) for s in group], numpy.asarray(group.attrs["scores"])))
    return out


def assert_same_predictions(expected: List[Prediction], actual: List[Prediction]) -> None:
    assert len(expected) == len(actual)
    for (spans_a, scores_a), (spans_b, scores_b) in zip(expected, actual):
        assert spans_a == spans_b
        numpy.testing.assert_allclose(scores_a, scores_b, atol=1e-6)


# --- GPU-trained weights on a CPU machine ------------------------------------


def torch_states(model_bytes: bytes) -> List[bytes]:
    """The ``torch.save`` payloads of the torch heads in a thinc model's bytes."""
    shims = [shim for node in srsly.msgpack_loads(model_bytes)["shims"] for shim in node]
    return [srsly.msgpack_loads(srsly.msgpack_loads(shim)["state"])["state"] for shim in shims]


def component_model_bytes(pipeline_bytes: bytes, name: str) -> bytes:
    """A component's thinc model bytes inside ``nlp.to_bytes()``."""
    return srsly.msgpack_loads(srsly.msgpack_loads(pipeline_bytes)[name])["model"]


def assert_tagged_cuda(model_bytes: bytes) -> None:
    """Plain ``torch.load`` fails on a CPU machine: the weights claim to live on a GPU."""
    states = torch_states(model_bytes)
    assert states
    for state in states:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(BytesIO(state), weights_only=True)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates GPU-saved weights on a CPU-only machine")
@pytest.mark.parametrize("factory", DETECTORS)
def test_gpu_saved_weights_load_on_cpu_and_predict_the_same(factory: str, tmp_path: Path, monkeypatch) -> None:
    """Storages tagged "cuda:0" (as ``torch.save`` writes them on a GPU) are mapped to the CPU.

    thinc's ``PyTorchShim.from_bytes`` hands ``get_torch_default_device()`` to
    ``bridge.deserialize_head``, which loads with ``map_location`` set to it.
    """
    nlp = trained_pipeline(factory)
    before = predictions(nlp.pipe(TEXTS))
    assert any(spans for spans, _ in before)
    path = tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        nlp.to_disk(path)
        data = nlp.to_bytes()
    assert_tagged_cuda((path / factory / "model").read_bytes())
    assert_tagged_cuda(component_model_bytes(data, factory))
    loaded = [
        spacy.load(path),
        spacy.util.load_model_from_config(nlp.config).from_disk(path),
        spacy.util.load_model_from_config(nlp.config).from_bytes(data),
    ]
    for other in loaded:
        assert_same_predictions(before, predictions(other.pipe(TEXTS)))


# --- `spacy package` wheel in a fresh virtualenv -------------------------------

LOAD_SCRIPT = """
import importlib.metadata, json, sys
import spacy, spacy_nested
nlp = spacy.load(sys.argv[1])
doc = nlp(sys.argv[2])
group = doc.spans["nested"]
print(json.dumps({
    "module": spacy_nested.__file__,
    "dist": str(importlib.metadata.distribution("spacy-nested").locate_file("")),
    "spans": [[s.start, s.end, s.label_] for s in group],
    "scores": list(group.attrs["scores"]),
}))
"""


def run(args: Sequence, cwd: Path) -> str:
    """Run a command without PYTHONPATH; its stdout, or a failure with its output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_own_wheel(tmp_path: Path) -> Path:
    """This package's wheel, built offline from a copy of the sources (the repo stays clean)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "spacy_nested", source / "spacy_nested", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    pip_args = ["--isolated", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, source]
    run([sys.executable, "-m", "pip", *pip_args], tmp_path)
    assert len(list(wheels.glob("spacy_nested-*.whl"))) == 1
    return wheels


def spacy_package(model: Path, tmp_path: Path) -> Path:
    """``spacy package --build wheel``; the package folder it writes."""
    out = tmp_path / "packages"
    out.mkdir()
    args = ["--name", PACKAGE_NAME, "--version", PACKAGE_VERSION, "--build", "wheel", "--force"]
    run([sys.executable, "-m", "spacy", "package", model, out, *args], tmp_path)
    return out / f"en_{PACKAGE_NAME}-{PACKAGE_VERSION}"


def fresh_venv(path: Path) -> Path:
    """A virtualenv that sees this environment's packages (torch, spaCy, pip) after its own; its python."""
    run([sys.executable, "-m", "venv", "--without-pip", path], path.parent)
    python = path / "bin" / "python"
    own = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path.parent).strip())
    parent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (own / "parent_env.pth").write_text("\n".join(sorted(parent)) + "\n", encoding="utf8")
    return python


def pip_install(python: Path, cwd: Path, *args) -> None:
    """Install from local files only; ``--ignore-installed`` never uninstalls from the parent env."""
    run([python, "-m", "pip", "--isolated", "install", "-q", "--no-index", *args], cwd)


def load_in(python: Path, cwd: Path, package: str, text: str) -> Dict:
    return json.loads(run([python, "-c", LOAD_SCRIPT, package, text], cwd))


@pytest.mark.slow
def test_spacy_package_wheel_installs_and_loads_in_a_fresh_venv(tmp_path: Path) -> None:
    """The packaged pipeline requires spacy-nested and runs from the installed wheels alone.

    About 20 s on 2 busy cores. ``spacy package`` runs ``python -m build``, whose
    isolated build env installs setuptools from the index; offline it falls back
    to ``setup.py bdist_wheel``.
    """
    nlp = trained_pipeline("locate_label_ner")
    text = TEXTS[1]
    [(spans, scores)] = predictions([nlp(text)])
    assert spans
    nlp.to_disk(tmp_path / "model")
    wheels = build_own_wheel(tmp_path)
    package = spacy_package(tmp_path / "model", tmp_path)
    meta = srsly.read_json(package / f"en_{PACKAGE_NAME}" / "meta.json")
    assert any(req.startswith("spacy-nested") for req in meta["requirements"]), meta["requirements"]
    venv = tmp_path / "venv"
    python = fresh_venv(venv)
    pip_install(python, tmp_path, "--find-links", wheels, "--ignore-installed", "--no-deps", "spacy-nested")
    pip_install(python, tmp_path, "--find-links", wheels, "--find-links", package / "dist", f"en_{PACKAGE_NAME}")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    loaded = load_in(python, cwd, f"en_{PACKAGE_NAME}", text)
    assert Path(loaded["module"]).resolve().is_relative_to(venv.resolve())  # not the repo's editable install
    assert Path(loaded["dist"]).resolve().is_relative_to(venv.resolve())  # nor its metadata
    assert [tuple(span) for span in loaded["spans"]] == spans
    numpy.testing.assert_allclose(loaded["scores"], scores, atol=1e-6)
