"""The models train: finite gradients, torch.compile, jax transforms, and a tiny overfit."""

from __future__ import annotations

import numpy as np
import pytest

from namcore.models import (
    HAMConfig,
    LSAMConfig,
    LSTMBaselineConfig,
    NAMTMConfig,
    NAMTransformerConfig,
    TransformerBaselineConfig,
    forward,
    init_numpy,
)

VOCAB = 6
CONFIGS = {
    "LSAM": LSAMConfig(vocab_size=VOCAB, d_model=32, n_heads=4),
    "NAMTM": NAMTMConfig(vocab_size=VOCAB, d_model=32, n_tapes=4, tape_length=8, n_layers=1),
    "NAMTransformer": NAMTransformerConfig(vocab_size=VOCAB, d_model=32, n_heads=4),
    "LSTMBaseline": LSTMBaselineConfig(vocab_size=VOCAB, d_model=32),
    "TransformerBaseline": TransformerBaselineConfig(vocab_size=VOCAB, d_model=32, n_heads=4),
    "HAM": HAMConfig(vocab_size=VOCAB, d_model=32, access="soft"),
}


def task(n: int = 4, length: int = 6, seed: int = 0):
    """A handful of sequences whose target is the reversed input (padding included)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, size=(n, length))
    mask = np.ones((n, length), dtype=bool)
    mask[-1, length - 2 :] = False
    return tokens, tokens[:, ::-1].copy(), mask


def accuracy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    return float((logits.argmax(-1) == targets)[mask].mean())


# ------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("name", list(CONFIGS))
def test_torch_gradients_are_finite_and_reach_every_parameter(name):
    torch = pytest.importorskip("torch")
    from namcore.models import torch as models_torch

    model = getattr(models_torch, name)(CONFIGS[name], seed=1)
    tokens, targets, mask = (torch.from_numpy(a) for a in task())
    logits = model(tokens, mask)
    loss = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    unused = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0]
    assert unused == [], f"parameters with zero gradient: {unused}"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_torch_overfits_a_handful_of_sequences(name):
    torch = pytest.importorskip("torch")
    from namcore.models import torch as models_torch

    torch.manual_seed(0)
    model = getattr(models_torch, name)(CONFIGS[name], seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    tokens, targets, mask = (torch.from_numpy(a) for a in task())
    for _ in range(400):
        optimizer.zero_grad()
        logits = model(tokens, mask)
        if accuracy(logits.detach().numpy(), targets.numpy(), mask.numpy()) == 1.0:
            break
        loss = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = model(tokens, mask).numpy()
    assert accuracy(final, targets.numpy(), mask.numpy()) == 1.0


def test_torch_compile_nam_transformer_matches_eager():
    torch = pytest.importorskip("torch")
    from namcore.models.torch import NAMTransformer

    model = NAMTransformer(CONFIGS["NAMTransformer"], seed=2)
    tokens, _, mask = (torch.from_numpy(a) for a in task())
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    expected = model(tokens, mask)
    np.testing.assert_allclose(
        compiled(tokens, mask).detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6
    )


# ----------------------------------------------------------------------------- JAX
def _jax_loss(name):
    """Masked cross-entropy of model ``name``; returns ``(loss, logits)``."""
    import jax
    import jax.numpy as jnp

    config = CONFIGS[name]

    def loss(params, tokens, targets, mask):
        logits = forward(params, tokens, mask, config=config)
        logp = jax.nn.log_softmax(logits, axis=-1)
        picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
        return -jnp.sum(picked * mask) / jnp.sum(mask), logits

    return loss


@pytest.mark.parametrize("name", list(CONFIGS))
def test_jax_gradients_match_torch(name, jax_x64):
    """jax.grad of the jitted loss equals torch autograd on the same float64 weights."""
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp

    from namcore.models import jax as models_jax
    from namcore.models import torch as models_torch

    config = CONFIGS[name]
    tokens, targets, mask = task()
    params = getattr(models_jax, name)(config).init(seed=3, dtype="float64")
    grads, _ = jax_x64.jit(jax_x64.grad(_jax_loss(name), has_aux=True))(
        params, jnp.asarray(tokens), jnp.asarray(targets), jnp.asarray(mask)
    )
    model = getattr(models_torch, name)(config, seed=3, dtype=torch.float64)
    t = [torch.from_numpy(a) for a in (tokens, targets, mask)]
    torch.nn.functional.cross_entropy(model(t[0], t[2])[t[2]], t[1][t[2]]).backward()
    for pname, p in model.named_parameters():
        np.testing.assert_allclose(
            np.asarray(grads[pname]), p.grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=pname
        )


@pytest.mark.parametrize("name", list(CONFIGS))
def test_jax_overfits_a_handful_of_sequences(name):
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    from namcore.models import jax as models_jax

    model = getattr(models_jax, name)(CONFIGS[name])
    params = model.init(seed=0)
    optimizer = optax.adam(1e-2)
    # committed like the update's outputs, so that step 2 reuses step 1's compilation
    opt_state = jax.device_put(optimizer.init(params), jax.devices()[0])
    tokens, targets, mask = (jnp.asarray(a) for a in task())
    loss = _jax_loss(name)

    @jax.jit
    def update(params, opt_state):
        grads, logits = jax.grad(loss, has_aux=True)(params, tokens, targets, mask)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, logits

    for _ in range(400):
        new_params, new_state, logits = update(params, opt_state)
        if accuracy(np.asarray(logits), np.asarray(targets), np.asarray(mask)) == 1.0:
            break  # ``logits`` are those of ``params``, before the update
        params, opt_state = new_params, new_state
    final = np.asarray(model.apply(params, tokens, mask))
    assert accuracy(final, np.asarray(targets), np.asarray(mask)) == 1.0


def test_jax_vmap_over_an_ensemble_of_weights():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from namcore.models.jax import NAMTM

    model = NAMTM(CONFIGS["NAMTM"])
    seeds = [model.init(seed=s) for s in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *seeds)
    tokens, _, mask = (jnp.asarray(a) for a in task())
    together = jax.jit(jax.vmap(model.apply, in_axes=(0, None, None)))(stacked, tokens, mask)
    apply = jax.jit(model.apply)
    for i, params in enumerate(seeds):
        np.testing.assert_allclose(
            np.asarray(together[i]), np.asarray(apply(params, tokens, mask)), rtol=1e-5, atol=1e-6
        )


def test_initial_weights_are_the_same_in_torch_jax_and_numpy():
    torch = pytest.importorskip("torch")
    pytest.importorskip("jax")
    from namcore.models.jax import LSAM as JaxLSAM
    from namcore.models.torch import LSAM as TorchLSAM

    config = CONFIGS["LSAM"]
    reference = init_numpy(config, seed=9)
    from_torch = TorchLSAM(config, seed=9, dtype=torch.float32).params()
    from_jax = JaxLSAM(config).init(seed=9)
    for name, value in reference.items():
        np.testing.assert_array_equal(from_torch[name].detach().numpy(), value)
        np.testing.assert_array_equal(np.asarray(from_jax[name]), value)
