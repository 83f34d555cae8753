"""Soft targets of boundary_offset_ner and proposer_regressor_ner (``loss.soft_targets``): a target
span's score, as a distilled corpus gives the teacher's spans, weighs its grid cells or its matched
proposals; plain gold (no scores, or 1.0) trains as before. locate_label_ner's own are in
tests/detectors/locate_label/test_soft_targets.py, whose training test this one extends."""
import numpy
import pytest
import torch

from spacy_nested.detectors.boundary_offset.codec import encode, encode_scored
from spacy_nested.detectors.boundary_offset.loss import cell_cross_entropy
from spacy_nested.detectors.proposer_regressor.loss import assigned_costs
from tests.detectors.locate_label.test_soft_targets import TEACHER_SPAN, predicted_after_training
from tests.detectors.nested_fixture import build_nlp, make_examples

SOFT = {"loss": {"soft_targets": True}}


def test_grid_cells_take_the_score_of_the_span_that_labelled_them():
    gold = numpy.array([[0, 2, 1], [1, 3, 2], [3, 4, 1]])
    labels, scores = encode_scored(gold, numpy.array([1.0, 0.3, 0.6], dtype="float32"), 5, 2, 2)
    assert (labels == encode(gold, 5, 2, 2)).all()  # the labels do not depend on the scores
    assert scores[1, 1, 2] == pytest.approx(0.3)  # the centre of [1, 3) type 2
    assert scores[1, 0, 2] == pytest.approx(0.3) and labels[1, 0, 2] > 0  # an offset cell it wrote
    assert scores[0, 3, 3] == pytest.approx(0.6) and scores[0, 0, 1] == pytest.approx(1.0)
    assert (scores[labels == 0] == 1.0).all()  # out of range stays certain
    assert (scores == numpy.transpose(scores, (0, 2, 1))).all()  # mirrored as the labels are
    _, unscored = encode_scored(gold, None, 5, 2, 2)
    assert (unscored == 1.0).all()


def test_soft_cell_cross_entropy_mixes_the_label_and_out_of_range():
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    targets = torch.tensor([3, 0, -1, 5])
    hard = cell_cross_entropy(logits, targets, 0.01)
    assert cell_cross_entropy(logits, targets, 0.01, torch.ones(4)).item() == pytest.approx(hard.item(), rel=1e-6)
    logp = torch.log_softmax(logits, -1)
    s = torch.tensor([0.25, 0.9, 0.5, 0.0])  # cell 1 is out of range: its target is 0 whatever s is
    expected = ((0.25 * -logp[0, 3] + 0.75 * -logp[0, 0]) + -logp[1, 0] + -logp[3, 0]) / 3
    assert cell_cross_entropy(logits, targets, 0.0, s).item() == pytest.approx(expected.item(), rel=1e-5)


def test_soft_assigned_costs_mix_the_match_and_none():
    cost = torch.tensor([[1.0, 4.0], [2.0, 3.0], [5.0, 0.5]])
    none_cost = torch.tensor([0.1, 0.2, 0.3])
    targets = torch.tensor([0, -1, 1])
    hard = assigned_costs(cost, none_cost, targets)
    assert torch.allclose(assigned_costs(cost, none_cost, targets, torch.ones(2)), hard)
    soft = assigned_costs(cost, none_cost, targets, torch.tensor([0.5, 0.2]))
    assert torch.allclose(soft, torch.tensor([0.5 * 1.0 + 0.5 * 0.1, 0.2, 0.2 * 0.5 + 0.8 * 0.3]))


@pytest.mark.parametrize("name", ["boundary_offset_ner", "proposer_regressor_ner"])
def test_targets_carry_the_scores_only_when_switched_on(name):
    gold, scores = [numpy.array([[0, 2, 1]])], [numpy.array([0.4], dtype="float32")]
    for config, expected in ((SOFT, True), (None, False)):
        nlp = build_nlp(name, config)
        nlp.initialize(lambda: make_examples(nlp))
        _, targets = nlp.get_pipe(name).train_extras([(0, 0, 3)], gold, scores)
        carried = targets.scores if name == "boundary_offset_ner" else targets[0].scores
        assert (carried is not None) == expected
        if expected:
            assert numpy.isclose(carried, 0.4).any()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["boundary_offset_ner", "proposer_regressor_ner"])
def test_a_low_scored_teacher_span_is_learnt_as_unlikely_only_with_soft_targets(name):
    hard = predicted_after_training(name, {"threshold": 0.0}, 0.05)
    soft = predicted_after_training(name, {**SOFT, "threshold": 0.0}, 0.05)
    assert hard.get(TEACHER_SPAN, 0.0) > 0.5  # hard targets: a positive like the gold
    assert soft.get(TEACHER_SPAN, 0.0) < 0.5
    for span in [(0, 2, "protein"), (3, 4, "protein"), (7, 8, "cell_type")]:  # the gold is learnt either way
        assert hard.get(span, 0.0) > 0.5 and soft.get(span, 0.0) > 0.5
