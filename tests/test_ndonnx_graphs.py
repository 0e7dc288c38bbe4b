"""The primitives recorded by ndonnx on symbolic inputs, run in onnxruntime at many shapes."""

from __future__ import annotations

import numpy as np
import pytest

import namcore
from namcore._agnostic import attention as noa

ndx = pytest.importorskip("ndonnx")
ort = pytest.importorskip("onnxruntime")


def _run(inputs: dict, outputs: dict, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(ndx.build(inputs, outputs).SerializeToString())
    return session.run(None, feeds)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_write_read_with_a_dynamic_batch():
    M = ndx.argument(shape=("B", 3, 5, 4), dtype=ndx.float32)
    k = ndx.argument(shape=("B", 3, 4), dtype=ndx.float32)
    v = ndx.argument(shape=("B", 3, 5), dtype=ndx.float32)
    p = ndx.argument(shape=("B", 3), dtype=ndx.float32)
    new = namcore.write(M, k, v, p, p)
    out = namcore.read(new, k, p)
    session = ort.InferenceSession(
        ndx.build({"M": M, "k": k, "v": v, "p": p}, {"new": new, "out": out}).SerializeToString()
    )
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        feeds = {
            "M": _f32(rng, batch, 3, 5, 4),
            "k": _f32(rng, batch, 3, 4),
            "v": _f32(rng, batch, 3, 5),
            "p": rng.uniform(size=(batch, 3)).astype(np.float32),
        }
        got_new, got_out = session.run(None, feeds)
        want = namcore.write(feeds["M"], feeds["k"], feeds["v"], feeds["p"], feeds["p"])
        np.testing.assert_allclose(got_new, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            got_out, namcore.read(want, feeds["k"], feeds["p"]), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("causal", [False, True])
def test_attention_with_dynamic_batch_and_length(causal):
    q, k, v = (ndx.argument(shape=("B", 2, "L", 8), dtype=ndx.float32) for _ in range(3))
    mask = ndx.argument(shape=("B", 1, "L"), dtype=ndx.bool)
    state = ndx.argument(shape=("B", 2, 8, 8), dtype=ndx.float32)
    y, memory = namcore.attention(q, k, v, mask=mask, state=state, causal=causal, return_state=True)
    session = ort.InferenceSession(
        ndx.build(
            {"q": q, "k": k, "v": v, "mask": mask, "state": state}, {"y": y, "memory": memory}
        ).SerializeToString()
    )
    rng = np.random.default_rng(1)
    for batch, length in ((1, 1), (3, 5), (2, 70)):
        feeds = {name: _f32(rng, batch, 2, length, 8) for name in ("q", "k", "v")}
        feeds["mask"] = rng.uniform(size=(batch, 1, length)) < 0.8
        feeds["state"] = _f32(rng, batch, 2, 8, 8)
        got_y, got_memory = session.run(None, feeds)
        want_y, want_memory = namcore.attention(
            feeds["q"],
            feeds["k"],
            feeds["v"],
            mask=feeds["mask"],
            state=feeds["state"],
            causal=causal,
            return_state=True,
        )
        np.testing.assert_allclose(got_y, want_y, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got_memory, want_memory, rtol=1e-4, atol=1e-5)


def test_attention_state_defaults_to_zeros_with_unknown_sizes():
    q = ndx.argument(shape=("B", "L", 4), dtype=ndx.float32)
    y, memory = namcore.attention(q, q, q, causal=True, return_state=True)
    (got_y, got_memory) = _run(
        {"q": q}, {"y": y, "memory": memory}, {"q": _f32(np.random.default_rng(2), 2, 6, 4)}
    )
    x = _f32(np.random.default_rng(2), 2, 6, 4)
    want_y, want_memory = namcore.attention(x, x, x, causal=True, return_state=True)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_memory, want_memory, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [1, 5, 64, 130])
def test_parallel_causal_form_equals_the_chunked_scan(length):
    """ndonnx's causal form (one step, O(L²)) against the chunked scan, in NumPy."""
    import array_api_compat.numpy as xp

    from namcore import backends

    rng = np.random.default_rng(length)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    qh, kh = (
        unit(rng.standard_normal((2, 3, length, 5))),
        unit(rng.standard_normal((2, 3, length, 5))),
    )
    v = rng.standard_normal((2, 3, length, 4))
    w, pr = rng.uniform(size=(2, 3, length)), rng.uniform(size=(2, 3, length))
    state = rng.standard_normal((2, 3, 4, 5))
    parallel = noa.causal_parallel(qh, kh, v, w, pr, state, xp=xp)
    chunked = noa.causal_chunked(
        qh, kh, v, w, pr, state, chunk_size=16, xp=xp, scan=backends.get("numpy").scan
    )
    for a, b in zip(parallel, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_symbolic_arrays_have_no_values():
    x = ndx.argument(shape=("B", 3), dtype=ndx.float32)
    backend = namcore.backends.get("ndonnx")
    assert backend.concrete_values(x) is None
    with pytest.raises(ValueError, match="symbolic"):
        backend.to_numpy(x)
    constant = ndx.asarray(np.arange(3.0))
    np.testing.assert_array_equal(backend.to_numpy(constant), np.arange(3.0))
