"""``quantize_pipeline`` and ``python -m spacy_nested quantize``: dynamic int8 that survives save and load.

A tiny random BERT (``tests/tiny_bert.py``, no hub) behind a ``transformer``
pipe, and a locate_label_ner listening to it trained for a few updates, with
a decoder that keeps every scored seed (threshold 0, no Soft-NMS, no None
veto), so that predictions are never empty lists. The quantized pipeline is
saved all or nothing and loaded with plain ``spacy.load``.
"""
import re
from typing import Callable, List, Tuple

import pytest
import torch

from tests.tiny_bert import add_tiny_transformer, make_nested_docs, make_tiny_bert, set_offline, train_step, transformer_listener

set_offline()

import spacy  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.training import Example  # noqa: E402
from thinc.api import Adam  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import spacy_nested.cli.quantize  # noqa: E402,F401  (registers the command)
from spacy_nested.cli._util import app  # noqa: E402
from spacy_nested.ensemble.build import save_atomically  # noqa: E402
from spacy_nested.ml.bridge import get_torch_head  # noqa: E402
from spacy_nested.ml.int8 import Int8Linear, int8_linear_layers, linear_layers  # noqa: E402
from spacy_nested.ml.quantize import HOOK, int8_layers, quantize_pipeline  # noqa: E402

LENIENT = {"threshold": 0.0, "decoder": {"none_veto": False, "drop_crossing": False, "soft_nms": False}}
# the tiny BERT's Linear layers: 6 per layer (query, key, value, attention output, intermediate, output), 2 layers, pooler
N_LINEAR = 13
Predictions = List[List[Tuple[int, int, str, float]]]


def predict(nlp: Language, texts: List[str]) -> Predictions:
    return [
        [(s.start, s.end, s.label_, float(score)) for s, score in zip(doc.spans["nested"], doc.spans["nested"].attrs["scores"])]
        for doc in nlp.pipe(texts)
    ]


def hf_model(nlp: Language, pipe: str = "transformer") -> torch.nn.Module:
    """The Hugging Face model of the pipeline's transformer component, or the one inside detector `pipe`."""
    from spacy_transformers.layers import TransformerModel

    [node] = [n for n in nlp.get_pipe(pipe).model.walk() if isinstance(n, TransformerModel)]  # type: ignore[attr-defined]
    return node.transformer


def plain_linears(module: torch.nn.Module) -> List[str]:
    return [name for name, child in module.named_modules() if type(child) is torch.nn.Linear]


def tiny_pipeline(bert_dir: str, n_updates: int) -> Language:
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    add_tiny_transformer(nlp, bert_dir, window=16, stride=12)
    model = {"@architectures": "spacy_nested.LocateLabel.v1", "hidden_width": 32, "lstm_hidden": 0, "dropout": 0.0,
             "tok2vec": transformer_listener()}  # fmt: skip
    nlp.add_pipe("locate_label_ner", config={"model": model, **LENIENT})
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in make_nested_docs(nlp.vocab)]
    nlp.initialize(lambda: examples)
    optimizer = Adam(learn_rate=0.003)
    for _ in range(n_updates):
        train_step(nlp, examples, optimizer)
    return nlp


@pytest.fixture(scope="module")
def texts() -> List[str]:
    return [doc.text for doc in make_nested_docs(spacy.blank("en").vocab)]


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    """The trained fp32 pipeline and its folder."""
    tmp = tmp_path_factory.mktemp("quantize")
    nlp = tiny_pipeline(make_tiny_bert(tmp / "bert"), n_updates=5)
    nlp.to_disk(tmp / "fp32")
    return nlp, tmp / "fp32"


@pytest.fixture(scope="module")
def int8(fp32, tmp_path_factory):
    """The quantized pipeline in memory, and reloaded from its folder."""
    quantized = quantize_pipeline(fp32[0])
    path = tmp_path_factory.mktemp("int8") / "model"
    save_atomically(quantized, path)
    return quantized, spacy.load(path), path


def test_reloaded_transformer_runs_in_int8(fp32, int8):
    nlp, _ = fp32
    quantized, loaded, path = int8
    for pipeline in (quantized, loaded):
        module = hf_model(pipeline)
        assert len(int8_linear_layers(module)) == N_LINEAR and plain_linears(module) == []
        query = module.encoder.layer[1].attention.self.query
        assert isinstance(query, Int8Linear) and isinstance(query.quantized, torch.ao.nn.quantized.dynamic.Linear)
        assert query.quantized.weight().dtype == torch.qint8
        assert query.quantized.weight().qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
    assert int8_layers(loaded) == {"transformer": {"transformer": N_LINEAR}}
    assert len(plain_linears(hf_model(nlp))) == N_LINEAR  # the fp32 pipeline is left as it was
    assert spacy.util.load_config(path / "config.cfg")["nlp"]["after_pipeline_creation"] == {
        "@callbacks": HOOK, "layers": "all", "heads": False, "per_channel": True}  # fmt: skip


