"""Prediction encodes long docs in bounded pieces, with exactly the vectors of the whole doc.

``ml/detector.py`` runs an inline tok2vec whose receptive field it knows
over each run of segments the head scores, in pieces of at most
``model.attrs["block_tokens"]`` tokens plus that field on each side;
``block_tokens = 0`` encodes whole docs in one call, as before. These tests set
small pieces on docs of thousands of tokens and compare with whole-doc
encoding: the vectors each segment gets, and the spans and scores predicted,
for every detector; a listener (or any encoder of unknown reach) keeps
whole-doc encoding.
"""
from typing import List

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from thinc.api import Model

from spacy_nested.ml import detector
from spacy_nested.ml.detector import PREDICT_BLOCK_TOKENS, receptive_field, run_vectors
from spacy_nested.spans import chunk_segments
from tests.detectors.nested_fixture import HEAD_SIZES, SENTENCES, SMALL_TOK2VEC, build_nlp, make_examples, train

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
N_ITER = {"locate_label_ner": 40, "boundary_offset_ner": 120, "proposer_regressor_ner": 60}
BLOCK = 230  # tokens per piece in these tests (block_tokens): not a multiple of any window or window step
# the fixture's small tok2vec, inline, with a wider receptive field: 3 layers of windows of 2 tokens
INLINE_TOK2VEC = {
    **SMALL_TOK2VEC["model"],
    "encode": {**SMALL_TOK2VEC["model"]["encode"], "window_size": 2, "depth": 3},
}


def _words(n: int, offset: int = 0) -> List[str]:
    pool = [w for text, _ in SENTENCES for w in text.split(" ")]
    return [pool[(i * 7 + offset) % len(pool)] for i in range(n)]  # a stride of 7: not the fixture's sentences


def _build_inline(factory: str) -> spacy.Language:
    from spacy.language import Language

    model = Language.get_factory_meta(factory).default_config["model"].copy()
    model.update(HEAD_SIZES[factory])
    model["tok2vec"] = INLINE_TOK2VEC
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    config = {"model": model, "threshold": 0.0}
    if factory == "locate_label_ner":  # the paper's sampling: many spans after a short training on few words
        config.update(threshold=0.3, sampling={"neg_ratio": 5.0, "soft_examples": True})
    nlp.add_pipe(factory, config=config)
    return nlp


@pytest.fixture(scope="module", params=DETECTORS)
def inline(request):
    nlp = _build_inline(request.param)
    train(nlp, make_examples(nlp), N_ITER[request.param])
    return request.param, nlp


def _docs(nlp) -> List[Doc]:
    """A 3,000-token doc without sentence starts, one with sentences, and short docs beside them."""
    long_line = Doc(nlp.vocab, words=_words(3000))
    sentences = Doc(nlp.vocab, words=_words(1200, offset=3))
    for tok in sentences:
        tok.is_sent_start = tok.i % 13 == 0 and not 400 < tok.i < 900  # one 507-token sentence
    short = [Doc(nlp.vocab, words=_words(n, offset=n)) for n in (1, 5, 40)]
    return [short[0], long_line, short[1], sentences, Doc(nlp.vocab, words=[]), short[2]]


def _predict(pipe, docs, block_tokens: int):
    pipe.model.attrs["block_tokens"] = block_tokens
    try:
        return pipe.predict(docs)
    finally:
        pipe.model.attrs["block_tokens"] = PREDICT_BLOCK_TOKENS


def test_default_encoder_has_a_known_receptive_field():
    nlp = spacy.blank("en")
    for factory in DETECTORS:
        pipe = nlp.add_pipe(factory, name=factory)
        assert receptive_field(pipe.model.get_ref("tok2vec")) == 4  # MaxoutWindowEncoder: depth 4, window 1
        assert pipe.model.attrs["block_tokens"] == PREDICT_BLOCK_TOKENS


