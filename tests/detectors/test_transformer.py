"""locate_label_ner behind a shared spacy-transformers ``transformer``.

A tiny random BERT (``tests/tiny_bert.py``) is written to a temp dir and
loaded by path, offline. The transformer cuts docs into strided windows of 16
word pieces (stride 12), so the 40-token doc used below spans many windows.
"""
import math

import numpy
import pytest
import torch

from tests.tiny_bert import (
    NESTED_LABELS,
    NESTED_SENTENCES,
    add_tiny_transformer,
    long_tokens,
    make_nested_docs,
    make_tiny_bert,
    set_offline,
    train_step,
    transformer_listener,
)

set_offline()

import spacy  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from spacy.training import Example  # noqa: E402
from spacy_transformers.layers import TransformerListener  # noqa: E402
from thinc.api import Adam  # noqa: E402

N_UPDATES = 20
WINDOW, STRIDE = 16, 12


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


# The training configs' callback, naming the transformer; nothing process-wide (no oneDNN
# setting, no heap trim) in the test process.
FLAT_MEMORY = {
    "@callbacks": "spacy_nested.flat_training_memory.v1",
    "onednn_kernel_cache": None,
    "trim_every": 0,
    "in_place_updates": ["transformer"],
}


def build_nlp(bert_dir: str, pooling: str = "reduce_mean.v1", lstm_hidden: int = 0):
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    add_tiny_transformer(nlp, bert_dir, window=WINDOW, stride=STRIDE)
    nlp.add_pipe(
        "locate_label_ner",
        config={
            "model": {
                "@architectures": "spacy_nested.LocateLabel.v1",
                "hidden_width": 32,
                "lstm_hidden": lstm_hidden,
                "dropout": 0.0,
                "tok2vec": transformer_listener(pooling),
            },
            "threshold": 0.0,
        },
    )
    return nlp


def hf_params(nlp):
    """name -> copy of each parameter of the Hugging Face model inside the transformer pipe."""
    hf_model = nlp.get_pipe("transformer").model.transformer
    assert isinstance(hf_model, torch.nn.Module)
    return {name: p.detach().clone() for name, p in hf_model.named_parameters()}


@pytest.fixture(scope="module")
def trained(tiny_bert_dir):
    spacy.util.fix_random_seed(0)
    nlp = build_nlp(tiny_bert_dir)
    gold = make_nested_docs(nlp.vocab)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    nlp.config["initialize"]["before_init"] = FLAT_MEMORY  # as the project's training configs
    nlp.initialize(lambda: examples)
    # No weight decay: a parameter of the transformer moves only if it got a gradient.
    optimizer = Adam(learn_rate=0.003, L2=0.0, grad_clip=1.0)
    before = hf_params(nlp)
    history = []
    after_first = None
    for step in range(N_UPDATES):
        history.append(train_step(nlp, examples, optimizer))
        if step == 0:
            after_first = hf_params(nlp)
    return {"nlp": nlp, "examples": examples, "history": history, "before": before, "after_first": after_first}


def test_pipeline_uses_transformer_listener(trained):
    nlp = trained["nlp"]
    assert nlp.pipe_names == ["transformer", "locate_label_ner"]
    ner = nlp.get_pipe("locate_label_ner")
    assert list(ner.labels) == NESTED_LABELS
    tok2vec = ner.model.get_ref("tok2vec")
    listeners = [node for node in tok2vec.walk() if isinstance(node, TransformerListener)]
    assert len(listeners) == 1
    assert listeners[0] in nlp.get_pipe("transformer").listeners
    # the head was sized to the tiny BERT's hidden size
    assert ner.model.get_dim("nI") == 32
    assert ner.model.get_dim("nO") == len(NESTED_LABELS)


def test_losses_finite_and_falling(trained):
    ner_losses = [h["locate_label_ner"] for h in trained["history"]]
    trf_losses = [h["transformer"] for h in trained["history"]]
    assert all(math.isfinite(x) for x in ner_losses + trf_losses)
    assert all(x > 0 for x in ner_losses)
    # the head sent a non-zero gradient to the transformer at every step
    assert all(x > 0 for x in trf_losses)
    first, last = numpy.mean(ner_losses[:3]), numpy.mean(ner_losses[-3:])
    assert last < 0.8 * first, ner_losses


def test_gradient_reaches_transformer_weights(trained):
    before, after = trained["before"], trained["after_first"]
    assert before.keys() == after.keys()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    # the optimizer has no weight decay: only a gradient from the head can move these
    assert "embeddings.word_embeddings.weight" in changed
    assert any(name.startswith("encoder.layer.0.") for name in changed)
    assert any(name.startswith("encoder.layer.1.") for name in changed)
    # most parameters move (the unused pooler may not)
    assert len(changed) >= len(before) - 2


