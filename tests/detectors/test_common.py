"""Behaviour every nested span detector shares (parametrised over the factories)."""
import numpy
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy.training import Example

from spacy_nested.spans import ScoredSpans, chunk_segments
from tests.detectors.nested_fixture import LABELS, SENTENCES, build_nlp, make_doc, make_examples, model_config, train

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
# detectors that cut docs without sentence starts into overlapping, stitched windows
WINDOWED = ["boundary_offset_ner", "proposer_regressor_ner"]
# detectors whose decoder drops a span when the None class is the most probable (switch: none_veto)
VETOING = ["locate_label_ner", "proposer_regressor_ner"]
# updates to overfit the fixture (BOPN's zero-initialised conditional layer norm starts slowly)
N_ITER = {"locate_label_ner": 60, "boundary_offset_ner": 150, "proposer_regressor_ner": 100}
# each head's own dropout settings (its model block); the fixture sets them all to 0
HEAD_DROPOUTS = {
    "locate_label_ner": ["dropout"],
    "boundary_offset_ner": ["lstm_dropout", "biaffine_dropout", "conv_dropout"],
    "proposer_regressor_ner": ["dropout"],
}


@pytest.fixture(scope="module", params=DETECTORS)
def trained(request):
    nlp = build_nlp(request.param)
    examples = make_examples(nlp)
    losses = train(nlp, examples, N_ITER[request.param])
    return request.param, nlp, examples, losses


def _spans(doc, key="nested"):
    group = doc.spans[key]
    return [(sp.start, sp.end, sp.label_) for sp in group], numpy.asarray(group.attrs["scores"], dtype="float64")


def _assert_same(docs_a, docs_b):
    """The same docs with the same spans and scores, and some spans among them."""
    docs_a, docs_b = list(docs_a), list(docs_b)
    assert len(docs_a) == len(docs_b) > 0
    n_spans = 0
    for a, b in zip(docs_a, docs_b):
        spans_a, scores_a = _spans(a)
        spans_b, scores_b = _spans(b)
        assert spans_a == spans_b
        assert numpy.allclose(scores_a, scores_b, atol=1e-5)
        n_spans += len(spans_a)
    assert n_spans > 0, "equal empty predictions prove nothing"


def train_until_predicted(nlp, n_examples=3, learn_rate=0.01, step=2, max_iter=60, seed=0):
    """Initialize, then update on the first `n_examples` fixture sentences (a fast learning
    rate) `step` updates at a time until the pipeline predicts spans on their texts.
    Returns the texts and the docs of that first non-empty prediction."""
    examples = make_examples(nlp)[:n_examples]
    texts = [text for text, _ in SENTENCES[:n_examples]]
    spacy.util.fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    for _ in range(0, max_iter, step):
        for _ in range(step):
            nlp.update(examples, sgd=optimizer, drop=0.0)
        docs = list(nlp.pipe(texts))
        if sum(len(doc.spans["nested"]) for doc in docs) > 0:
            return texts, docs
    raise AssertionError(f"no spans predicted after {max_iter} updates")


def test_registered_without_import():
    nlp = spacy.blank("en")
    for name in DETECTORS:
        nlp.add_pipe(name)
        assert nlp.get_pipe(name).key == "nested"


@pytest.mark.slow
def test_overfits_small_nested_set(trained):
    name, nlp, examples, losses = trained
    assert losses[-1] < 0.2 * losses[0]
    scores = nlp.evaluate(examples)
    assert scores["spans_nested_f"] >= 0.9
    assert set(scores["spans_nested_per_type"]) <= set(LABELS)


def test_predictions_are_well_formed(trained):
    name, nlp, examples, _ = trained
    docs = list(nlp.pipe(text for text, _ in SENTENCES))
    assert sum(len(d.spans["nested"]) for d in docs) > 0
    for doc in docs:
        spans, scores = _spans(doc)
        assert len(scores) == len(spans)
        assert ((scores >= 0) & (scores <= 1)).all()
        assert all(0 <= s < e <= len(doc) and label in LABELS for s, e, label in spans)


def test_double_typed_span_is_scored_per_type(trained):
    _, nlp, examples, _ = trained
    doc = nlp(SENTENCES[0][0])
    found = set(_spans(doc)[0])
    assert {(0, 1, "protein"), (0, 2, "DNA")} <= found  # nested pair on the same start


