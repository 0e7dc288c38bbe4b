"""The classic memory networks (NTM, DNC, MemN2N, Universal Transformer) against oracles.

The oracles are written step by step from the public, validated primitives of
:mod:`namcore.ntm` and :mod:`namcore.dnc` (or plain NumPy), independently of the
models' scans; gradients, the ACT halting rule and a tiny overfit are checked with
torch and JAX.
"""

from __future__ import annotations

import numpy as np
import pytest

from namcore import dnc as D
from namcore import ntm as T
from namcore.models import (
    DNCConfig,
    MemN2NConfig,
    NTMConfig,
    UniversalTransformerConfig,
    forward,
    init_numpy,
)
from namcore.models.transformer import positions

CONFIGS = {
    "ntm": NTMConfig(vocab_size=7, d_model=8, memory_size=5, memory_width=4),
    "dnc": DNCConfig(vocab_size=7, d_model=8, memory_size=5, memory_width=4, n_reads=2),
    "memn2n": MemN2NConfig(vocab_size=7, d_model=8, n_hops=2),
    "memn2n-head": MemN2NConfig(vocab_size=7, d_model=8, n_hops=1, n_outputs=3),
    "ut": UniversalTransformerConfig(vocab_size=7, d_model=8, n_heads=2, max_steps=3),
}


