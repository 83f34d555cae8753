"""boundary_offset_ner specifics: batch independence of a trained model, windows, switches."""
import numpy
import pytest
import spacy
from spacy.tokens import Doc

from spacy_nested.spans import ScoredSpans

from .nested_fixture import SENTENCES, build_nlp, make_examples, train

NAME = "boundary_offset_ner"


@pytest.fixture(scope="module")
def trained():
    nlp = build_nlp(NAME)
    train(nlp, make_examples(nlp), 150)
    return nlp


def _spans(doc):
    group = doc.spans["nested"]
    return [(sp.start, sp.end, sp.label_) for sp in group], numpy.asarray(group.attrs["scores"])


def test_prediction_alone_equals_prediction_among_longer_docs(trained):
    text = SENTENCES[1][0]  # 9 tokens
    longer = [SENTENCES[7][0], SENTENCES[1][0] + " and more"]  # 10 and 11 tokens: one length group, so padded
    alone = trained(text)
    spans, scores = _spans(alone)
    assert spans  # a non-empty prediction
    for batch_size in (2, 3):
        docs = list(trained.pipe(longer + [text], batch_size=batch_size))
        spans_b, scores_b = _spans(docs[-1])
        assert spans_b == spans
        assert numpy.allclose(scores_b, scores, atol=1e-5)


def test_windows_are_stitched_and_a_span_across_an_edge_is_found_once(monkeypatch):
    """A perfect window detector: every window reports the true spans it contains."""
    nlp = build_nlp(NAME, config={"max_length": 10, "window_overlap": 4})
    nlp.initialize(lambda: make_examples(nlp))
    pipe = nlp.get_pipe(NAME)
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


def test_one_sided_loss_masks_the_lower_triangle():
    nlp = build_nlp(NAME, config={"loss_both_triangles": False})
    nlp.initialize(lambda: make_examples(nlp))
    pipe = nlp.get_pipe(NAME)
    gold = [numpy.asarray([[0, 2, 1]])]
    _, targets = pipe.train_extras([(0, 0, 3)], gold)
    grid = targets.reshape(len(pipe.labels), 3, 3)
    assert (grid[:, [1, 2, 2], [0, 0, 1]] == -1).all()
    assert (grid[0][numpy.triu_indices(3)] >= 0).all()


@pytest.mark.parametrize("S", [0, 3])
def test_offset_range_is_configurable_and_saved(S, tmp_path):
    nlp = build_nlp(NAME, config={"model": {**_model(), "max_offset": S}})
    train(nlp, make_examples(nlp), 3)
    assert nlp.get_pipe(NAME).max_offset == S
    texts = [text for text, _ in SENTENCES]
    before = [_spans(d) for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "m")
    after = [_spans(d) for d in spacy.load(tmp_path / "m").pipe(texts)]
    assert [b[0] for b in before] == [a[0] for a in after]


def _model():
    from .nested_fixture import HEAD_SIZES
    from spacy.language import Language

    base = dict(Language.get_factory_meta(NAME).default_config["model"])
    base.update(HEAD_SIZES[NAME])
    base["tok2vec"] = {"@architectures": "spacy.Tok2VecListener.v1", "width": 48, "upstream": "*"}
    return base


def test_unknown_decode_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown decode_rule 'nearest'"):
        build_nlp(NAME, config={"decode_rule": "nearest"})