def test_label_order_is_fixed_and_stored(trained, tmp_path):
    name, nlp, _, _ = trained
    assert list(nlp.get_pipe(name).labels) == LABELS
    nlp.to_disk(tmp_path / "p")
    assert list(spacy.load(tmp_path / "p").get_pipe(name).labels) == LABELS


def test_disk_and_bytes_round_trip_identical(trained, tmp_path):
    name, nlp, _, _ = trained
    texts = [text for text, _ in SENTENCES]
    before = list(nlp.pipe(texts))
    nlp.to_disk(tmp_path / "model")
    _assert_same(before, spacy.load(tmp_path / "model").pipe(texts))
    fresh = build_nlp(name)
    fresh.initialize(lambda: make_examples(fresh))
    fresh.from_bytes(nlp.to_bytes())
    _assert_same(before, fresh.pipe(texts))


def test_none_veto_switch_reaches_a_loaded_pipeline(trained, tmp_path):
    """``decoder.none_veto = false`` (config override at load) keeps spans the None class vetoed."""
    name, nlp, _, _ = trained
    if name not in VETOING:
        pytest.skip(f"{name} has no None class to veto with")
    texts = [text for text, _ in SENTENCES]
    nlp.to_disk(tmp_path / "model")

    def load(veto: bool):
        settings = {"threshold": 0.0, "decoder": {"none_veto": veto}}
        return spacy.load(tmp_path / "model", config={"components": {name: settings}})

    vetoed, free = load(True), load(False)
    assert free.get_pipe(name).decoder.none_veto is False
    n_vetoed = sum(len(doc.spans["nested"]) for doc in vetoed.pipe(texts))
    found = [_spans(doc) for doc in free.pipe(texts)]
    assert n_vetoed > 0 and sum(len(spans) for spans, _ in found) > n_vetoed
    assert all(((scores >= 0) & (scores <= 1)).all() for _, scores in found)


def test_batch_size_and_n_process_do_not_change_output(trained):
    name, nlp, _, _ = trained
    texts = [text for text, _ in SENTENCES] * 4
    one = list(nlp.pipe(texts, batch_size=1))
    _assert_same(one, nlp.pipe(texts, batch_size=32))
    _assert_same(one, nlp.pipe(texts, batch_size=32, n_process=2))


def test_prediction_alone_equals_prediction_among_longer_docs(trained):
    name, nlp, _, _ = trained
    text = SENTENCES[1][0]  # 9 tokens
    longer = [SENTENCES[7][0], SENTENCES[1][0] + " and more"]  # 10 and 11 tokens: padded together
    alone = nlp(text)
    spans, scores = _spans(alone)
    assert spans  # a non-empty prediction
    for batch_size in (2, 3):
        _assert_same([alone], list(nlp.pipe(longer + [text], batch_size=batch_size))[-1:])


@pytest.mark.parametrize("name", WINDOWED)
def test_windows_are_stitched_and_a_span_across_an_edge_is_found_once(name, monkeypatch):
    """A perfect window detector: every window reports the true spans it contains."""
    nlp = build_nlp(name, config={"segmenter": {"max_length": 10, "overlap": 4}})
    nlp.initialize(lambda: make_examples(nlp))
    pipe = nlp.get_pipe(name)
    truth = [(2, 5, 0), (8, 11, 1), (9, 10, 2), (14, 17, 0), (20, 22, 3)]  # (8, 11) crosses the edge at 10

    def oracle(outputs, extras, segments):
        found = []
        for _, s, e in segments:
            rows = [(a - s, b - s, lab) for a, b, lab in truth if s <= a and b <= e]
            found.append(ScoredSpans(numpy.asarray(rows, dtype="int64").reshape(-1, 3), numpy.ones(len(rows), dtype="float32")))
        return found

    monkeypatch.setattr(pipe, "decode", oracle)
    doc = Doc(nlp.vocab, words=[f"w{i}" for i in range(23)])
    assert pipe.segments([doc]) == [(0, 0, 10), (0, 6, 16), (0, 12, 22), (0, 18, 23)]
    doc = pipe(nlp.get_pipe("tok2vec")(doc))
    got = sorted((sp.start, sp.end, pipe.labels.index(sp.label_)) for sp in doc.spans["nested"])
    assert got == sorted(truth)


