"""The BOPN head: output layout, masking and batch independence, the 3D conv, the fusion term."""
import pytest
import torch
import torch.nn.functional as F

from spacy_nested.detectors.boundary_offset.head import BoundaryOffsetHead, OffsetConv3d, TypeFusion, _cell_mask, distance_buckets
from spacy_nested.spans import length_groups
from tests.detectors.head_defaults import head_args

D, M = 12, 3


def _head(**kw) -> BoundaryOffsetHead:
    torch.manual_seed(0)
    head = BoundaryOffsetHead(**head_args("boundary_offset", lstm_hidden=8, biaffine_hidden=10, **kw), n_inputs=D, n_labels=M)
    for module in head.modules():  # make the zero-initialised conditional terms matter
        if isinstance(module, torch.nn.Linear) and module.weight.abs().sum() == 0:
            torch.nn.init.normal_(module.weight, std=0.1)
    return head.eval()


def _split(logits: torch.Tensor, lengths, n_labels=M):
    out, offset = [], 0
    for n in lengths:
        out.append(logits[offset : offset + n_labels * n * n].reshape(n_labels, n, n, -1))
        offset += n_labels * n * n
    assert offset == logits.shape[0]
    return out


@pytest.mark.parametrize("S", [0, 1, 2, 3])
def test_output_is_every_cell_of_every_segment(S):
    head = _head(max_offset=S)
    lengths = [5, 2, 7]
    X = torch.randn(3, 7, D)
    (logits,) = head(X, torch.tensor(lengths))
    assert logits.shape == (sum(M * n * n for n in lengths), 4 * S + 2)


@pytest.mark.parametrize(
    "kw", [{}, {"conv_stacked": False}, {"conv_dilations": [1, 2, 3]}, {"type_input": False}, {"cln_fusion": False}]
)
def test_a_segment_does_not_depend_on_its_batch_mates(kw):
    head = _head(**kw)
    torch.manual_seed(1)
    short = torch.randn(1, 7, D)
    alone = head(short, torch.tensor([7]))[0]
    # 7 and 9 share a length group, so the short segment is padded to 9 (with large values)
    batch = torch.cat([torch.randn(1, 9, D), torch.cat([short, torch.randn(1, 2, D) * 50], dim=1), torch.randn(1, 9, D)])
    assert len(length_groups([9, 7, 9], head.max_cells)) == 1
    with_mates = _split(head(batch, torch.tensor([9, 7, 9]))[0], [9, 7, 9])[1]
    assert torch.allclose(alone.reshape(with_mates.shape), with_mates, atol=1e-5)


def test_length_grouping_does_not_change_the_result():
    X = torch.randn(5, 11, D)
    lengths = torch.tensor([11, 3, 8, 6, 10])
    one = _head(max_cells=10**6)(X, lengths)[0]
    many = _head(max_cells=1)(X, lengths)[0]
    assert torch.allclose(one, many, atol=1e-5)


def test_gradients_reach_the_inputs_and_every_part():
    head = _head().train()
    X = torch.randn(2, 6, D, requires_grad=True)
    (logits,) = head(X, torch.tensor([6, 3]))
    logits.pow(2).mean().backward()
    assert X.grad is not None and X.grad[1, 3:].abs().sum() == 0 and X.grad[1, :3].abs().sum() > 0
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_distance_buckets():
    b = distance_buckets(300, torch.device("cpu"))
    assert b[0, 0] == 19 and b[5, 5] == 19
    assert [int(b[d, 0]) for d in (1, 2, 3, 4, 7, 8, 16, 64, 255, 256, 299)] == [1, 2, 2, 3, 3, 4, 5, 7, 8, 9, 9]
    assert [int(b[0, d]) for d in (1, 2, 4, 256)] == [10, 11, 12, 18]


def test_conv_depth_zero_is_identity_and_depth_sets_layers():
    scores = torch.randn(2, M, 5, 5, 10)
    valid = _cell_mask(torch.tensor([5, 3]), 5)
    assert torch.equal(OffsetConv3d(10, [], True, True, 0.0)(scores, valid), scores)
    conv = OffsetConv3d(10, [1, 2, 3], True, True, 0.0).eval()
    assert len(conv.dilated) == 3 and conv.project.in_features == 30
    assert conv(scores, valid).shape == scores.shape


def test_conv_ignores_padding_cells():
    conv = OffsetConv3d(4, [1, 2], True, False, 0.0).eval()
    valid = _cell_mask(torch.tensor([3]), 6)
    scores = torch.randn(1, M, 6, 6, 4)
    noisy = scores.clone()
    noisy[:, :, 3:, :] = 1e3
    noisy[:, :, :, 3:] = -1e3
    a, b = conv(scores, valid), conv(noisy, valid)
    assert torch.allclose(a[:, :, :3, :3], b[:, :, :3, :3], atol=1e-5)


def test_type_fusion_equals_the_materialised_conditional_layer_norm():
    """The code builds CLN(h^Y_m | v_ij) as a (B, M, N, N, d) tensor, then a Linear."""
    torch.manual_seed(0)
    fusion = TypeFusion(8, 6, 5)
    torch.nn.init.normal_(fusion.norm.to_gamma.weight)
    torch.nn.init.normal_(fusion.norm.to_beta.weight)
    types, V, positions = torch.randn(2, M, 8), torch.randn(2, 4, 4, 4), torch.randn(4, 4, 2)
    cells = torch.cat([V, positions.expand(2, 4, 4, 2)], dim=-1)  # v̂ = [V; positions], (B, N, N, 6)
    cln = fusion.norm(types[:, :, None, None, :], cells[:, None])  # (B, M, N, N, d)
    assert torch.allclose(fusion(types, (V, positions)), fusion.out(cln), atol=1e-5)


def test_cell_linear_equals_linear_on_the_concatenation():
    from spacy_nested.detectors.boundary_offset.head import cell_linear

    linear = torch.nn.Linear(7, 3)
    V, positions = torch.randn(2, 5, 5, 4), torch.randn(5, 5, 3)
    full = linear(torch.cat([V, positions.expand(2, 5, 5, 3)], dim=-1))
    assert torch.allclose(cell_linear(linear, (V, positions)), full, atol=1e-6)
    assert cell_linear(torch.nn.Linear(4, 3), (V, None)).shape == (2, 5, 5, 3)


def test_resize_and_dims():
    head = BoundaryOffsetHead(**head_args("boundary_offset", lstm_hidden=4, biaffine_hidden=6))
    head.resize(n_inputs=7, n_labels=2)
    assert head.dims() == {"n_inputs": 7, "n_labels": 2}
    assert head(torch.randn(1, 3, 7), torch.tensor([3]))[0].shape == (2 * 9, 10)
    assert head(torch.zeros(0, 0, 7), torch.zeros(0, dtype=torch.long))[0].shape == (0, 10)
    with pytest.raises(ValueError, match="lstm_hidden"):
        BoundaryOffsetHead(**head_args("boundary_offset", lstm_hidden=0))


def test_paper_reading_of_eq5_replaces_the_scores():
    scores = torch.randn(1, M, 4, 4, 6)
    valid = _cell_mask(torch.tensor([4]), 4)
    torch.manual_seed(0)
    replace = OffsetConv3d(6, [1], True, False, 0.0).eval()
    torch.manual_seed(0)
    residual = OffsetConv3d(6, [1], True, True, 0.0).eval()
    assert torch.allclose(residual(scores, valid) - scores, replace(scores, valid), atol=1e-6)
    assert F.mse_loss(replace(scores, valid), scores) > 0
