"""Every ``configs/*.cfg`` initializes and trains for two steps on a tiny corpus.

Overrides, and only these: ``paths.train``/``paths.dev`` (a DocBin of the
nested fixture), the name of any spacy-transformers model (a tiny random BERT
written offline, ``tests/tiny_bert.py``) and the sizes of the nested
detectors' heads (``hidden_width``, ``biaffine_hidden``, ``ffn_width``, ``lstm_hidden``), so the GENIA settings
(1024 / BiLSTM 512) stay fast on CPU. Training follows ``spacy train``:
``init_nlp(config)``, then ``nlp.update(sgd=False)`` + ``finish_update`` with
the config's optimizer, the configured frozen and annotating components, and
an ``nlp.evaluate`` on the dev corpus.
"""
import math
from pathlib import Path

import numpy
import pytest

from tests.tiny_bert import make_concatenated_doc, make_nested_docs, make_tiny_bert, set_offline, train_step

set_offline()

import spacy  # noqa: E402
from spacy.schemas import ConfigSchemaTraining  # noqa: E402
from spacy.tokens import DocBin  # noqa: E402
from spacy.training.initialize import init_nlp  # noqa: E402
from spacy.util import load_config, registry, resolve_dot_names  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.cfg"))
MAX_HIDDEN_WIDTH = 32
MAX_LSTM_HIDDEN = 16


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory) -> Path:
    vocab = spacy.blank("en").vocab
    docs = make_nested_docs(vocab) + [make_concatenated_doc(vocab)]
    for doc in docs:
        assert doc.text == " ".join(t.text for t in doc)
    path = tmp_path_factory.mktemp("corpus") / "tiny.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path


def test_configs_found():
    names = {p.name for p in CONFIGS}
    assert {"genia.cfg", "genia_locate_label.cfg", "genia_locate_label_cpu.cfg"} <= names