@pytest.mark.parametrize("name", DETECTORS)
def test_gradient_reaches_shared_tok2vec(name):
    """One backward pass, no optimizer step: the detector's loss reaches every tok2vec weight
    through the listener, as a non-zero gradient (weight decay alone cannot fake it)."""
    nlp = build_nlp(name)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=False, drop=0.0)  # backprop only: gradients stay accumulated
    assert losses[name] > 0
    tok2vec = nlp.get_pipe("tok2vec").model
    grads = _grads(tok2vec)
    assert grads and len(grads) == len(_params(tok2vec))
    zero = [key for key, grad in grads.items() if not numpy.abs(grad).sum() > 0]
    assert not zero, f"no gradient reached these tok2vec params: {zero}"
    assert losses["tok2vec"] > 0  # the listener handed a non-zero d_tokvecs back


def _grads(model):
    return {
        (node.name, node.id, n): node.get_grad(n) for node in model.walk() for n in node.param_names if node.has_grad(n)
    }


def _params(model):
    return [node.get_param(n) for node in model.walk() for n in node.param_names if node.has_param(n)]


@pytest.mark.slow
def test_odd_docs_work(trained):
    name, nlp, _, _ = trained
    long_text = " ".join(SENTENCES[1][0].split(" ") * 250)  # 2,250 tokens, no sentence starts
    for text in ["", "IL-2", "  ", long_text, "ünïcödé 🙂 IL-2 gene"]:
        doc = nlp(text)
        spans, scores = _spans(doc)
        assert all(0 <= s < e <= len(doc) for s, e, _ in spans)
        assert ((scores >= 0) & (scores <= 1)).all()


def test_sentence_starts_make_segments(trained):
    name, nlp, _, _ = trained
    words = []
    for text, _ in SENTENCES[:3]:
        words.extend(text.split(" "))
    doc = Doc(nlp.vocab, words=words)
    i = 0
    for text, _ in SENTENCES[:3]:
        n = len(text.split(" "))
        for j in range(n):
            doc[i + j].is_sent_start = j == 0
        i += n
    for _, proc in nlp.pipeline:
        doc = proc(doc)
    per_sentence = [nlp(text) for text, _ in SENTENCES[:3]]
    offset, expected = 0, []
    for d in per_sentence:
        expected.extend((s + offset, e + offset, label) for s, e, label in _spans(d)[0])
        offset += len(d)
    got = _spans(doc)[0]
    assert sorted(got) == sorted(expected)
    lengths = [len(text.split(" ")) for text, _ in SENTENCES[:3]]
    edges = (lengths[0], lengths[0] + lengths[1])
    assert all(not any(s < b < e for b in edges) for s, e, _ in got)  # nothing crosses a sentence edge


def test_initialize_without_spans_is_a_clear_error():
    for name in DETECTORS:
        nlp = build_nlp(name)
        examples = [Example(nlp.make_doc("a b c"), make_doc(nlp.vocab, "a b c", [], key="sc"))]
        with pytest.raises(ValueError, match="no labels.*spans_key"):
            nlp.initialize(lambda: examples)


def test_unknown_label_in_update_is_a_clear_error():
    for name in DETECTORS:
        nlp = build_nlp(name)
        nlp.initialize(lambda: make_examples(nlp))
        bad = [Example(nlp.make_doc("a b c"), make_doc(nlp.vocab, "a b c", [(0, 1, "GPE")]))]
        with pytest.raises(ValueError, match="'GPE' is not in the component's label set"):
            nlp.update(bad)


def test_labels_given_at_initialize_keep_their_order():
    for name in DETECTORS:
        nlp = build_nlp(name)
        given = ["protein", "DNA", "RNA", "cell_type", "cell_line", "extra"]
        nlp.initialize(lambda: make_examples(nlp))  # sorted labels first
        nlp.config["initialize"]["components"][name] = {"labels": given}
        nlp.initialize(lambda: make_examples(nlp))  # re-initializing takes the given order
        assert list(nlp.get_pipe(name).labels) == given
        assert nlp.get_pipe(name).model.get_dim("nO") == len(given)


def test_scorer_keys_follow_spans_key():
    for name in DETECTORS:
        nlp = build_nlp(name, config={"spans_key": "ents_nested"})
        examples = make_examples(nlp, key="ents_nested")
        nlp.initialize(lambda: examples)
        scores = nlp.evaluate(examples)
        assert {"spans_ents_nested_p", "spans_ents_nested_r", "spans_ents_nested_f"} <= set(scores)


