"""The Linear Transformer against a quadratic-form NumPy oracle of elu+1 attention."""

from __future__ import annotations

import numpy as np
import pytest

from namcore import models
from namcore.models import (
    LinearTransformerConfig,
    TransformerBaselineConfig,
    config_from_dict,
    forward,
    init_numpy,
    linear_transformer,
    transformer,
)


def oracle(q, k, v, mask, causal, eps=1e-6):
    """Attention weights phi(q_i).phi(k_j) over real (and, if causal, earlier) keys,
    each row divided by its sum plus eps; built position by position in float64."""

    def phi(x):
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0))) + 1.0

    b, h, n, _ = q.shape
    out = np.zeros(v.shape)
    for bi in range(b):
        for hi in range(h):
            for i in range(n):
                weights = np.array(
                    [
                        phi(q[bi, hi, i]) @ phi(k[bi, hi, j])
                        if mask[bi, j] and (j <= i or not causal)
                        else 0.0
                        for j in range(n)
                    ]
                )
                out[bi, hi, i] = weights @ v[bi, hi] / (weights.sum() + eps)
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_the_quadratic_oracle(causal):
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, 3, 7, 4)), rng.normal(size=(2, 3, 7, 4))
    v = rng.normal(size=(2, 3, 7, 5))
    mask = np.ones((2, 7), dtype=bool)
    mask[1, 4:] = False  # padding at the end of the second sample
    ours = linear_transformer.linear_attention(q, k, v, mask, np, causal=causal)
    np.testing.assert_allclose(ours, oracle(q, k, v, mask, causal), rtol=1e-10, atol=1e-12)


def test_feature_map_is_elu_plus_one():
    x = np.linspace(-5, 5, 41)
    elu = np.where(x > 0, x, np.exp(x) - 1)
    np.testing.assert_allclose(linear_transformer.elu_plus_one(x, np), elu + 1, atol=1e-12)
    assert (linear_transformer.elu_plus_one(x, np) > 0).all()


def test_the_whole_model_is_the_encoder_with_this_attention(monkeypatch):
    """Same parameters in the softmax baseline whose attention is swapped for the oracle."""
    ours = LinearTransformerConfig(vocab_size=9, d_model=8, n_heads=2, n_layers=2)
    base = TransformerBaselineConfig(
        vocab_size=9, d_model=8, n_heads=2, n_layers=2, positions="sinusoidal"
    )
    params = {k: v.astype(np.float64) for k, v in init_numpy(ours, seed=3).items()}
    assert set(params) == set(init_numpy(base, seed=0))
    tokens = np.random.default_rng(1).integers(0, 9, size=(2, 6))
    mask = np.ones((2, 6), dtype=bool)
    mask[0, 5:] = False
    got = forward(params, tokens, mask, config=ours)
    monkeypatch.setattr(
        transformer, "softmax_attention", lambda q, k, v, m, xp, d: oracle(q, k, v, m, False)
    )
    np.testing.assert_allclose(got, forward(params, tokens, mask, config=base), atol=1e-10)


def test_causal_outputs_do_not_see_later_tokens():
    cfg = LinearTransformerConfig(vocab_size=9, d_model=8, n_heads=2, causal=True)
    params = init_numpy(cfg, seed=0)
    a = np.array([[4, 5, 6, 7, 8]])
    b = a.copy()
    b[0, 3:] = 1
    first, second = forward(params, a, config=cfg)[:, :3], forward(params, b, config=cfg)[:, :3]
    np.testing.assert_allclose(first, second, atol=1e-6 * np.abs(first).max())  # float32 scale


def test_config_entry_and_errors():
    entry = models.get_entry("linear-transformer")
    assert entry.config is LinearTransformerConfig and entry.label == "Linear Transformer"
    cfg = LinearTransformerConfig(vocab_size=9, d_model=8, cls=True, n_classes=10)
    assert config_from_dict(cfg.to_dict()) == cfg
    logits = forward(init_numpy(cfg, seed=0), np.ones((3, 4), dtype=np.int64), config=cfg)
    assert logits.shape == (3, 10)
    with pytest.raises(ValueError, match="eps must be positive"):
        LinearTransformerConfig(vocab_size=9, eps=0.0)
    with pytest.raises(ValueError, match="causal model cannot use a CLS"):
        LinearTransformerConfig(vocab_size=9, causal=True, cls=True)
    with pytest.raises(ValueError, match="divisible"):
        LinearTransformerConfig(vocab_size=9, d_model=10, n_heads=4)


def test_trains_in_torch():
    torch = pytest.importorskip("torch")
    from namcore.models.torch import LinearTransformer

    torch.manual_seed(0)
    model = LinearTransformer(LinearTransformerConfig(vocab_size=6, d_model=16, n_heads=2))
    tokens = torch.randint(4, 6, (8, 5))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):  # learn to copy the input tokens
        loss = torch.nn.functional.cross_entropy(model(tokens).reshape(-1, 6), tokens.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.05
