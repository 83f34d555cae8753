import torch

from spacy_nested.detectors.locate_label.head import LocateLabelHead, adjust_spans
from tests.detectors.head_defaults import head_args


def test_adjust_rounds_half_up_not_half_to_even():
    starts = torch.tensor([5, 5, 5, 5])
    ends = torch.tensor([8, 8, 8, 8])
    offsets = torch.tensor([[0.5, 0.5], [-0.5, 1.5], [2.5, 1.49], [-1.51, 0.0]])
    out = adjust_spans(starts, ends, offsets, torch.tensor([20, 20, 20, 20]))
    # floor(t + 1/2): 0.5->1, -0.5->0, 1.5->2, 2.5->3 (torch.round would give 0, -0, 2, 2)
    assert out.tolist() == [[6, 9], [5, 10], [8, 9], [3, 8]]


def test_adjust_moves_both_ways_clamps_and_falls_back():
    starts = torch.tensor([2, 2, 2])
    ends = torch.tensor([4, 4, 4])
    offsets = torch.tensor([[-5.0, 9.0], [-1.0, -1.0], [3.0, -2.0]])
    out = adjust_spans(starts, ends, offsets, torch.tensor([6, 6, 6]))
    assert out[0].tolist() == [0, 6]  # clamped to the sentence (eqs. 6-7)
    assert out[1].tolist() == [1, 3]  # left shift: unreachable with the code's sigmoid*N
    assert out[2].tolist() == [2, 4]  # collapsed span falls back to the seed


def _head(**kw):
    torch.manual_seed(0)
    return LocateLabelHead(**head_args("locate_label", hidden_width=8, **kw)).resize(4, 3)


def test_outputs_and_shapes_in_training():
    head = _head().train()
    X = torch.randn(2, 5, 4)
    cands = torch.tensor([[0, 0, 1], [0, 1, 4], [1, 0, 2]])
    f, off, cls, keep, adj = head(X, torch.tensor([5, 2]), cands)
    assert f.shape == (3,) and off.shape == (3, 2) and cls.shape == (3, 4)
    assert keep.tolist() == [0, 1, 2]  # the filter does not gate training
    assert (adj[:, 1] <= torch.tensor([5, 5, 2])).all()


def test_filter_gates_the_classifier_at_inference():
    head = _head().eval()
    head.filter_threshold = 2.0  # sigmoid never exceeds it
    with torch.no_grad():
        _, _, cls, keep, adj = head(torch.randn(1, 4, 4), torch.tensor([4]), torch.tensor([[0, 0, 1], [0, 1, 3]]))
    assert cls.shape[0] == 0 and keep.numel() == 0 and adj.shape == (0, 2)


def test_switches_remove_components():
    head = _head(use_filter=False, use_regressor=False).eval()
    assert head.filter is None and head.regressor is None
    with torch.no_grad():
        f, off, cls, keep, adj = head(torch.randn(1, 4, 4), torch.tensor([4]), torch.tensor([[0, 0, 1], [0, 1, 3]]))
    assert keep.tolist() == [0, 1] and torch.equal(off, torch.zeros(2, 2))
    assert adj.tolist() == [[0, 1], [1, 3]]


def test_resize_and_dims_round_trip():
    head = _head()
    assert head.dims() == {"n_inputs": 4, "n_labels": 3}
    head.resize(6, 2)
    assert head.classifier.net[-1].out_features == 3 and head.dims()["n_inputs"] == 6
