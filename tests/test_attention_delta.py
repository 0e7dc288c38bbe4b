"""The delta-rule family (erase, decay) of namcore.attention: the chunk form on every
backend against the position-by-position float64 oracle, resets, underflow, gradients,
streaming, bad input, and fla's pure-torch references as an outside oracle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function
from test_attention import oracle

from namcore import attention
from namcore._agnostic import delta
from namcore.testing import XPBackend, assert_matches_numpy, numerical_gradient, to_numpy

lazy_xp_function(attention)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    b, h, length, d_k, d_v = 2, 2, 37, 6, 5
    decay = rng.uniform(0.4, 1, (b, h, length))
    decay[0, 1, [0, 17, 18]] = 0.0  # resets, two of them in a row
    decay[1, 0, 30] = 0.0
    return {
        "q": rng.normal(size=(b, h, length, d_k)),
        "k": rng.normal(size=(b, h, length, d_k)),
        "v": rng.normal(size=(b, h, length, d_v)),
        "p_write": rng.uniform(size=(b, h, length)),
        "p_erase": rng.uniform(size=(b, h, length)),
        "p_read": rng.uniform(size=(b, h, length)),
        "decay": decay,
        "mask": rng.uniform(size=(b, 1, length)) > 0.25,
        "state": rng.normal(size=(b, h, d_v, d_k)),
    }


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
@pytest.mark.parametrize("chunk_size", [1, 5, 16, 128])
def test_everything_together_at_every_chunk_size(xp, device, library, data, causal, chunk_size):
    """Gates, masks, state, erase and decay (with resets) at once; chunk sizes 1-128
    (one, not a power of two, the default, longer than the sequence)."""
    if library is XPBackend.NDONNX and chunk_size != 16:
        pytest.skip("ndonnx runs the whole sequence as one chunk whatever chunk_size says")
    expected_y, expected_state = oracle(
        data["q"],
        data["k"],
        data["v"],
        causal=causal,
        **{n: data[n] for n in data if n not in "qkv"},
    )
    arrays = {name: xp.asarray(a, device=device) for name, a in data.items()}
    y, state = attention(
        arrays.pop("q"),
        arrays.pop("k"),
        arrays.pop("v"),
        causal=causal,
        return_state=True,
        chunk_size=chunk_size,
        **arrays,
    )
    assert_matches_numpy(y, expected_y, xp=xp, dtype=xp.float64, rtol=1e-10)
    assert_matches_numpy(state, expected_state, xp=xp, rtol=1e-10)


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
def test_streaming_with_erase_and_decay(xp, device, data, causal):
    """Pieces with the state passed along equal one call, resets and masks included."""
    arrays = {n: xp.asarray(a, device=device) for n, a in data.items() if n != "state"}
    per_position = ("p_write", "p_erase", "decay", "mask")
    whole_y, whole_state = attention(
        arrays["q"],
        arrays["k"],
        arrays["v"],
        causal=causal,
        return_state=True,
        **{n: arrays[n] for n in per_position},
    )
    state, ys = None, []
    for start, stop in ((0, 11), (11, 12), (12, 37)):
        piece = {n: arrays[n][..., start:stop] for n in per_position}
        y, state = attention(
            *(arrays[n][..., start:stop, :] for n in "qkv"),
            causal=causal,
            state=state,
            return_state=True,
            chunk_size=4,
            **piece,
        )
        ys.append(y)
    assert_matches_numpy(state, to_numpy(whole_state), xp=xp, rtol=1e-10)
    if causal:
        assert_matches_numpy(xp.concat(ys, axis=-2), to_numpy(whole_y), xp=xp, rtol=1e-10)


def test_resets_pack_sequences_into_one_row(xp, device):
    """Three sequences in one row, each starting with a decay of 0, give what they give
    run apart (gated delta rule, causal)."""
    rng = np.random.default_rng(11)
    lengths = (7, 12, 5)
    pieces = [rng.normal(size=(3, 2, n, 4)) for n in lengths]
    betas = [rng.uniform(size=(2, n)) for n in lengths]
    decays = [np.concatenate([[0.0], rng.uniform(0.5, 1, n - 1)]) for n in lengths]
    decays = [np.broadcast_to(d, (2, d.size)) for d in decays]

    def run(qkv, beta, decay):
        q, k, v = (xp.asarray(a, device=device) for a in qkv)
        b, g = (xp.asarray(np.ascontiguousarray(a), device=device) for a in (beta, decay))
        return attention(
            q, k, v, causal=True, p_write=b, p_erase=b, decay=g, chunk_size=8, return_state=True
        )

    packed_y, packed_state = run(
        np.concatenate(pieces, axis=-2), np.concatenate(betas, axis=-1), np.concatenate(decays, -1)
    )
    apart = [run(p, b, d) for p, b, d in zip(pieces, betas, decays, strict=True)]
    assert_matches_numpy(
        packed_y, np.concatenate([to_numpy(y) for y, _ in apart], axis=-2), xp=xp, rtol=1e-12
    )
    assert_matches_numpy(packed_state, to_numpy(apart[-1][1]), xp=xp, rtol=1e-12)


def test_float32_decay_underflow_stays_finite_and_right(xp, device):
    """A decay of 0.05 per token over 512 tokens underflows float32 products (0.05^512);
    the chunk form only exponentiates differences inside a chunk, so it stays finite
    and equal to the float64 oracle at float32 rounding."""
    if not hasattr(xp, "float32"):
        pytest.skip("no float32")
    rng = np.random.default_rng(5)
    q, k, v = rng.normal(size=(3, 2, 512, 8))
    beta = rng.uniform(size=(2, 512))
    decay = np.full((2, 512), 0.05)
    decay[1, 200] = 0.0
    expected, expected_state = oracle(q, k, v, causal=True, p_write=beta, p_erase=beta, decay=decay)
    arrays = [xp.asarray(a, dtype=xp.float32, device=device) for a in (q, k, v, beta, decay)]
    y, state = attention(
        *arrays[:3],
        causal=True,
        p_write=arrays[3],
        p_erase=arrays[3],
        decay=arrays[4],
        chunk_size=64,
        return_state=True,
    )
    assert np.isfinite(to_numpy(y)).all() and np.isfinite(to_numpy(state)).all()
    assert_matches_numpy(y, expected, xp=xp, rtol=1e-5)
    assert_matches_numpy(state, expected_state, xp=xp, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs_accumulate_in_float32(xp, device, library, data, dtype):
    if not hasattr(xp, dtype):
        pytest.skip(f"{library.value} has no {dtype}")
    dt = getattr(xp, dtype)
    q, k, v = (xp.asarray(xp.asarray(data[n], device=device), dtype=dt) for n in "qkv")
    beta, decay = (
        xp.asarray(xp.asarray(data[n], device=device), dtype=dt) for n in ("p_erase", "decay")
    )
    y, state = attention(
        q, k, v, causal=True, p_write=beta, p_erase=beta, decay=decay, return_state=True
    )
    assert y.dtype == dt and state.dtype == xp.float32
    exact = [to_numpy(x).astype(np.float64) for x in (q, k, v, beta, decay)]
    expected = oracle(*exact[:3], causal=True, p_write=exact[3], p_erase=exact[3], decay=exact[4])[
        0
    ]
    assert_matches_numpy(y, expected, xp=xp, rtol={"float16": 3e-3, "bfloat16": 2e-2}[dtype])


@pytest.mark.parametrize(
    ("decay", "error", "pattern"),
    [
        (lambda d: d + 0.5, ValueError, r"`decay` must lie in \[0, 1\]"),
        (lambda d: -d, ValueError, r"`decay` must lie in \[0, 1\]"),
        (lambda d: 1.5, ValueError, r"`decay` must lie in \[0, 1\]"),
        (lambda d: d[..., :36], ValueError, r"`decay` of shape \(2, 2, 36\) must broadcast"),
        (lambda d: d[..., None], ValueError, r"`decay` of shape \(2, 2, 37, 1\) must broadcast"),
        (lambda d: (d > 0.5).astype(np.int64), TypeError, r"`decay` must have a real floating"),
        (lambda d: [0.5], TypeError, r"`decay` must be a Python float or an array"),
        (lambda d: True, TypeError, r"`decay` must be a Python float or an array"),
    ],
    ids=[
        "above_one",
        "negative",
        "float_above_one",
        "length",
        "feature_axis",
        "integer",
        "list",
        "bool",
    ],
)
def test_bad_decay(data, decay, error, pattern):
    with pytest.raises(error, match=pattern):
        attention(data["q"], data["k"], data["v"], causal=True, decay=decay(data["decay"]))


def test_constant_decays_are_floats(data):
    """A Python float decays every position alike; 1 is no decay and 0 a reset each time."""
    q, k, v = data["q"], data["k"], data["v"]
    full = np.full(data["decay"].shape, 0.9)
    np.testing.assert_allclose(
        attention(q, k, v, causal=True, decay=0.9),
        attention(q, k, v, causal=True, decay=full),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        attention(q, k, v, causal=True, decay=1.0), attention(q, k, v, causal=True), rtol=1e-12
    )
    only_self = oracle(q, k, v, causal=True, decay=np.zeros(full.shape))[0]
    np.testing.assert_allclose(attention(q, k, v, causal=True, decay=0.0), only_self, rtol=1e-12)


def test_empty_sequence_with_erase_and_decay(data):
    q, k, v = (data[n][..., :0, :] for n in "qkv")
    y, state = attention(
        q,
        k,
        v,
        causal=True,
        p_erase=data["p_erase"][..., :0],
        decay=data["decay"][..., :0],
        state=data["state"],
        return_state=True,
    )
    assert y.shape == (2, 2, 0, 5)
    np.testing.assert_array_equal(state, data["state"])


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_gradients_match_finite_differences(framework):
    """d/d(q, k, v, p_erase, decay) of the gated delta rule, float64, with a reset."""
    rng = np.random.default_rng(8)
    q, k, v = rng.normal(size=(3, 2, 9, 3))
    pe, decay = rng.uniform(0.1, 0.9, size=(2, 2, 9))
    decay[1, 6] = 0.0  # a reset: no gradient flows through it, the others are unaffected
    weights = rng.normal(size=(2, 9, 3))
    pw = rng.uniform(0.1, 0.9, size=(2, 9))

    def loss_np(q, k, v, pe, decay):
        return float(
            np.sum(
                weights
                * attention(q, k, v, causal=True, p_write=pw, p_erase=pe, decay=decay, chunk_size=4)
            )
        )

    inputs = [q, k, v, pe, decay]
    if framework == "torch":
        torch = pytest.importorskip("torch")
        tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
        out = attention(
            *tensors[:3],
            causal=True,
            p_write=torch.tensor(pw),
            p_erase=tensors[3],
            decay=tensors[4],
            chunk_size=4,
        )
        (torch.tensor(weights) * out).sum().backward()
        grads = [t.grad.numpy() for t in tensors]
    else:
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy

        def loss(q, k, v, pe, decay):
            out = attention(
                q, k, v, causal=True, p_write=jnp.asarray(pw), p_erase=pe, decay=decay, chunk_size=4
            )
            return jnp.sum(jnp.asarray(weights) * out)

        grads = jax.grad(loss, argnums=tuple(range(5)))(*(jnp.asarray(a) for a in inputs))
        grads = [np.asarray(g) for g in grads]
    for i, grad in enumerate(grads):

        def f(x, i=i):
            args = list(inputs)
            args[i] = x
            if i == 4:  # the reset stays a reset: its own derivative is not propagated
                args[i] = np.where(decay == 0, 0.0, x)
            return loss_np(*args)

        expected = numerical_gradient(f, inputs[i])
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_jax_vmap_equals_the_batched_call(jax_x64):
    jnp = jax_x64.numpy
    rng = np.random.default_rng(2)
    q, k, v = (jnp.asarray(a) for a in rng.normal(size=(3, 4, 10, 3)))
    beta, decay = (jnp.asarray(a) for a in rng.uniform(size=(2, 4, 10)))

    def one(q, k, v, beta, decay):
        return attention(
            q, k, v, causal=True, p_write=beta, p_erase=beta, decay=decay, chunk_size=4
        )

    mapped = jax_x64.vmap(one)(q, k, v, beta, decay)
    np.testing.assert_allclose(
        np.asarray(mapped), np.asarray(one(q, k, v, beta, decay)), rtol=1e-12
    )


def _backward_allocations(torch, length: int, erase: bool) -> int:
    """Bytes the torch backward of causal attention allocates (profiler)."""
    rng = np.random.default_rng(0)
    q, k, v = (
        torch.tensor(a, requires_grad=True)
        for a in rng.standard_normal((3, 1, length, 16), dtype=np.float32)
    )
    beta = torch.tensor(rng.uniform(size=(1, length)).astype(np.float32), requires_grad=True)
    extra = {"p_erase": beta, "decay": 0.9} if erase else {}
    out = attention(q, k, v, causal=True, p_write=beta, chunk_size=16, **extra)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        out.sum().backward()
    return sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)


@pytest.mark.parametrize("erase", [False, True], ids=["plain", "erase_decay"])
def test_torch_backward_allocates_linearly_in_length(erase):
    """Indexing stacked chunks at every step would zero-fill a gradient of the whole
    input per chunk (quadratic); unstacking once keeps the backward linear."""
    torch = pytest.importorskip("torch")
    small = _backward_allocations(torch, 1024, erase)
    large = _backward_allocations(torch, 4096, erase)
    assert large < 5 * small, f"{small} B at L = 1,024 but {large} B at L = 4,096"


@pytest.mark.parametrize("size", [1, 2, 3, 8, 13, 64])
def test_unit_lower_inverse(size):
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(size)
    a = np.tril(rng.uniform(-1, 1, size=(3, size, size)), -1)
    inverse = delta.unit_lower_inverse(a, xp=xp)
    np.testing.assert_allclose(
        inverse @ (np.eye(size) + a), np.broadcast_to(np.eye(size), a.shape), atol=1e-9
    )
    assert np.array_equal(np.triu(inverse, 1), np.zeros_like(inverse))


# --------------------------------------------------------------------- outside oracle
def _fla_module(name: str):
    """fla's pure-torch reference ``fla/ops/<name>/naive.py``, loaded from its file (the
    package's ``__init__`` needs Triton). Skips when fla is not installed."""
    pytest.importorskip("torch")
    pytest.importorskip("einops")
    spec = importlib.util.find_spec("fla")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("fla is not installed (pip install fla-core; it is in the test extra)")
    path = Path(spec.submodule_search_locations[0]) / "ops" / name / "naive.py"
    if not path.is_file():
        pytest.skip(f"fla has no {path}")
    module_spec = importlib.util.spec_from_file_location(f"_fla_naive_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules.setdefault(module_spec.name, module)
    module_spec.loader.exec_module(module)
    return module


def test_delta_rule_equals_fla_chunkwise_float64():
    """namcore with p_write = p_erase = β equals fla's ``delta_rule_chunkwise`` given
    k̂, q̂·√d and β; fla's state is namcore's memory transposed."""
    fla = _fla_module("delta_rule")
    import torch

    rng = np.random.default_rng(4)
    b, h, length, d = 2, 3, 64, 8
    q, k, v = (torch.tensor(a) for a in rng.normal(size=(3, b, h, length, d)))
    beta = torch.tensor(rng.uniform(size=(b, h, length)))
    y, state = attention(q, k, v, causal=True, p_write=beta, p_erase=beta, return_state=True)
    qh = q / q.norm(dim=-1, keepdim=True)
    kh = k / k.norm(dim=-1, keepdim=True)
    expected, expected_state = fla.delta_rule_chunkwise(qh * d**0.5, kh, v, beta, chunk_size=16)
    assert expected.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        state.numpy(), expected_state.transpose(-1, -2).numpy(), rtol=0, atol=1e-12
    )