def test_long_doc_is_covered_by_strided_windows(trained):
    nlp = trained["nlp"]
    words = long_tokens(40)
    doc = nlp(" ".join(words))
    assert [t.text for t in doc] == words
    trf_data = doc._.trf_data
    n_windows = trf_data.wordpieces.input_ids.shape[0]
    assert n_windows > 1
    # every token is aligned to at least one word piece
    assert all(int(n) > 0 for n in trf_data.align.lengths)
    vectors = nlp.get_pipe("locate_label_ner").model.get_ref("tok2vec").predict([doc])
    assert vectors[0].shape == (len(doc), 32)
    assert numpy.isfinite(nlp.get_pipe("locate_label_ner").model.ops.to_numpy(vectors[0])).all()


def _check_group(doc, key="nested"):
    group = doc.spans[key]
    scores = group.attrs["scores"]
    assert len(scores) == len(group)
    for span, score in zip(group, scores):
        assert 0 <= span.start < span.end <= len(doc)
        assert span.label_ in NESTED_LABELS
        assert 0.0 <= score <= 1.0
    return [(s.start, s.end, s.label_) for s in group], list(scores)


def test_predictions_land_in_spans_with_scores(trained):
    nlp = trained["nlp"]
    found = 0
    for words, _ in NESTED_SENTENCES:
        doc = nlp(" ".join(words))
        spans, _ = _check_group(doc)
        found += len(spans)
    assert found > 0, "the trained pipeline predicts nothing on its own training sentences"
    long_doc = nlp(" ".join(long_tokens(40)))
    _check_group(long_doc)


def _predict_all(nlp, texts):
    docs = list(nlp.pipe(texts))
    ner = nlp.get_pipe("locate_label_ner")
    segments = ner.segments(docs)
    raw = ner.model.predict((docs, segments, ner.predict_extras(segments)))
    raw = [ner.model.ops.to_numpy(x) for x in raw]
    return docs, raw


def test_to_disk_round_trip(trained, tmp_path):
    nlp = trained["nlp"]
    texts = [" ".join(long_tokens(40))] + [" ".join(words) for words, _ in NESTED_SENTENCES]
    docs, raw = _predict_all(nlp, texts)
    nlp.to_disk(tmp_path / "model")
    nlp2 = spacy.load(tmp_path / "model")
    assert nlp2.pipe_names == nlp.pipe_names
    assert nlp2.get_pipe("locate_label_ner").labels == nlp.get_pipe("locate_label_ner").labels
    docs2, raw2 = _predict_all(nlp2, texts)
    assert len(docs2[0]) == 40
    # transformer output on the 40-token doc
    numpy.testing.assert_allclose(
        nlp.get_pipe("transformer").model.ops.to_numpy(docs[0]._.trf_data.tensors[0]),
        nlp2.get_pipe("transformer").model.ops.to_numpy(docs2[0]._.trf_data.tensors[0]),
        atol=1e-5,
    )
    # raw head outputs (filter logits, offsets, class logits, kept seeds, adjusted spans)
    assert len(raw) == len(raw2)
    for a, b in zip(raw, raw2):
        assert a.shape == b.shape
        if a.dtype.kind == "f":
            numpy.testing.assert_allclose(a, b, atol=1e-5)
        else:
            numpy.testing.assert_array_equal(a, b)
    # decoded spans and scores
    n_spans = 0
    for doc, doc2 in zip(docs, docs2):
        spans, scores = _check_group(doc)
        spans2, scores2 = _check_group(doc2)
        assert spans == spans2
        numpy.testing.assert_allclose(scores, scores2, atol=1e-5)
        n_spans += len(spans)
    assert n_spans > 0


def test_reduce_max_pooling_updates(tiny_bert_dir):
    """The GENIA config's pooling (reduce_max) and the head's BiLSTM also train end to end."""
    spacy.util.fix_random_seed(0)
    nlp = build_nlp(tiny_bert_dir, pooling="reduce_max.v1", lstm_hidden=8)
    gold = make_nested_docs(nlp.vocab)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    optimizer = nlp.initialize(lambda: examples)
    from spacy_nested.ml.bridge import InPlaceUpdateShim

    shims = [shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    assert shims and not any(isinstance(shim, InPlaceUpdateShim) for shim in shims)  # no callback: untouched
    for _ in range(2):
        losses = train_step(nlp, examples, optimizer, drop=0.1)
        assert math.isfinite(losses["locate_label_ner"])
        assert losses["transformer"] > 0
    doc = nlp(Doc(nlp.vocab, words=long_tokens(40)))
    _check_group(doc)


def test_the_transformer_takes_the_in_place_optimizer_step(trained):
    """The training config's flat-memory callback gives the shared transformer's shim the step that
    leaves no chain per update (``bridge.update_in_place``); the weights still move (test above)."""
    from spacy_nested.ml.bridge import InPlaceUpdateShim

    shims = [shim for node in trained["nlp"].get_pipe("transformer").model.walk() for shim in node.shims]
    assert shims and all(isinstance(shim, InPlaceUpdateShim) for shim in shims)
