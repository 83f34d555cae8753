"""Threshold tuning from one prediction gives spaCy's find-threshold table, for the detectors and spancat."""
import pytest
import spacy
from spacy.cli.find_threshold import find_threshold

from spacy_nested.evaluation.thresholds import dev_examples, sweep_threshold, thresholds_for
from tests.detectors.nested_fixture import save_trained

PIPES = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner", "spancat"]
# updates after which each one's table over 6 thresholds has at least 3 values (measured)
PART_TRAINED = {"locate_label_ner": 20, "boundary_offset_ner": 120, "proposer_regressor_ner": 20, "spancat": 10}
SPANCAT = {"spans_key": "nested", "suggester": {"@misc": "spacy.ngram_suggester.v1", "sizes": [1, 2, 3, 4]}}


@pytest.fixture(scope="module", params=PIPES)
def saved(request, tmp_path_factory):
    """A trained pipeline on disk with its training sentences as a gold DocBin beside it."""
    name = request.param
    config = SPANCAT if name == "spancat" else None
    return name, save_trained(name, PART_TRAINED[name], tmp_path_factory.mktemp(name), config)


@pytest.mark.slow
def test_one_prediction_gives_find_thresholds_table(saved):
    name, path = saved
    _, _, expected = find_threshold(path / "model", path / "dev.spacy", name, "threshold", "spans_nested_f", n_trials=6)
    nlp = spacy.load(path / "model")
    found = sweep_threshold(nlp, name, dev_examples(nlp, path / "dev.spacy"), thresholds_for(6), "spans_nested_f")
    assert list(found) == pytest.approx(list(expected))
    assert list(found.values()) == pytest.approx(list(expected.values()), abs=1e-9)
    assert len(set(found.values())) >= 3  # the threshold reached the decoding: the table is not flat
    assert nlp.get_pipe(name).cfg["threshold"] == spacy.load(path / "model").get_pipe(name).cfg["threshold"]


def test_unknown_component_or_score_is_a_clear_error(saved):
    name, path = saved
    nlp = spacy.load(path / "model")
    examples = dev_examples(nlp, path / "dev.spacy")
    with pytest.raises(ValueError, match="no component 'nope'"):
        sweep_threshold(nlp, "nope", examples, [0.5], "spans_nested_f")
    with pytest.raises(ValueError, match="keeps no threshold"):
        sweep_threshold(nlp, "tok2vec", examples, [0.5], "spans_nested_f")
    with pytest.raises(ValueError, match="no score 'spans_other_f'"):
        sweep_threshold(nlp, name, examples, [0.5], "spans_other_f")