def test_reloaded_predictions_equal_the_in_memory_ones(int8, texts):
    quantized, loaded, _ = int8
    expected = predict(quantized, texts)
    assert all(expected)
    assert predict(loaded, texts) == expected


def test_int8_scores_are_close_to_fp32(fp32, int8, texts):
    before, after = predict(fp32[0], texts), predict(int8[1], texts)
    for doc_before, doc_after in zip(before, after):
        spans_before = {span[:3]: span[3] for span in doc_before}
        spans_after = {span[:3]: span[3] for span in doc_after}
        assert len(spans_before.keys() & spans_after.keys()) >= 0.9 * len(spans_before.keys() | spans_after.keys())
        assert max(abs(score - spans_after[key]) for key, score in spans_before.items() if key in spans_after) < 0.05


def test_the_folder_holds_fp32_weights(fp32, int8, texts):
    """Without the config's callback the folder is the fp32 pipeline, exactly; saving the loaded int8 one
    again writes those fp32 weights, not de-quantized ones."""
    nlp, _ = fp32
    _, loaded, path = int8
    fp32_config = {"nlp": {"after_pipeline_creation": None}}
    plain = spacy.load(path, config=fp32_config)
    assert int8_layers(plain) == {}
    assert predict(plain, texts) == predict(nlp, texts)
    assert_same_weights(hf_model(plain), hf_model(nlp))
    again = path.parent / "again"
    loaded.to_disk(again)
    assert predict(spacy.load(again), texts) == predict(loaded, texts)
    assert_same_weights(hf_model(spacy.load(again, config=fp32_config)), hf_model(nlp))


def assert_same_weights(module: torch.nn.Module, other: torch.nn.Module) -> None:
    state, other_state = module.state_dict(), other.state_dict()
    assert list(state) == list(other_state)
    assert all(torch.equal(state[name], other_state[name]) for name in state)


