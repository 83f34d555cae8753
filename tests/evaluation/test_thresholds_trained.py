"""Every detector's decision threshold and doc.ents output, set the spaCy ways.

``threshold`` lives in the component's cfg (as spancat's): a load-time config override and
``spacy find-threshold`` change the predictions; the defaults leave the papers' decoding
as it was (tests/test_saved_pipelines.py holds that to the last span).
"""
import numpy
import pytest
import spacy
from spacy.cli.find_threshold import find_threshold

from tests.detectors.nested_fixture import SENTENCES, save_trained
from tests.detectors.test_common import N_ITER, _spans

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
TEXTS = [text for text, _ in SENTENCES]


@pytest.fixture(scope="module", params=DETECTORS)
def saved(request, tmp_path_factory):
    """A trained pipeline on disk with the fixture sentences as a gold DocBin beside it."""
    name = request.param
    return name, save_trained(name, N_ITER[name], tmp_path_factory.mktemp(name))


def _all_scores(nlp):
    return numpy.concatenate([_spans(doc)[1] for doc in nlp.pipe(TEXTS)])


@pytest.mark.slow
def test_threshold_is_in_cfg_and_a_load_time_override_changes_predictions(saved):
    name, path = saved
    nlp = spacy.load(path / "model")
    scores = _all_scores(nlp)
    assert len(scores) > 0
    cut = float(numpy.median(scores))
    raised = spacy.load(path / "model", config={"components": {name: {"threshold": cut}}})
    assert raised.get_pipe(name).cfg["threshold"] == cut
    kept = _all_scores(raised)
    assert 0 < len(kept) < len(scores) and (kept >= cut).all()
    none = spacy.load(path / "model", config={"components": {name: {"threshold": 1.0}}})
    assert len(_all_scores(none)) == 0


@pytest.mark.slow
def test_spacy_find_threshold_tunes_it(saved):
    name, path = saved
    best, best_score, scores = find_threshold(
        path / "model", path / "dev.spacy", name, "threshold", "spans_nested_f", n_trials=5, silent=True
    )
    assert set(scores) == set(numpy.linspace(0, 1, 5))
    assert best_score == max(scores.values()) > 0.5
    assert scores[1.0] == 0.0  # nothing is kept at 1: the threshold reached the decoding


def test_write_ents_gives_the_longest_non_overlapping_spans(saved):
    name, path = saved
    nlp = spacy.load(path / "model", config={"components": {name: {"write_ents": True}}})
    plain = spacy.load(path / "model")
    for doc, reference in zip(nlp.pipe(TEXTS), plain.pipe(TEXTS)):
        ents = [(e.start, e.end, e.label_) for e in doc.ents]
        spans = [(s.start, s.end, s.label_) for s in reference.spans["nested"]]
        assert set(ents) <= set(spans)
        assert all(a[1] <= b[0] for a, b in zip(ents, ents[1:]))  # sorted, no overlap
        for s, e, _ in spans:  # every span left out overlaps a kept one at least as long
            if (s, e) not in {(a, b) for a, b, _ in ents}:
                assert any(a < e and s < b and b - a >= e - s for a, b, _ in ents)
    assert any(len(doc.ents) for doc in nlp.pipe(TEXTS))
    assert not any(len(doc.ents) for doc in plain.pipe(TEXTS))