def sample(length: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 7, size=(2, length))
    mask = np.ones((2, length), dtype=bool)
    mask[1, 4:] = False
    return tokens, mask


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def lstm(p, prefix, x, h, c):
    g = x @ p[f"{prefix}.w_x"] + h @ p[f"{prefix}.w_h"] + p[f"{prefix}.b"]
    i, f, cand, o = np.split(g, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(cand)
    return sigmoid(o) * np.tanh(c), c


def ntm_oracle(p, config, tokens):
    """One sequence (no padding), step by step with namcore.ntm's public functions."""
    n, w = config.memory_size, config.memory_width
    h = c = np.zeros(config.d_model)
    memory, r = np.zeros((n, w)), np.zeros(w)
    w_r = w_w = np.eye(n)[0]
    out = []

    def head(z, previous, memory):
        shift = softmax(z[w + 2 : w + 5])
        return T.address(
            memory,
            z[:w],
            softplus(z[w]),
            sigmoid(z[w + 1]),
            shift,
            1.0 + softplus(z[w + 5]),
            previous,
        )

    for token in tokens:
        h, c = lstm(p, "controller", np.concatenate([p["embed"][token], r]), h, c)
        z = h @ p["write_head.w"] + p["write_head.b"]
        w_w = head(z[: w + 6], w_w, memory)
        memory = T.write(memory, w_w, sigmoid(z[w + 6 : 2 * w + 6]), np.tanh(z[2 * w + 6 :]))
        w_r = head(h @ p["read_head.w"] + p["read_head.b"], w_r, memory)
        r = T.read(memory, w_r)
        out.append(np.concatenate([h, r]) @ p["head.out.w"] + p["head.out.b"])
    return np.stack(out)


def dnc_oracle(p, config, tokens):
    """One sequence (no padding), step by step with namcore.dnc's public functions."""
    n, w, reads = config.memory_size, config.memory_width, config.n_reads
    h = c = np.zeros(config.d_model)
    memory, link = np.zeros((n, w)), np.zeros((n, n))
    usage, precedence, w_w = np.zeros(n), np.zeros(n), np.zeros(n)
    w_r, r = np.zeros((reads, n)), np.zeros((reads, w))
    out = []
    for token in tokens:
        h, c = lstm(p, "controller", np.concatenate([p["embed"][token], r.ravel()]), h, c)
        xi = h @ p["interface.w"] + p["interface.b"]
        cuts = np.cumsum([reads * w, reads, w, 1, w, w, reads, 1, 1])
        keys, betas, key, beta, erase, vector, free, g_a, g_w, modes = np.split(xi, cuts)
        usage = D.usage(usage, w_w, sigmoid(free), w_r)
        content = D.content_address(memory, key, 1.0 + softplus(beta[0]))
        w_w = D.write_weighting(D.allocation(usage), content, sigmoid(g_a[0]), sigmoid(g_w[0]))
        memory = D.write(memory, w_w, sigmoid(erase), vector)
        link, precedence = D.link(link, precedence, w_w)
        new = []
        for i in range(reads):
            looked = D.content_address(memory, keys[i * w : (i + 1) * w], 1.0 + softplus(betas[i]))
            pi = softmax(modes[3 * i : 3 * i + 3])
            new.append(
                D.read_weighting(pi, D.backward(link, w_r[i]), looked, D.forward(link, w_r[i]))
            )
        w_r = np.stack(new)
        r = np.stack([D.read(memory, w_r[i]) for i in range(reads)])
        out.append(np.concatenate([h, r.ravel()]) @ p["head.out.w"] + p["head.out.b"])
    return np.stack(out)


def memn2n_oracle(p, config, tokens):
    """One sequence (no padding), with explicit loops over the hops."""
    length = len(tokens)
    where = positions(np.arange(length), config.d_model, np, np.float64)
    tables = [p[f"embed.{k}"][tokens] + where for k in range(config.n_hops + 1)]
    u = tables[0]
    for k in range(1, config.n_hops + 1):
        u = u + softmax(u @ tables[k - 1].T) @ tables[k]
    if config.tied_output:
        return u @ p[f"embed.{config.n_hops}"].T
    return u @ p["head.out.w"] + p["head.out.b"]


ORACLES = {"ntm": ntm_oracle, "dnc": dnc_oracle, "memn2n": memn2n_oracle}


@pytest.mark.parametrize("name", ["ntm", "dnc", "memn2n", "memn2n-head"])
def test_model_equals_step_by_step_oracle(name):
    config = CONFIGS[name]
    params = init_numpy(config, seed=4, dtype=np.float64)
    tokens, mask = sample()
    got = forward(params, tokens, mask, config=config)
    oracle = ORACLES[name.split("-")[0]]
    for row in range(2):
        real = int(mask[row].sum())
        expected = oracle(params, config, tokens[row, :real])
        np.testing.assert_allclose(got[row, :real], expected, rtol=1e-10, atol=1e-12)


def ut_run(config, params, tokens, bias):
    params = dict(params, **{"halt.b": np.array([bias])})
    return forward(params, tokens, config=config, return_ponder=True)


def test_act_halts_after_one_step_when_halting_is_certain():
    """p = 1: every position halts at step 0 with N = 1, R = 1: the output is one block."""
    config = CONFIGS["ut"]
    params = init_numpy(config, seed=5, dtype=np.float64)
    tokens, _ = sample()
    _, ponder = ut_run(config, params, tokens, 60.0)
    np.testing.assert_allclose(ponder, config.ponder_weight * 2.0)
    one_step = UniversalTransformerConfig(**{**config.__dict__, "max_steps": 1})
    expected = forward(params, tokens, config=one_step)
    got, _ = ut_run(config, params, tokens, 60.0)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_act_runs_every_step_when_halting_never_comes():
    """p = 0: positions run all ``max_steps`` and halt at the last with R = 1."""
    config = CONFIGS["ut"]
    params = init_numpy(config, seed=5, dtype=np.float64)
    tokens, _ = sample()
    got, ponder = ut_run(config, params, tokens, -60.0)
    np.testing.assert_allclose(ponder, config.ponder_weight * (config.max_steps + 1.0))
    # The output is the state after max_steps applications: increasing max_steps by
    # one with p = 0 changes it (the extra step is taken), so compare to a manual run.
    state = params["embed"][tokens]
    where = positions(np.arange(tokens.shape[1]), config.d_model, np, np.float64)
    steps = positions(np.arange(config.max_steps), config.d_model, np, np.float64)
    from namcore.models.transformer import block, softmax_attention

    real = np.ones(tokens.shape, dtype=bool)
    for s in range(config.max_steps):
        state = block(
            params,
            "block",
            state + where + steps[s],
            np,
            config.n_heads,
            lambda q, k, v: softmax_attention(q, k, v, real, np, config.d_model // config.n_heads),
        )
    mean = state.mean(-1, keepdims=True)
    normed = (state - mean) / np.sqrt(((state - mean) ** 2).mean(-1, keepdims=True) + 1e-5)
    normed = normed * params["norm.scale"] + params["norm.bias"]
    expected = normed @ params["head.out.w"] + params["head.out.b"]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_act_weights_sum_to_one_and_ponder_is_bounded():
    config = UniversalTransformerConfig(vocab_size=7, d_model=8, n_heads=2, max_steps=4)
    params = init_numpy(config, seed=9, dtype=np.float64)
    tokens, _ = sample()
    for bias in (-1.0, 0.0, 0.5, 2.0):
        _, ponder = ut_run(config, params, tokens, bias)
        cost = ponder / config.ponder_weight
        assert (cost > 1.0).all() and (cost <= config.max_steps + 1.0 + 1e-12).all()


def test_ponder_hook_is_the_masked_mean():
    from namcore.models.universal_transformer import PONDER

    aux = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 60.0]])
    mask = np.array([[True, True, True], [True, True, False]])
    loss = PONDER.loss({}, aux, None, mask, mask, stop_gradient=None, preset=None)
    assert loss == pytest.approx(3.0)
    assert PONDER.applies(CONFIGS["ut"])
    assert not PONDER.applies(UniversalTransformerConfig(vocab_size=7, ponder_weight=0.0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"halt_threshold": 1.5}, "halt_threshold must lie in"),
        ({"ponder_weight": -0.1}, "ponder_weight must be >= 0"),
        ({"d_model": 10, "n_heads": 4}, "divisible by n_heads"),
    ],
)
def test_bad_ut_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        UniversalTransformerConfig(vocab_size=7, **changes)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_torch_gradients_are_finite_and_reach_every_parameter(name):
    """Through the allocation's sort (all usages tie at the start) and ACT's halting."""
    torch = pytest.importorskip("torch")
    from namcore.models import entry_for

    config = CONFIGS[name]
    cls = getattr(__import__("namcore.models.torch", fromlist=["_"]), entry_for(config).class_name)
    model = cls(config, seed=1, dtype=torch.float64)
    tokens, mask = sample()
    out = model(torch.as_tensor(tokens), torch.as_tensor(mask))
    if name == "ut":
        out, ponder = model(torch.as_tensor(tokens), torch.as_tensor(mask), return_ponder=True)
        out = out + ponder[..., None]
    (out**2).sum().backward()
    for pname, param in model.named_parameters():
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, f"{pname} gets no gradient"