def test_gated_delta_rule_equals_fla_reference():
    """With a decay, fla's ``naive_chunk_gated_delta_rule`` (layout (B, T, H, d), g the
    log-decay; it computes in float32) agrees at float32 rounding."""
    fla = _fla_module("gated_delta_rule")
    import torch

    rng = np.random.default_rng(6)
    b, h, length, d = 2, 2, 100, 8
    q, k, v = (torch.tensor(a) for a in rng.normal(size=(3, b, h, length, d)))
    beta = torch.tensor(rng.uniform(size=(b, h, length)))
    decay = torch.tensor(rng.uniform(0.8, 1.0, size=(b, h, length)))
    state0 = torch.tensor(rng.normal(size=(b, h, d, d)))
    y, state = attention(
        q,
        k,
        v,
        causal=True,
        p_write=beta,
        p_erase=beta,
        decay=decay,
        state=state0,
        return_state=True,
    )
    qh = q / q.norm(dim=-1, keepdim=True)
    kh = k / k.norm(dim=-1, keepdim=True)
    layout = [x.transpose(1, 2) for x in (qh, kh, v, beta, decay.log())]
    expected, expected_state = fla.naive_chunk_gated_delta_rule(
        layout[0],
        layout[1],
        layout[2],
        layout[4],
        layout[3],
        chunk_size=32,
        scale=1.0,
        initial_state=state0.transpose(-1, -2),
        output_final_state=True,
    )
    np.testing.assert_allclose(
        y.numpy(),
        expected.transpose(1, 2).double().numpy(),
        rtol=0,
        atol=2e-5 * float(y.abs().max()),
    )
    np.testing.assert_allclose(
        state.numpy(),
        expected_state.transpose(-1, -2).double().numpy(),
        rtol=0,
        atol=2e-5 * float(state.abs().max()),
    )


