"""The Proposer–Regressor head: output layout, pyramid depth, batch independence,
proposal bounds (eq. 9), pointer masking, gradients and the work counters."""
import numpy
import pytest
import torch

from spacy_nested.detectors.proposer_regressor.codec import pointer_table
from spacy_nested.detectors.proposer_regressor.head import ProposerRegressorHead, gaussian_log_prior, level_lengths, level_widths
from tests.detectors.head_defaults import head_args

D, M, W = 10, 3, 4
C = (2 * W + 1) * W
SWITCHES_OFF = [
    {"encoder_gru": False},
    {"backward": False},
    {"pool": "max"},
    {"query": "fused"},
    {"n_layers": 0},
    {"spatial": False},
    {"gate": "ffn"},
    {"category_embedding": False},
    {"location_iteration": False},
    {"logits_iteration": False},
]
CODE_CHOICES = [{}, {"pool": "max"}, {"query": "fused"}, {"gate": "ffn"}]
CODE_CHOICES.append({"pool": "max", "query": "fused", "gate": "ffn"})


# The proposal scorer's output bias shifts every candidate's score by the same amount before the
# softmax over a token's candidates (eq. 8), so its gradient is zero but for rounding.
SHIFT_ONLY = "proposer.scorer.net.4.bias"


def _head(**kw) -> ProposerRegressorHead:
    torch.manual_seed(0)
    args = head_args("proposer_regressor", hidden_width=16, n_heads=4, ffn_width=32, n_layers=2, max_width=W)
    args.update(n_inputs=D, n_labels=M, **kw)
    return ProposerRegressorHead(**args).eval()


def _batch(lengths, seed=0, pad=0.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(len(lengths), max(lengths), D, generator=g)
    for b, n in enumerate(lengths):
        X[b, n:] = pad * torch.randn(X.shape[1] - n, D, generator=g)
    return X, torch.tensor(lengths)


def _rows(out: torch.Tensor, lengths, b: int) -> torch.Tensor:
    start = sum(lengths[:b])
    return out[start : start + lengths[b]]


@pytest.mark.parametrize("kw", [{}] + SWITCHES_OFF)
@pytest.mark.parametrize("kernels", [[], [2], [2, 3], [2, 2, 2]])
def test_one_pointer_row_and_one_type_row_per_token(kw, kernels):
    head = _head(kernels=kernels, **kw)
    lengths = [7, 1, 0, 4, 2]
    pointer, types = head(*_batch(lengths))
    assert pointer.shape == (sum(lengths), C) and types.shape == (sum(lengths), M + 1)
    assert torch.isfinite(types).all() and torch.isfinite(pointer).all()


def test_level_lengths_follow_the_formula():
    for kernels in ([], [2], [2, 3], [3, 3, 3]):
        widths = level_widths(kernels)
        assert widths == [1 + sum(k - 1 for k in kernels[:level]) for level in range(len(kernels) + 1)]  # eq. 5
        for n in range(1, 41):
            expected = [n]
            for k in kernels:
                expected.append(max(expected[-1] - k + 1, 0))
            assert level_lengths(n, kernels) == expected
            assert level_lengths(n, kernels) == [max(n - v + 1, 0) for v in widths]


@pytest.mark.parametrize("kernels", [[], [2], [2, 3], [3, 3, 3]])
def test_pyramid_levels_have_the_segment_lengths(kernels):
    head = _head(kernels=kernels)
    lengths = [9, 1, 3, 6]
    p = head.propose(*_batch(lengths))
    padded = [n for n in level_lengths(9, kernels) if n > 0]
    assert [h.shape[1] for h in p.levels] == padded  # a level no segment reaches is skipped
    for level, (h, sizes) in enumerate(zip(p.levels, p.level_lengths)):
        for b, n in enumerate(lengths):
            n_l = level_lengths(n, kernels)[level]
            assert int(sizes[b]) == n_l
            assert h[b, n_l:].abs().sum() == 0 and (n_l == 0 or h[b, :n_l].abs().sum() > 0)


@pytest.mark.parametrize("kw", CODE_CHOICES)
def test_a_segment_does_not_depend_on_its_batch_mates(kw):
    head = _head(kernels=[2, 3], **kw)
    head.max_cells = 0  # one padded batch: the masking is under test, not the length groups
    for short in (1, 2, 5):  # 1 and 2 have fewer pyramid levels than their batch mates
        X, lengths = _batch([short], seed=short)
        alone = head(X, lengths)
        mates = [11, short, 8]
        batch, _ = _batch(mates, seed=7, pad=100.0)
        batch[1, :short] = X[0]
        together = head(batch, torch.tensor(mates))
        for a, b in zip(alone, together):
            assert torch.allclose(a, _rows(b, mates, 1), atol=1e-5)


def test_length_groups_give_the_outputs_and_gradients_of_one_padded_batch():
    lengths = [11, 3, 8, 1, 10, 6]
    results = []
    for max_cells in (0, 1, 200):  # one batch; every segment alone; groups of similar length
        head = _head(kernels=[2, 3])
        head.max_cells = max_cells
        X, lengths_t = _batch(lengths, pad=100.0)
        X.requires_grad_(True)
        pointer, types = head(X, lengths_t)
        inside = pointer > torch.finfo(pointer.dtype).min
        (torch.log_softmax(pointer, -1).masked_fill(~inside, 0).sum() + types.pow(2).sum()).backward()
        results.append((pointer, types, X.grad, head.n_attended))
    one = results[0]
    for pointer, types, grad, attended in results[1:]:
        assert torch.allclose(pointer, one[0], atol=1e-5) and torch.allclose(types, one[1], atol=1e-5)
        assert torch.allclose(grad, one[2], atol=1e-5)
        assert attended == one[3] == sum(n * n for n in lengths)


@pytest.mark.parametrize("kernels", [[2, 3], [3, 3, 3], [2, 2, 2]])
def test_initial_location_is_bounded_by_the_spans_that_contain_the_token(kernels):
    head = _head(kernels=kernels)
    for module in head.proposer.scorer.modules():  # sharper, more varied candidate weights
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=2.0)
    lengths = [12, 5, 1]
    p = head.propose(*_batch(lengths))
    reach = level_widths(kernels)[-1] - 1
    for b, n in enumerate(lengths):
        t = torch.arange(n, dtype=torch.float32)
        start, end = p.locations[b, :n, 0], p.locations[b, :n, 1]
        eps = 1e-5
        assert (start <= t + eps).all() and (t <= end + eps).all()
        assert (start >= t - reach - eps).all() and (end <= t + reach + eps).all()
        assert (start >= -eps).all() and (end <= n - 1 + eps).all()  # only features inside the segment
    assert (p.locations[0, :, 1] - p.locations[0, :, 0]).max() > 0.5  # proposals are not all single tokens


