"""namcore.attention on every backend against a position-by-position NumPy float64 oracle."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function

import namcore
from namcore import attention
from namcore.testing import assert_matches_numpy, numerical_gradient, to_numpy

lazy_xp_function(attention)


def oracle(
    q,
    k,
    v,
    *,
    causal=False,
    p_write=None,
    p_erase=None,
    p_read=None,
    decay=None,
    mask=None,
    state=None,
):
    """The definition, literally: decay, write each position with the primitives, read."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    length = k.shape[-2]
    full = (*batch, length)
    pw = np.broadcast_to(1.0 if p_write is None else p_write, full)
    pe = np.broadcast_to(0.0 if p_erase is None else p_erase, full)
    pr = np.broadcast_to(1.0 if p_read is None else p_read, full)
    m = np.broadcast_to(1.0 if mask is None else mask.astype(float), full)
    gamma = np.broadcast_to(1.0 if decay is None else decay, full)
    memory = np.zeros((*batch, v.shape[-1], k.shape[-1])) if state is None else state
    ys = []
    for t in range(length):
        memory = memory * np.where(m[..., t] > 0, gamma[..., t], 1.0)[..., None, None]
        memory = namcore.write(
            memory, k[..., t, :], v[..., t, :], pw[..., t] * m[..., t], pe[..., t] * m[..., t]
        )
        if causal:
            ys.append(namcore.read(memory, q[..., t, :], pr[..., t]))
    if not causal:
        ys = [namcore.read(memory, q[..., t, :], pr[..., t]) for t in range(length)]
    return np.stack(ys, axis=-2), memory


@pytest.fixture
def data():
    rng = np.random.default_rng(42)
    b, h, length, d_k, d_v = 2, 3, 21, 5, 4
    return {
        "q": rng.normal(size=(b, h, length, d_k)),
        "k": rng.normal(size=(b, h, length, d_k)),
        "v": rng.normal(size=(b, h, length, d_v)),
        "p_write": rng.uniform(size=(b, h, length)),
        "p_erase": rng.uniform(size=(b, h, length)),
        "p_read": rng.uniform(size=(b, h, length)),
        # two resets (a decay of exactly 0) among decays in [0.5, 1]
        "decay": np.where(np.arange(length) % 9 == 4, 0.0, rng.uniform(0.5, 1, (b, h, length))),
        "mask": rng.uniform(size=(b, 1, length)) > 0.3,
        "state": rng.normal(size=(b, h, d_v, d_k)),
    }


VARIANTS = {
    "plain": (),
    "gated": ("p_write", "p_read"),
    "masked": ("mask",),
    "erased": ("p_write", "p_erase"),
    "decayed": ("decay",),
    "gated_delta": ("p_write", "p_erase", "decay"),
    "everything": ("p_write", "p_erase", "p_read", "decay", "mask", "state"),
    "state": ("state",),
}


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_oracle(xp, device, data, causal, variant):
    options = {name: data[name] for name in VARIANTS[variant]}
    expected_y, expected_state = oracle(data["q"], data["k"], data["v"], causal=causal, **options)
    convert = {name: xp.asarray(a, device=device) for name, a in data.items()}
    y, state = attention(
        convert["q"],
        convert["k"],
        convert["v"],
        causal=causal,
        return_state=True,
        chunk_size=8,
        **{name: convert[name] for name in options},
    )
    assert_matches_numpy(y, expected_y, xp=xp, dtype=xp.float64, rtol=1e-10)
    assert_matches_numpy(state, expected_state, xp=xp, rtol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 21, 64])
def test_chunk_size_changes_only_rounding(xp, device, data, chunk_size):
    q, k, v = (xp.asarray(data[n], device=device) for n in "qkv")
    y = attention(q, k, v, causal=True, chunk_size=chunk_size)
    assert_matches_numpy(
        y, oracle(data["q"], data["k"], data["v"], causal=True)[0], xp=xp, rtol=1e-10
    )


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
@pytest.mark.parametrize("erase", [False, True], ids=["write", "erase"])
def test_state_chaining_equals_whole_sequence(xp, device, data, causal, erase):
    """Streaming: two pieces with the state passed along equal one call (causal)."""
    arrays = {n: xp.asarray(a, device=device) for n, a in data.items()}
    extra = {"p_erase": arrays["p_erase"]} if erase else {}
    whole_y, whole_state = attention(
        arrays["q"], arrays["k"], arrays["v"], causal=causal, return_state=True, **extra
    )
    split = 9
    first = {n: a[..., :split] for n, a in extra.items()}
    second = {n: a[..., split:] for n, a in extra.items()}
    y1, s1 = attention(
        arrays["q"][..., :split, :],
        arrays["k"][..., :split, :],
        arrays["v"][..., :split, :],
        causal=causal,
        return_state=True,
        **first,
    )
    y2, s2 = attention(
        arrays["q"][..., split:, :],
        arrays["k"][..., split:, :],
        arrays["v"][..., split:, :],
        causal=causal,
        state=s1,
        return_state=True,
        **second,
    )
    assert_matches_numpy(s2, to_numpy(whole_state), xp=xp, rtol=1e-10)
    if causal:
        assert_matches_numpy(xp.concat([y1, y2], axis=-2), to_numpy(whole_y), xp=xp, rtol=1e-10)