def test_attention_page_examples_run():
    """The runnable examples of docs/attention.md (blocks starting with an import)."""
    import re

    page = Path(__file__).resolve().parent.parent / "docs" / "attention.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    runnable = [b for b in blocks if b.startswith("import")]
    assert len(runnable) >= 2
    for block in runnable:
        exec(compile(block, str(page), "exec"), {})


@pytest.mark.parametrize("variant", ["plain", "erase_decay"])
@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
def test_masked_positions_are_inert_even_when_not_finite(xp, device, data, variant, causal):
    """NaN and inf in k and v at masked positions change nothing: masking selects."""
    options = {} if variant == "plain" else {n: data[n] for n in ("p_erase", "decay")}
    mask = np.broadcast_to(data["mask"], data["p_write"].shape)
    poisoned = {n: data[n].copy() for n in "kv"}
    poisoned["k"][~mask] = np.nan
    poisoned["v"][~mask] = np.inf
    expected_y, expected_state = oracle(
        data["q"], data["k"], data["v"], causal=causal, mask=data["mask"], **options
    )
    arrays = {
        n: xp.asarray(a, device=device)
        for n, a in {**options, "q": data["q"], **poisoned, "mask": data["mask"]}.items()
    }
    y, state = attention(
        arrays.pop("q"),
        arrays.pop("k"),
        arrays.pop("v"),
        causal=causal,
        return_state=True,
        **arrays,
    )
    assert_matches_numpy(state, expected_state, xp=xp, rtol=1e-10)
    real = np.broadcast_to(mask[..., None], expected_y.shape)
    got = to_numpy(y)
    np.testing.assert_allclose(got[real], expected_y[real], rtol=1e-9)


def test_repeated_keys_stay_exact_in_float32():
    """The worst case for the triangular solve: one key repeated with erase 1 (each
    write overwrites the last). Powers of A then hold binomial coefficients (C(63, 31)
    ~ 1e18 at C = 64), which a Neumann-product inverse would multiply; the doubling
    inverse only multiplies bounded blocks, so float32 stays at float32 rounding."""
    rng = np.random.default_rng(12)
    length, d = 256, 8
    q = rng.normal(size=(length, d))
    k = np.broadcast_to(rng.normal(size=d), (length, d)).copy()
    v = rng.normal(size=(length, d))
    expected, expected_state = oracle(q, k, v, causal=True, p_erase=np.ones(length))
    y, state = attention(
        *(a.astype(np.float32) for a in (q, k, v)),
        causal=True,
        p_erase=np.ones(length, dtype=np.float32),
        chunk_size=64,
        return_state=True,
    )
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(
        state, expected_state, rtol=0, atol=1e-5 * np.abs(expected_state).max()
    )