def test_query_is_the_bottom_feature_by_default():
    head = _head()
    p = head.propose(*_batch([6, 3]))
    assert torch.equal(p.queries, p.levels[0])
    assert not torch.equal(_head(query="fused").propose(*_batch([6, 3])).queries, p.levels[0])


def test_masked_pointer_cells_are_exactly_the_spans_outside_the_segment():
    head = _head()
    lengths = [7, 1, 3]
    pointer, _ = head(*_batch(lengths))
    table = pointer_table(W)
    rows = [(n, t) for n in lengths for t in range(n)]
    starts = numpy.array([[t + ds for ds, _ in table] for _, t in rows])
    ends = starts + table[:, 1][None, :]  # half-open
    outside = torch.from_numpy((starts < 0) | (ends > numpy.array([n for n, _ in rows])[:, None]))
    assert torch.equal(pointer == torch.finfo(pointer.dtype).min, outside)
    single = int(numpy.flatnonzero((table[:, 0] == 0) & (table[:, 1] == 1))[0])
    assert not outside[:, single].any()  # [t, t + 1) is always a candidate
    p = torch.softmax(pointer, dim=-1)
    assert (p[outside] == 0).all()
    assert torch.allclose(p.masked_fill(outside, 0).sum(-1), torch.ones(len(rows)))


def test_gradients_reach_the_inputs_and_every_parameter():
    head = _head(dropout=0.1).train()
    X, lengths = _batch([8, 3, 5])
    X.requires_grad_(True)
    pointer, types = head(X, lengths)
    inside = pointer > torch.finfo(pointer.dtype).min
    loss = torch.log_softmax(pointer, -1).masked_fill(~inside, 0).sum() + types.pow(2).sum()
    loss.backward()
    assert X.grad[1, 3:].abs().sum() == 0 and X.grad[1, :3].abs().sum() > 0
    for name, param in head.named_parameters():
        if name != SHIFT_ONLY:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


NO_LOCATION_OUTPUT = ("proposer.scorer", "regressor.0.attention.locator", "regressor.1.attention.locator")
NO_LOCATION_OUTPUT += ("regressor.0.attention.head_scores", "regressor.1.attention.head_scores")


