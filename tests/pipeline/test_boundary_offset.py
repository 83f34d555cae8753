"""boundary_offset_ner specifics: the one-sided loss, the offset range, decoding rules.

Batch independence of a trained model and window stitching are common tests (test_common.py)."""
import numpy
import pytest
import spacy

from .nested_fixture import SENTENCES, build_nlp, make_examples, model_config, train
from .test_common import _spans

NAME = "boundary_offset_ner"


def test_one_sided_loss_masks_the_lower_triangle():
    nlp = build_nlp(NAME, config={"loss": {"both_triangles": False}})
    nlp.initialize(lambda: make_examples(nlp))
    pipe = nlp.get_pipe(NAME)
    gold = [numpy.asarray([[0, 2, 1]])]
    _, targets = pipe.train_extras([(0, 0, 3)], gold)
    grid = targets.reshape(len(pipe.labels), 3, 3)
    assert (grid[:, [1, 2, 2], [0, 0, 1]] == -1).all()
    assert (grid[0][numpy.triu_indices(3)] >= 0).all()


@pytest.mark.parametrize("S", [0, 3])
def test_offset_range_is_configurable_and_saved(S, tmp_path):
    nlp = build_nlp(NAME, config={"model": model_config(NAME, max_offset=S)})
    train(nlp, make_examples(nlp), 3)
    assert nlp.get_pipe(NAME).max_offset == S
    texts = [text for text, _ in SENTENCES]
    before = [_spans(d) for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "m")
    after = [_spans(d) for d in spacy.load(tmp_path / "m").pipe(texts)]
    assert [b[0] for b in before] == [a[0] for a in after]


def test_unknown_decode_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown decode rule 'nearest'"):
        build_nlp(NAME, config={"decoder": {"rule": "nearest"}})
