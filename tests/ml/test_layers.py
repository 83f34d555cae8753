import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_nested.ml.layers import MLP, SequenceEncoder, SpanMaxPool, pad_edges


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.integers(0, 10_000))
def test_span_max_pool_equals_naive_max(B, N, seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, N, 5, generator=g)
    K = 25
    batch = torch.randint(0, B, (K,), generator=g)
    a = torch.randint(0, N, (K,), generator=g)
    b = torch.randint(0, N, (K,), generator=g)
    starts, ends = torch.minimum(a, b), torch.maximum(a, b) + 1
    pooled = SpanMaxPool()(h, batch, starts, ends)
    naive = torch.stack([h[batch[k], starts[k] : ends[k]].max(0).values for k in range(K)])
    assert torch.allclose(pooled, naive)


def test_span_max_pool_gradient_reaches_argmax_token():
    h = torch.zeros(1, 6, 1, requires_grad=True)
    with torch.no_grad():
        h[0, :, 0] = torch.tensor([0.0, 5.0, 1.0, 2.0, 0.0, 0.0])
    out = SpanMaxPool()(h, torch.tensor([0]), torch.tensor([0]), torch.tensor([4]))
    out.sum().backward()
    assert h.grad[0, 1, 0] > 0 and h.grad[0, [0, 2, 3, 4, 5], 0].abs().sum() == 0


def test_pad_edges_places_sentinels():
    h = torch.arange(2 * 3 * 1, dtype=torch.float).reshape(2, 3, 1) + 1
    out = pad_edges(h, torch.tensor([3, 2]), torch.tensor([-1.0]), torch.tensor([-2.0]))
    assert out[0, :, 0].tolist() == [-1, 1, 2, 3, -2]
    assert out[1, :4, 0].tolist() == [-1, 4, 5, -2]


def test_sequence_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = SequenceEncoder(4, 3).eval()
    x = torch.randn(1, 5, 4)
    alone = enc(x, torch.tensor([5]))
    padded = torch.cat([x, torch.randn(1, 7, 4)], dim=1)
    batched = enc(torch.cat([padded, torch.randn(1, 12, 4)]), torch.tensor([5, 12]))
    assert torch.allclose(alone[0], batched[0, :5], atol=1e-6)


def _mlp_parts(seed: int):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mlp = MLP(5 + 2 * 3, 7, 2, dropout=0.5)
    table = torch.randn(2, 6, 3, generator=g)
    dense = torch.randn(9, 5, generator=g)
    rows = [(torch.randint(0, 2, (9,), generator=g), torch.randint(0, 6, (9,), generator=g)) for _ in range(2)]
    concatenated = torch.cat([dense, table[rows[0]], table[rows[1]]], dim=-1)
    return mlp, dense, table, rows, concatenated


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_mlp_forward_parts_is_the_mlp_on_the_concatenation_at_inference(seed):
    mlp, dense, table, rows, concatenated = _mlp_parts(seed)
    mlp.eval()
    assert torch.allclose(mlp.forward_parts(dense, table, rows), mlp(concatenated), atol=1e-5)


def test_mlp_forward_parts_keeps_per_candidate_dropout_while_training():
    mlp, dense, table, rows, concatenated = _mlp_parts(0)
    mlp.train()
    torch.manual_seed(1)
    parts = mlp.forward_parts(dense, table, rows)
    torch.manual_seed(1)
    assert torch.equal(parts, mlp(concatenated))  # the same dropout masks: the concatenation's