WORDS = sorted({w for text, _ in SENTENCES for w in text.split(" ")})
_token = st.one_of(
    st.sampled_from(WORDS),  # words the pipeline has seen
    st.sampled_from([" ", "\n", "\t", "  "]),  # whitespace tokens
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6),  # any unicode
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs_words=st.lists(st.lists(_token, max_size=30), min_size=1, max_size=5), batch_size=st.integers(1, 4))
def test_fuzzed_docs_keep_the_prediction_invariants(trained, docs_words, batch_size):
    """Random token sequences (empty, whitespace, unicode) through nlp.pipe: every prediction
    lies inside its doc, has a label of the component and a score in [0, 1]."""
    name, nlp, _, _ = trained
    labels = set(nlp.get_pipe(name).labels)
    docs = list(nlp.pipe([Doc(nlp.vocab, words=words) for words in docs_words], batch_size=batch_size))
    for doc, words in zip(docs, docs_words):
        assert [t.text for t in doc] == words
        spans, scores = _spans(doc)
        assert len(scores) == len(spans)
        assert ((scores >= 0) & (scores <= 1)).all()
        assert all(0 <= s < e <= len(doc) and label in labels for s, e, label in spans)


def test_gold_labels_unseen_in_training_are_scored_as_misses(trained):
    name, nlp, _, _ = trained
    text = SENTENCES[0][0]
    examples = [Example(nlp.make_doc(text), make_doc(nlp.vocab, text, [(0, 1, "GPE"), (3, 5, "protein")]))]
    scores = nlp.evaluate(examples)
    assert "GPE" in scores["spans_nested_per_type"]
    assert scores["spans_nested_per_type"]["GPE"]["r"] == 0.0


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_a_non_finite_loss_stops_training_naming_component_and_step(bad, monkeypatch):
    for name in DETECTORS:
        nlp = build_nlp(name)
        examples = make_examples(nlp)
        optimizer = nlp.initialize(lambda: examples)
        nlp.update(examples, sgd=optimizer)  # update step 0 is fine
        pipe = nlp.get_pipe(name)
        real = pipe.compute_loss
        monkeypatch.setattr(pipe, "compute_loss", lambda *args: real(*args) * float(bad))
        with pytest.raises(ValueError, match=rf"\[{name}\] loss is {bad} at update step 1; training stopped"):
            nlp.update(examples, sgd=optimizer)


def test_chunked_prediction_equals_one_forward_pass(trained):
    """The head runs over chunks of segments at prediction; chunking never changes a prediction."""
    name, nlp, _, _ = trained
    pipe = nlp.get_pipe(name)
    texts = [text for text, _ in SENTENCES] * 3
    whole = list(nlp.pipe(texts, batch_size=64))
    default = pipe.model.attrs["chunk_tokens"]
    pipe.model.attrs["chunk_tokens"] = 12  # about one sentence per forward pass
    try:
        assert len(chunk_segments(pipe.segments(whole), 12)) > len(SENTENCES)
        _assert_same(whole, nlp.pipe(texts, batch_size=64))
    finally:
        pipe.model.attrs["chunk_tokens"] = default


@pytest.mark.parametrize("name", DETECTORS)
def test_head_dropout_is_off_at_prediction(name):
    """With the head's dropouts at 0.5, predicting the same texts twice gives the same spans
    and scores: prediction runs the head in eval mode."""
    settings = {key: 0.5 for key in HEAD_DROPOUTS[name]}
    spacy.blank("en")  # a Language instance loads the entry-point factories model_config reads
    nlp = build_nlp(name, config={"model": model_config(name, **settings)})
    assert all(nlp.config["components"][name]["model"][key] == 0.5 for key in settings)
    texts, first = train_until_predicted(nlp)  # some spans predicted
    _assert_same(first, nlp.pipe(texts))


def test_chunk_segments_sorts_by_length_within_a_padded_budget():
    segments = [(0, 0, 5), (0, 5, 9), (1, 0, 20), (2, 0, 3), (2, 3, 6)]  # lengths 5, 4, 20, 3, 3
    chunks = chunk_segments(segments, 10)
    assert chunks == [[3, 4], [1, 0], [2]]  # 2 x 3 padded tokens (a third, of 4, would make 12); 2 x 5; 20 alone
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(segments)))
    for chunk in chunks[:-1]:
        assert len(chunk) * max(segments[i][2] - segments[i][1] for i in chunk) <= 10
    assert chunk_segments([], 10) == []