def test_layers_pattern_leaves_the_others_in_fp32(fp32, tmp_path, texts):
    quantized = quantize_pipeline(fp32[0], layers=r"encoder\.layer\.0\.")
    save_atomically(quantized, tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    module = hf_model(loaded)
    assert len(int8_linear_layers(module)) == 6
    assert all(name.startswith("encoder.layer.0.") for name in int8_linear_layers(module))
    assert sorted(plain_linears(module)) == sorted(linear_layers(hf_model(fp32[0]), r"^(?!encoder\.layer\.0\.)"))
    assert predict(loaded, texts) == predict(quantized, texts)


def test_inline_transformer_of_a_detector(fp32, tmp_path, texts):
    """A detector that owns its transformer (sourced with replace_listeners, as combine-pipelines does)."""
    nlp = spacy.load(fp32[1])
    nlp.replace_listeners("transformer", "locate_label_ner", ["model.tok2vec"])
    nlp.remove_pipe("transformer")
    quantized = quantize_pipeline(nlp)
    save_atomically(quantized, tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.pipe_names == ["locate_label_ner"]
    assert len(int8_linear_layers(hf_model(loaded, "locate_label_ner"))) == N_LINEAR
    assert predict(loaded, texts) == predict(quantized, texts)


def tok2vec_detector(factory: str) -> Language:
    """`factory` on its default encoder (spaCy's CPU tok2vec), initialized, untrained, keeping low scores."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    lenient = {"locate_label_ner": LENIENT, "proposer_regressor_ner": {"threshold": 0.0, "decoder": {"none_veto": False}}}
    nlp.add_pipe(factory, config=lenient.get(factory, {"threshold": 0.0}))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in make_nested_docs(nlp.vocab)]
    nlp.initialize(lambda: examples)
    return nlp


def test_combine_pipelines_of_quantized_members(int8, tmp_path, texts):
    """combine-pipelines loads quantized members, gives each a copy of the transformer, saves fp32 weights and the
    first member's callback: the combined pipeline loads with every member's transformer in int8."""
    from spacy_nested.ensemble.build import combine_pipelines

    _, loaded, path = int8
    combined = combine_pipelines([("nested_a", path), ("nested_b", path)])
    save_atomically(combined, tmp_path / "model")
    again = spacy.load(tmp_path / "model")
    assert int8_layers(again) == {"transformer": {"transformer": N_LINEAR}, "nested_b": {"transformer": N_LINEAR}}
    docs, docs_again = list(combined.pipe(texts)), list(again.pipe(texts))
    for key in ("nested_a", "nested_b", "nested"):
        assert [list(d.spans[key].attrs["scores"]) for d in docs_again] == [list(d.spans[key].attrs["scores"]) for d in docs]
    assert [list(d.spans["nested_a"].attrs["scores"]) for d in docs] == [[s[3] for s in doc] for doc in predict(loaded, texts)]


@pytest.fixture(scope="module")
def tok2vec_pipeline() -> Language:
    return tok2vec_detector("locate_label_ner")


@pytest.mark.parametrize("factory", ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"])
def test_heads(factory, tmp_path, texts):
    """Every head runs with int8 Linear layers, those whose weights it reads itself included (``Int8Linear``)."""
    nlp = tok2vec_detector(factory)
    quantized = quantize_pipeline(nlp, heads=True)
    save_atomically(quantized, tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    head = get_torch_head(loaded.get_pipe(factory).model)  # type: ignore[attr-defined]
    assert int8_linear_layers(head) and plain_linears(head) == []
    assert plain_linears(get_torch_head(nlp.get_pipe(factory).model))  # type: ignore[attr-defined]
    expected = predict(quantized, texts)
    assert any(expected)
    assert predict(loaded, texts) == expected
    assert predict(loaded.from_bytes(quantized.to_bytes()), texts) == expected  # loading into a quantized head


CALLED: List[str] = []


@spacy.registry.callbacks("test_quantize.note_creation.v1")
def note_creation() -> Callable[[Language], Language]:
    def after(nlp: Language) -> Language:
        CALLED.append("previous")
        return nlp

    return after


def test_a_callback_already_there_runs_first_and_quantizing_again_starts_from_fp32(tok2vec_pipeline, tmp_path, texts):
    nlp = tok2vec_pipeline
    nlp.config["nlp"]["after_pipeline_creation"] = {"@callbacks": "test_quantize.note_creation.v1"}
    try:
        once = quantize_pipeline(nlp, heads=True)
        twice = quantize_pipeline(once, heads=True)
    finally:
        nlp.config["nlp"]["after_pipeline_creation"] = None
    hook = twice.config["nlp"]["after_pipeline_creation"]
    assert hook["@callbacks"] == HOOK and hook["previous"] == {"@callbacks": "test_quantize.note_creation.v1"}
    save_atomically(twice, tmp_path / "model")
    CALLED.clear()
    loaded = spacy.load(tmp_path / "model")
    assert CALLED == ["previous"]
    assert predict(loaded, texts) == predict(once, texts)


def test_errors(fp32, tok2vec_pipeline, tmp_path):
    nlp, _ = fp32
    with pytest.raises(ValueError, match=r"nothing to quantize: .*no transformer.*--heads is off"):
        quantize_pipeline(tok2vec_pipeline)
    with pytest.raises(ValueError, match=r"nothing to quantize: .*no detector head"):
        quantize_pipeline(spacy.blank("en"), heads=True)
    with pytest.raises(ValueError, match=r"layers must be 'all' or a regular expression"):
        quantize_pipeline(nlp, layers="encoder.(")
    with pytest.raises(ValueError, match=r"selects no Linear layer of the transformer .*encoder\.layer\.0\.attention"):
        quantize_pipeline(nlp, layers="decoder")
    blank = spacy.blank("en")
    add_tiny_transformer(blank, str(tmp_path / "never_read"), window=16, stride=12)
    with pytest.raises(ValueError, match=r"the transformer of \['transformer'\] is not initialized"):
        quantize_pipeline(blank)


runner = CliRunner()


def test_command(fp32, tok2vec_pipeline, tmp_path, texts):
    _, model = fp32
    out = tmp_path / "int8"
    result = runner.invoke(app, ["quantize", str(model), str(out), "--layers", r"encoder\.layer\.1\.", "--per-tensor"])
    assert result.exit_code == 0, result.output
    assert "transformer: 6 int8 Linear layers in its transformer" in result.output
    loaded = spacy.load(out)
    assert int8_layers(loaded) == {"transformer": {"transformer": 6}}
    query = hf_model(loaded).encoder.layer[1].attention.self.query
    assert query.quantized.weight().qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric)
    # and spacy package takes the folder as it is: the packaged copy loads in int8 and requires spacy-nested
    from spacy.cli.package import get_third_party_dependencies, package

    (tmp_path / "packages").mkdir()
    package(out, tmp_path / "packages", name="tiny_int8", version="0.0.1", create_sdist=False, silent=True)
    inner = tmp_path / "packages" / "en_tiny_int8-0.0.1" / "en_tiny_int8" / "en_tiny_int8-0.0.1"
    assert int8_layers(spacy.load(inner)) == {"transformer": {"transformer": 6}}
    blank_config = spacy.blank("en").config
    blank_config["nlp"]["after_pipeline_creation"] = {"@callbacks": HOOK, "layers": "all", "heads": False}
    assert any(req.startswith("spacy-nested") for req in get_third_party_dependencies(blank_config))

    tok2vec_model = tmp_path / "tok2vec"
    tok2vec_pipeline.to_disk(tok2vec_model)
    result = runner.invoke(app, ["quantize", str(tok2vec_model), str(tmp_path / "none")])
    assert result.exit_code == 1 and "Error: nothing to quantize" in result.output
    assert not (tmp_path / "none").exists()
    result = runner.invoke(app, ["quantize", str(tok2vec_model), str(tmp_path / "heads"), "--heads"])
    assert result.exit_code == 0, result.output
    assert re.search(r"locate_label_ner: \d+ int8 Linear layers in its head", result.output)
