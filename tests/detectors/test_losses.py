import math

import pytest
import torch

from spacy_nested.detectors.locate_label.loss import binary_focal_loss, categorical_loss, overlap_loss, smooth_l1
from spacy_nested.detectors.proposer_regressor.loss import assigned_costs, matching_costs


def test_binary_focal_matches_hand_computation():
    logits = torch.tensor([0.0, 2.0])
    targets = torch.tensor([1.0, 0.0])
    weights = torch.tensor([0.5, 1.0])
    p = 1 / (1 + math.exp(-2.0))
    expected = (0.5 * (0.5**2) * -math.log(0.5) + 1.0 * (p**2) * -math.log(1 - p)) / 2
    assert binary_focal_loss(logits, targets, weights, gamma=2.0).item() == pytest.approx(expected, rel=1e-5)


def test_binary_focal_gamma0_is_bce():
    logits = torch.randn(7)
    targets = (torch.rand(7) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert binary_focal_loss(logits, targets, gamma=0.0).item() == pytest.approx(bce.item(), rel=1e-5)


def test_categorical_loss_weighted_ce_and_focal():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    targets = torch.tensor([1, 2])
    weights = torch.tensor([1.0, 0.25])
    logp = torch.log_softmax(logits, -1)
    ce = [-logp[0, 1].item(), -logp[1, 2].item()]
    assert categorical_loss(logits, targets, weights).item() == pytest.approx((ce[0] + 0.25 * ce[1]) / 2, rel=1e-5)
    p = [math.exp(-c) for c in ce]
    focal = ((1 - p[0]) ** 2 * ce[0] + 0.25 * (1 - p[1]) ** 2 * ce[1]) / 2
    assert categorical_loss(logits, targets, weights, gamma=2.0).item() == pytest.approx(focal, rel=1e-5)


def test_smooth_l1_sums_both_offsets():
    pred = torch.tensor([[0.5, -3.0]])
    target = torch.tensor([[0.0, 0.0]])
    # 0.5 * 0.5^2 = 0.125 ; |−3| − 0.5 = 2.5
    assert smooth_l1(pred, target).item() == pytest.approx(2.625)


def test_overlap_loss_hand_values_and_clamp():
    pred = torch.tensor([[0.0, 4.0], [10.0, 12.0]])
    gold = torch.tensor([[2, 6], [0, 2]])
    # 1 - 2/6 ; disjoint: clamped to exactly 1 (the code's unclamped version gives > 1)
    assert overlap_loss(pred, gold).item() == pytest.approx(((1 - 2 / 6) + 1.0) / 2)


def test_empty_inputs_give_zero():
    assert binary_focal_loss(torch.zeros(0), torch.zeros(0)).item() == 0.0
    assert smooth_l1(torch.zeros(0, 2), torch.zeros(0, 2)).item() == 0.0


def test_cell_cross_entropy_ignores_minus_one_and_smooths():
    from spacy_nested.detectors.boundary_offset.loss import cell_cross_entropy

    logits = torch.randn(5, 4, requires_grad=True)
    targets = torch.tensor([0, -1, 3, -1, 1])
    keep = targets >= 0
    expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(cell_cross_entropy(logits, targets), expected)
    assert cell_cross_entropy(logits, targets, 0.01) > 0
    empty = cell_cross_entropy(logits, torch.full((5,), -1))
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_matching_costs_are_eq24_with_the_floor_for_out_of_reach_gold():
    log_pointer = torch.log_softmax(torch.randn(3, 5), dim=-1)
    log_types = torch.log_softmax(torch.randn(3, 4), dim=-1)  # 3 types + None
    reach = torch.tensor([[0, -1], [4, 2], [-1, -1]])
    types = torch.tensor([2, 0])
    cost, none_cost = matching_costs(log_pointer, log_types, reach, types)
    assert cost.shape == (3, 2)
    assert cost[1, 0].item() == pytest.approx(-(log_types[1, 2] + log_pointer[1, 4]).item(), rel=1e-6)
    assert cost[0, 1].item() == pytest.approx(-log_types[0, 0].item() - math.log(1e-8), rel=1e-6)
    assert torch.allclose(none_cost, -log_types[:, -1])


def test_assigned_costs_pick_gold_or_none_and_carry_gradients():
    logits = torch.randn(3, 4, requires_grad=True)
    log_types = torch.log_softmax(logits, dim=-1)
    log_pointer = torch.log_softmax(torch.randn(3, 5), dim=-1)
    cost, none_cost = matching_costs(log_pointer, log_types, torch.tensor([[1], [2], [3]]), torch.tensor([1]))
    terms = assigned_costs(cost, none_cost, torch.tensor([-1, 0, -1]))
    assert torch.allclose(terms, torch.stack([none_cost[0], cost[1, 0], none_cost[2]]))
    terms.sum().backward()
    assert logits.grad.abs().sum() > 0


def test_no_gold_means_every_proposal_pays_none():
    log_types = torch.log_softmax(torch.randn(4, 3), dim=-1)
    cost, none_cost = matching_costs(torch.zeros(4, 2), log_types, torch.zeros((4, 0), dtype=torch.long), torch.zeros(0))
    assert cost.shape == (4, 0)
    assert torch.allclose(assigned_costs(cost, none_cost, torch.full((4,), -1)), -log_types[:, -1])
