"""boundary_offset_ner specifics: the one-sided loss, the offset range, decoding rules.

Batch independence of a trained model and window stitching are common tests (test_common.py)."""
import numpy
import pytest
import spacy

from tests.detectors.nested_fixture import build_nlp, make_examples, model_config
from tests.detectors.test_common import _assert_same, _spans, train_until_predicted

NAME = "boundary_offset_ner"


def test_one_sided_loss_masks_the_lower_triangle():
    nlp = build_nlp(NAME, config={"loss": {"both_triangles": False}})
    nlp.initialize(lambda: make_examples(nlp))
    pipe = nlp.get_pipe(NAME)
    gold = [numpy.asarray([[0, 2, 1]])]
    _, targets = pipe.train_extras([(0, 0, 3)], gold)
    grid = targets.labels.reshape(len(pipe.labels), 3, 3)
    assert targets.scores is None  # hard targets unless loss.soft_targets
    assert (grid[:, [1, 2, 2], [0, 0, 1]] == -1).all()
    assert (grid[0][numpy.triu_indices(3)] >= 0).all()


@pytest.mark.parametrize("S", [0, 3])
def test_offset_range_is_configurable_and_saved(S, tmp_path):
    spacy.blank("en")  # a Language instance loads the entry-point factories model_config reads
    nlp = build_nlp(NAME, config={"model": model_config(NAME, max_offset=S)})
    texts, before = train_until_predicted(nlp)
    assert nlp.get_pipe(NAME).max_offset == S
    assert sum(len(_spans(doc)[0]) for doc in before) > 0  # a round trip of empty lists proves nothing
    nlp.to_disk(tmp_path / "m")
    loaded = spacy.load(tmp_path / "m")
    assert loaded.get_pipe(NAME).max_offset == S
    _assert_same(before, loaded.pipe(texts))


def test_unknown_decode_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown decode rule 'nearest'"):
        build_nlp(NAME, config={"decoder": {"rule": "nearest"}})