@pytest.mark.parametrize("name", ["dnc", "ut"])
def test_jax_gradients_are_finite(name, jax_x64):
    """The two risky ones: the allocation's sort and ACT's halting (torch checks all four)."""
    jax = jax_x64
    from namcore.models import entry_for
    from namcore.models import jax as models_jax

    config = CONFIGS[name]
    params = getattr(models_jax, entry_for(config).class_name)(config).init(seed=1, dtype="float64")
    tokens, mask = sample()

    def loss(p):
        return (
            forward(p, jax.numpy.asarray(tokens), jax.numpy.asarray(mask), config=config) ** 2
        ).sum()

    grads = jax.grad(loss)(params)
    for pname, g in grads.items():
        assert bool(jax.numpy.isfinite(g).all()), pname


@pytest.mark.parametrize("name", ["ntm", "dnc", "memn2n", "ut"])
def test_tiny_overfit(name):
    """A few Adam steps on one fixed batch cut the token cross-entropy by more than half."""
    torch = pytest.importorskip("torch")
    from namcore.models import entry_for

    torch.manual_seed(0)
    config = CONFIGS[name]
    cls = getattr(__import__("namcore.models.torch", fromlist=["_"]), entry_for(config).class_name)
    model = cls(config, seed=2)
    tokens = torch.as_tensor(np.random.default_rng(0).integers(0, 7, size=(4, 6)))
    targets = torch.flip(tokens, dims=[1])
    opt = torch.optim.Adam(model.parameters(), lr=0.03)

    def loss_now():
        logits = model(tokens)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))

    with torch.no_grad():
        first = float(loss_now())
    for _ in range(150):
        opt.zero_grad()
        loss = loss_now()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(loss_now()) < 0.5 * first


@pytest.mark.parametrize("name", ["ntm", "dnc", "memn2n", "ut"])
def test_torch_checkpoint_runs_on_numpy_and_jax(name, tmp_path):
    """Weights saved by torch load into the NumPy and JAX classes and give the same logits."""
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    from namcore.models import entry_for, load
    from namcore.models import jax as models_jax
    from namcore.models import numpy as models_numpy
    from namcore.models import torch as models_torch

    config = CONFIGS[name]
    class_name = entry_for(config).class_name
    model = getattr(models_torch, class_name)(config, seed=3)
    path = tmp_path / f"{name}.safetensors"
    model.save(path)
    tokens, mask = sample()
    with torch.no_grad():
        expected = model(torch.as_tensor(tokens), torch.as_tensor(mask)).numpy()
    scale = np.abs(expected).max()  # float32: tolerances follow the logits' size
    got = getattr(models_numpy, class_name).from_file(path)(tokens, mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)
    jax_model = getattr(models_jax, class_name)(config)
    jax_params, loaded = load(path, backend="jax")
    assert loaded == config
    y = jax_model.apply(jax_params, jnp.asarray(tokens), jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5 * scale)