@pytest.mark.parametrize(
    "kw, absent, unused",
    [
        ({"encoder_gru": False}, ["encoder_rnn"], ()),
        ({"backward": False}, ["pyramid.backward_grus", "pyramid.deconvs", "pyramid.backward_out"], ()),
        ({"spatial": False}, ["predictor.locator"], NO_LOCATION_OUTPUT),
        ({"gate": "ffn"}, ["regressor.0.gate"], ()),
        ({"category_embedding": False}, ["regressor.0.types"], ()),
        ({"location_iteration": False}, ["regressor.0.attention.head_scores"], ()),
        ({"logits_iteration": False}, ["regressor.0.classifier"], ()),
        ({"spatial": False, "location_iteration": False}, ["regressor.0.attention.locator"], NO_LOCATION_OUTPUT),
    ],
)
def test_switched_off_parts_have_no_parameters(kw, absent, unused):
    """A switched-off part creates no parameters; everything else still learns. Without the
    spatial prior (and with the bottom-level query) the locations reach no output, so only the
    location machinery is idle."""
    head = _head(**kw).train()
    names = [name for name, _ in head.named_parameters()]
    for prefix in absent:
        assert not any(name.startswith(prefix) for name in names), prefix
    X, lengths = _batch([6, 2])
    X.requires_grad_(True)
    pointer, types = head(X, lengths)
    (pointer.clamp(min=-1e4).sum() + types.sum()).backward()
    assert X.grad[0].abs().sum() > 0
    idle = {name for name, p in head.named_parameters() if p.grad is None or p.grad.abs().sum() == 0} - {SHIFT_ONLY}
    assert all(name.startswith(unused) for name in idle), idle


def test_spatial_attention_prior_has_the_negative_quadratic_form():
    torch.manual_seed(0)
    x, mu, theta = torch.randn(5, 2), torch.randn(5, 2), torch.randn(5, 2, 2)
    d = (x - mu).unsqueeze(-1)
    expected = -(d.transpose(-1, -2) @ theta @ theta.transpose(-1, -2) @ d).view(5)
    assert torch.allclose(gaussian_log_prior(x, mu, theta), expected, atol=1e-5)
    assert (gaussian_log_prior(x, mu, theta) <= 0).all()
    assert gaussian_log_prior(mu, mu, theta).abs().max() == 0


def test_prior_broadcasts_keys_against_queries_as_the_attention_uses_it():
    """(B, 1, 1, P, 2) key locations against (B, heads, P, 1, 2) centres: one value per query-key pair."""
    torch.manual_seed(0)
    B, heads, P = 2, 3, 4
    n, mu, theta = torch.randn(B, P, 2), torch.randn(B, heads, P, 2), torch.randn(B, heads, P, 2, 2)
    prior = gaussian_log_prior(n[:, None, None], mu[..., None, :], theta[..., None, :, :])
    assert prior.shape == (B, heads, P, P)
    b, h, q, k = 1, 2, 3, 0
    d = (n[b, k] - mu[b, h, q]).view(2, 1)
    expected = -(d.T @ theta[b, h, q] @ theta[b, h, q].T @ d).item()
    assert prior[b, h, q, k].item() == pytest.approx(expected, abs=1e-5)


def test_counters_count_pointer_cells_and_attention_pairs():
    head = _head()
    lengths = [7, 1, 4]
    pointer, _ = head(*_batch(lengths))
    assert head.n_scored == pointer.numel() == sum(lengths) * C
    assert head.n_attended == sum(n * n for n in lengths)


def test_resize_dims_and_empty_input():
    head = _head().resize(n_inputs=6, n_labels=2)
    assert head.dims() == {"n_inputs": 6, "n_labels": 2}
    pointer, types = head(torch.randn(2, 5, 6), torch.tensor([5, 3]))
    assert pointer.shape == (8, C) and types.shape == (8, 3)
    empty = (torch.zeros(0, 0, 6), torch.zeros(0, dtype=torch.long))
    for X, lengths in (empty, (torch.randn(2, 3, 6), torch.tensor([0, 0]))):
        pointer, types = head(X, lengths)
        assert pointer.shape == (0, C) and types.shape == (0, 3)
        assert pointer.requires_grad and types.requires_grad
        assert head.n_scored == 0 and head.n_attended == 0
    with pytest.raises(ValueError, match="n_heads"):
        ProposerRegressorHead(**head_args("proposer_regressor", hidden_width=10, n_heads=4))
    with pytest.raises(ValueError, match="gate"):
        ProposerRegressorHead(**head_args("proposer_regressor", gate="lstm"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_masks_stay_finite(dtype):
    head = _head().to(dtype)
    X, lengths = _batch([7, 1, 4])
    pointer, types = head(X.to(dtype), lengths)
    assert pointer.dtype == dtype and torch.isfinite(pointer).all() and torch.isfinite(types).all()
    p = torch.softmax(pointer.float(), dim=-1)
    assert not p.isnan().any() and (p[pointer == torch.finfo(dtype).min] == 0).all()


def test_default_head_runs():
    head = ProposerRegressorHead(**head_args("proposer_regressor"), n_inputs=8, n_labels=2).eval()
    pointer, types = head(torch.randn(2, 5, 8), torch.tensor([5, 2]))
    assert pointer.shape == (7, 33 * 16) and types.shape == (7, 3)