@pytest.mark.parametrize("cfg_path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_the_last_component_writes_nested_spans_through_a_threshold_that_drops_some(cfg_path):
    """What a user of a trained pipeline, ``evaluate`` and the project's ``tune`` step rely on: the
    pipeline's last component writes ``doc.spans["nested"]`` and decides which spans with a ``threshold``
    in [0, 1]. A detector with its None veto off (in the config or by its factory's default) needs a
    threshold above 0: with the veto off and a threshold of 0 every proposal is a span, and the dev
    score that picks model-best during training is noise. spancat keeps a label at a score of at least
    its threshold, so 0 would keep every label of every suggested span: it needs one above 0 too."""
    config = load_config(cfg_path, interpolate=False)
    last = config["nlp"]["pipeline"][-1]
    component = config["components"][last]
    assert component.get("spans_key") == "nested", f"{cfg_path.name}: {last} writes {component.get('spans_key')!r}"
    threshold = float(component["threshold"])
    assert 0.0 <= threshold <= 1.0, f"{cfg_path.name}: {last}"
    factory = component["factory"]
    default_decoder = _factory_defaults(factory).get("decoder") or {}
    none_veto = (component.get("decoder") or {}).get("none_veto", default_decoder.get("none_veto"))
    if none_veto is False or factory == "spancat":
        assert threshold > 0, f"{cfg_path.name}: {last} (none_veto {none_veto}) keeps every proposal at threshold 0"


def _factory_defaults(factory: str) -> dict:
    """The default config of one of this package's factories, registered (as when spaCy reads a config) by
    importing the module its ``spacy_factories`` entry point names; {} for spaCy's own factories."""
    from importlib.metadata import entry_points

    from spacy.language import Language

    found = [entry_point for entry_point in entry_points(group="spacy_factories") if entry_point.name == factory]
    if not found:
        return {}
    found[0].load()
    return dict(Language.get_factory_meta(factory).default_config or {})


def _tiny_config(cfg_path: Path, bert_dir: str, corpus: Path):
    config = load_config(cfg_path, interpolate=False)
    config["paths"]["train"] = str(corpus)
    config["paths"]["dev"] = str(corpus)
    n_transformers = 0
    for name, component in config["components"].items():
        model = component.get("model", {})
        arch = str(model.get("@architectures", ""))
        if arch.startswith("spacy-transformers.TransformerModel"):
            model["name"] = bert_dir
            n_transformers += 1
        if arch.startswith("spacy_nested."):
            for key in ("hidden_width", "biaffine_hidden", "ffn_width"):
                if key in model:
                    model[key] = min(int(model[key]), MAX_HIDDEN_WIDTH)
            if "lstm_hidden" in model:
                model["lstm_hidden"] = min(int(model["lstm_hidden"]), MAX_LSTM_HIDDEN)
    return config, n_transformers


@pytest.mark.slow
@pytest.mark.parametrize("cfg_path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_trains_two_steps(cfg_path, tiny_bert_dir, corpus_path):
    config, n_transformers = _tiny_config(cfg_path, tiny_bert_dir, corpus_path)
    spacy.util.fix_random_seed(0)
    nlp = init_nlp(config, use_gpu=-1)
    if n_transformers:
        assert "transformer" in nlp.pipe_names
    filled = nlp.config.interpolate()
    T = registry.resolve(filled["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(filled, [T["train_corpus"], T["dev_corpus"]])
    examples = list(train_corpus(nlp))
    assert len(examples) == 7
    assert all(len(eg.reference.spans["nested"]) > 0 for eg in examples)
    # the whitespace tokenizer gives the stored tokens back
    assert all(eg.x.text == eg.y.text and len(eg.x) == len(eg.y) for eg in examples)
    optimizer = T["optimizer"]
    frozen = T["frozen_components"]
    annotating = T["annotating_components"]
    trainable = [
        name
        for name, proc in nlp.pipeline
        if name not in frozen and getattr(proc, "is_trainable", False) and hasattr(proc, "update")
    ]
    for step in range(2):
        losses = train_step(nlp, examples, optimizer, drop=T["dropout"], exclude=frozen, annotates=annotating)
        optimizer.step_schedules()
        assert set(trainable) <= set(losses), (step, losses)
        for name, value in losses.items():
            assert math.isfinite(value), (cfg_path.name, step, name, value)
    for name in trainable:
        if name not in ("tok2vec", "transformer"):
            assert losses[name] > 0, (cfg_path.name, losses)
    scores = nlp.evaluate(list(dev_corpus(nlp)))
    # as spacy train's evaluation: weights of missing scores are dropped, the rest must be numbers
    assert isinstance(scores.get("spans_nested_f"), float), sorted(scores)
    weights = {k: w for k, w in T["score_weights"].items() if w and scores.get(k) is not None}
    assert weights.get("spans_nested_f", 0) > 0, (cfg_path.name, dict(T["score_weights"]))
    assert all(isinstance(scores[k], (int, float)) for k in weights)
    doc = nlp(examples[0].x.text)
    assert "nested" in doc.spans


CPU_CONFIGS = sorted(CONFIG_DIR.glob("*_cpu.cfg"))


@pytest.mark.parametrize("cfg_path", CPU_CONFIGS, ids=[p.name for p in CPU_CONFIGS])
def test_cpu_config_loads_a_pretrained_tok2vec(cfg_path, tmp_path, corpus_path):
    """``--paths.init_tok2vec`` (the weights ``spacy pretrain`` writes) reaches the tok2vec: spaCy
    reads it only when the config's [pretraining] section names the component, and ignores it
    silently otherwise. The weights here are another initialization's, saved as pretrain saves them."""
    config, _ = _tiny_config(cfg_path, "", corpus_path)
    config["system"]["seed"] = 1  # init_nlp seeds from the config
    donor = init_nlp(config, use_gpu=-1).get_pipe("tok2vec").model
    weights = tmp_path / "model0.bin"
    weights.write_bytes(donor.to_bytes())
    config["system"]["seed"] = 2
    plain = init_nlp(config, use_gpu=-1).get_pipe("tok2vec").model
    config["paths"]["init_tok2vec"] = str(weights)
    loaded = init_nlp(config, use_gpu=-1).get_pipe("tok2vec").model

    def params(model):
        return numpy.concatenate(
            [node.get_param(name).ravel() for node in model.walk() for name in node.param_names if node.has_param(name)]
        )

    assert not numpy.array_equal(params(donor), params(plain))  # seeds 1 and 2 initialize differently
    assert numpy.array_equal(params(donor), params(loaded))