@pytest.mark.slow
def test_each_segment_gets_the_whole_doc_vectors(inline, monkeypatch):
    name, nlp = inline
    pipe = nlp.get_pipe(name)
    tok2vec = pipe.model.get_ref("tok2vec")
    assert receptive_field(tok2vec) == 6
    docs = _docs(nlp)
    segments = pipe.segments(docs)
    whole = tok2vec.predict(docs)
    calls: List[int] = []
    predict = Model.predict

    def counting(self, inputs):
        if self is tok2vec:
            calls.append(sum(len(x) for x in inputs))
        return predict(self, inputs)

    monkeypatch.setattr(Model, "predict", counting)
    seen = set()
    tables: dict = {}
    for indices in chunk_segments(segments, pipe.model.attrs["chunk_tokens"]):
        chunk = [segments[i] for i in indices]
        vectors, local = run_vectors(tok2vec, docs, chunk, 6, BLOCK, tables)
        for i, (r, s, e) in zip(indices, local):
            d, start, end = segments[i]
            numpy.testing.assert_array_equal(vectors[r][s:e], whole[d][start:end])
            seen.add(i)
    assert seen == set(range(len(segments)))
    assert len(calls) > 4000 // BLOCK and max(calls) <= BLOCK + 2 * 6  # bounded pieces, context included


@pytest.mark.slow
def test_blocked_prediction_equals_whole_doc_prediction(inline):
    name, nlp = inline
    pipe = nlp.get_pipe(name)
    docs = _docs(nlp)
    whole = _predict(pipe, docs, 0)
    blocked = _predict(pipe, docs, BLOCK)
    assert sum(len(found) for found in whole) > 20  # enough spans for the comparison to mean something
    for a, b in zip(whole, blocked):  # the same vectors and the same runs of the head: the same outputs
        assert a.spans.tolist() == b.spans.tolist()
        assert a.scores.tolist() == b.scores.tolist()
    default = _predict(pipe, docs, PREDICT_BLOCK_TOKENS)  # the long line in one block, sentences in another
    assert [f.spans.tolist() for f in default] == [f.spans.tolist() for f in whole]


@pytest.mark.slow
def test_threshold_sweep_uses_the_blocks_too(inline):
    name, nlp = inline
    pipe = nlp.get_pipe(name)
    docs = _docs(nlp)[1:2]
    pipe.model.attrs["block_tokens"] = BLOCK
    try:
        swept = pipe.predict_thresholds(docs, [0.0, 0.5])
    finally:
        pipe.model.attrs["block_tokens"] = PREDICT_BLOCK_TOKENS
    configured = pipe.cfg["threshold"]
    for threshold, found in zip([0.0, 0.5], swept):
        pipe.cfg["threshold"] = threshold
        try:
            assert [f.spans.tolist() for f in found] == [f.spans.tolist() for f in _predict(pipe, docs, 0)]
        finally:
            pipe.cfg["threshold"] = configured


def test_a_listener_keeps_whole_doc_encoding():
    nlp = build_nlp("locate_label_ner", config={"threshold": 0.0, "sampling": {"neg_ratio": 5.0, "soft_examples": True}})
    train(nlp, make_examples(nlp), 10)
    pipe = nlp.get_pipe("locate_label_ner")
    assert receptive_field(pipe.model.get_ref("tok2vec")) is None
    text = " ".join(_words(2000))
    before = nlp(text)
    expected = before.spans["nested"]
    pipe.model.attrs["block_tokens"] = 100  # no effect: the vectors come from the upstream tok2vec
    try:
        doc = nlp(text)
        found = doc.spans["nested"]
    finally:
        pipe.model.attrs["block_tokens"] = PREDICT_BLOCK_TOKENS
    assert len(found) > 0 and all(0 <= sp.start < sp.end <= 2000 for sp in found)
    assert [(sp.start, sp.end, sp.label_) for sp in found] == [(sp.start, sp.end, sp.label_) for sp in expected]
    assert list(found.attrs["scores"]) == list(expected.attrs["scores"])