def test_masked_positions_write_nothing(xp, device, data):
    mask = np.ones(data["k"].shape[:-1], dtype=bool)
    mask[..., 5:] = False
    arrays = {n: xp.asarray(data[n], device=device) for n in "qkv"}
    _, with_mask = attention(
        *arrays.values(), mask=xp.asarray(mask, device=device), return_state=True
    )
    _, prefix = attention(*(a[..., :5, :] for a in arrays.values()), return_state=True)
    assert_matches_numpy(with_mask, to_numpy(prefix), xp=xp, rtol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_low_precision_inputs(xp, device, library, data, dtype):
    if not hasattr(xp, dtype):
        pytest.skip(f"{library.value} has no {dtype}")
    dt = getattr(xp, dtype)
    q, k, v = (xp.asarray(xp.asarray(data[n], device=device), dtype=dt) for n in "qkv")
    y, state = attention(q, k, v, causal=True, return_state=True)
    assert y.dtype == dt
    assert state.dtype == (xp.float32 if dtype != "float32" else dt)
    expected = oracle(*(to_numpy(x).astype(np.float64) for x in (q, k, v)), causal=True)[0]
    assert_matches_numpy(
        y, expected, xp=xp, rtol={"float32": 1e-5, "float16": 3e-3, "bfloat16": 2e-2}[dtype]
    )


def test_broadcast_batch_and_state(xp, device, data):
    q = xp.asarray(data["q"][:1], device=device)  # batch 1 broadcasts against 2
    k, v = (xp.asarray(data[n], device=device) for n in "kv")
    state = xp.asarray(data["state"][0], device=device)  # (h, d_v, d_k) for every batch
    y = attention(q, k, v, causal=True, state=state)
    expected = oracle(
        np.broadcast_to(data["q"][:1], data["q"].shape),
        data["k"],
        data["v"],
        causal=True,
        state=np.broadcast_to(data["state"][0], data["state"].shape),
    )
    assert_matches_numpy(y, expected[0], xp=xp, rtol=1e-10)


def test_causal_memory_is_linear_in_length():
    """L = 32,768, 4 heads, d = 64: a per-position state tensor would need 2 GiB."""
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((3, 4, 32768, 64), dtype=np.float32)
    tracemalloc.start()
    try:
        attention(q, k, v, causal=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_position_state = 4 * 32768 * 64 * 64 * 4
    assert per_position_state == 2 * 2**30
    # output (32 MiB) + normalised q, k (64 MiB) + chunk temporaries; far below 2 GiB
    assert peak < 256 * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        (
            lambda a: {**a, "v": a["v"][..., :20, :]},
            ValueError,
            r"`v` has length 20 .* `k` has length 21",
        ),
        (lambda a: {**a, "q": a["q"][..., :4]}, ValueError, r"`q` has d_k = 4"),
        (
            lambda a: {**a, "p_write": a["p_write"][..., :20]},
            ValueError,
            r"`p_write` of shape \(2, 3, 20\) must broadcast to the batch shape \(2, 3, 21\)",
        ),
        (
            lambda a: {**a, "mask": a["mask"][..., :20]},
            ValueError,
            r"`mask` of shape \(2, 1, 20\) must broadcast to \(2, 3, 21\)",
        ),
        (lambda a: {**a, "mask": a["p_read"]}, TypeError, r"`mask` must be a boolean array"),
        (
            lambda a: {**a, "state": a["state"][..., :3]},
            ValueError,
            r"`state` has shape \(2, 3, 4, 3\), expected \(\.\.\., d_v, d_k\) = \(\.\.\., 4, 5\)",
        ),
        (
            lambda a: {**a, "p_erase": a["p_erase"] + 1.5},
            ValueError,
            r"`p_erase` must lie in \[0, 1\]",
        ),
        (lambda a: {**a, "chunk_size": 0}, ValueError, r"`chunk_size` must be a positive int"),
    ],
    ids=["length", "d_k", "p_shape", "mask_shape", "mask_dtype", "state_shape", "p_range", "chunk"],
)
def test_bad_input(data, change, error, pattern):
    args = change(dict(data))
    q, k, v = args.pop("q"), args.pop("k"), args.pop("v")
    with pytest.raises(error, match=pattern):
        attention(q, k, v, causal=True, **args)


@pytest.mark.parametrize("erase", [False, True], ids=["write", "erase"])
@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_gradients_match_finite_differences(framework, erase):
    rng = np.random.default_rng(7)
    q, k, v = rng.normal(size=(3, 2, 6, 3))
    pw, pe = rng.uniform(0.1, 0.9, size=(2, 2, 6))
    weights = rng.normal(size=(2, 6, 3))

    def loss_np(q, k, v, pw):
        extra = {"p_erase": pe} if erase else {}
        return float(
            np.sum(weights * attention(q, k, v, causal=True, p_write=pw, chunk_size=4, **extra))
        )

    if framework == "torch":
        torch = pytest.importorskip("torch")
        tensors = [torch.tensor(a, requires_grad=True) for a in (q, k, v, pw)]
        extra = {"p_erase": torch.tensor(pe)} if erase else {}
        out = attention(*tensors[:3], causal=True, p_write=tensors[3], chunk_size=4, **extra)
        (torch.tensor(weights) * out).sum().backward()
        grads = [t.grad.numpy() for t in tensors]
    else:
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        extra = {"p_erase": jnp.asarray(pe)} if erase else {}

        def loss(q, k, v, pw):
            out = attention(q, k, v, causal=True, p_write=pw, chunk_size=4, **extra)
            return jnp.sum(jnp.asarray(weights) * out)

        grads = jax.grad(loss, argnums=(0, 1, 2, 3))(*(jnp.asarray(a) for a in (q, k, v, pw)))
        grads = [np.asarray(g) for g in grads]
    inputs = [q, k, v, pw]
    for i, grad in enumerate(grads):

        def f(x, i=i):
            args = list(inputs)
            args[i] = x
            return loss_np(*args)

        np.testing.assert_allclose(grad, numerical_gradient(f, inputs[i]), rtol=1e-5, atol=1e-7)