def test_an_encoder_of_unknown_reach_keeps_whole_doc_encoding():
    nlp = spacy.blank("en")
    encode = {"@architectures": "spacy.TorchBiLSTMEncoder.v1", "width": 48, "depth": 1, "dropout": 0.0}
    lstm = {**INLINE_TOK2VEC, "encode": encode}
    pipe = nlp.add_pipe("locate_label_ner", config={"model": {"tok2vec": lstm}})
    assert receptive_field(pipe.model.get_ref("tok2vec")) is None


def test_a_run_merges_overlapping_and_close_segments_into_ranges():
    nlp = _build_inline("locate_label_ner")
    nlp.initialize(lambda: make_examples(nlp))
    tok2vec = nlp.get_pipe("locate_label_ner").model.get_ref("tok2vec")
    docs = [Doc(nlp.vocab, words=_words(n)) for n in (50, 10, 300, 700)]
    chunk = [(2, 220, 300), (0, 0, 50), (2, 0, 100), (2, 75, 175), (2, 150, 210), (3, 0, 100), (3, 113, 150), (3, 114, 120)]
    vectors, local = run_vectors(tok2vec, docs, chunk, 6, 40, {})
    # ranges: doc 0; doc 2's segments, overlapping or at most 2 x 6 tokens apart; doc 3 at 0..100
    # and, 13 tokens further, 113..150
    assert [len(v) for v in vectors] == [50, 300, 100, 37]
    assert local == [(1, 220, 300), (0, 0, 50), (1, 0, 100), (1, 75, 175), (1, 150, 210), (2, 0, 100), (3, 0, 37), (3, 1, 7)]
    whole = tok2vec.predict(docs)
    for (d, s, e), (r, a, b) in zip(chunk, local):
        numpy.testing.assert_array_equal(vectors[r][a:b], whole[d][s:e])


def test_static_vectors_read_the_pieces_too():
    """An inline tok2vec with static vectors (StaticVectors reads ``doc.vocab`` and ``to_array``)."""
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    rng = numpy.random.default_rng(0)
    for word in sorted({w for text, _ in SENTENCES for w in text.split(" ")})[::2]:  # half the words have a vector
        nlp.vocab.set_vector(word, rng.normal(size=8).astype("float32"))
    embed = {**INLINE_TOK2VEC["embed"], "include_static_vectors": True}
    pipe = nlp.add_pipe("locate_label_ner", config={"model": {"tok2vec": {**INLINE_TOK2VEC, "embed": embed}}})
    nlp.initialize(lambda: make_examples(nlp))
    tok2vec = pipe.model.get_ref("tok2vec")
    assert receptive_field(tok2vec) == 6
    docs = [Doc(nlp.vocab, words=_words(700)), Doc(nlp.vocab, words=_words(30, offset=1))]
    chunk = [(0, 0, 512), (0, 448, 700), (1, 0, 30)]
    vectors, local = run_vectors(tok2vec, docs, chunk, 6, 100, {})
    whole = tok2vec.predict(docs)
    for (d, s, e), (r, a, b) in zip(chunk, local):
        numpy.testing.assert_array_equal(vectors[r][a:b], whole[d][s:e])


def test_the_heap_is_trimmed_when_the_runs_grow(monkeypatch):
    """Free heap pages go back when the RSS after a run has grown PREDICT_TRIM_MB over the RSS after
    the first run (of the call, or since the last trim); a run's own working set is not growth."""
    rss = iter([600.0, 650.0, 720.0, 640.0, 730.0, 760.0, 650.0, 655.0])  # after each run
    trims: List[int] = []
    monkeypatch.setattr(detector, "PREDICT_TRIM_MB", 100)
    monkeypatch.setattr(detector, "_rss_mb", lambda: next(rss))
    monkeypatch.setattr(detector, "give_heap_back", lambda: trims.append(0))
    heap = detector._HeapTrimmer()
    found = []
    for _ in range(8):
        heap.after_run()
        found.append(len(trims))
    # 600 is the reference; 720 > 700: trim; 640 the new one (730 is not above it by 100); 760: trim
    assert found == [0, 0, 1, 1, 1, 2, 2, 2]
