"""unit / write / read on every backend of the xp fixture, against NumPy float64."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function

from namcore import backends, read, unit, write
from namcore.testing import assert_matches_numpy

lazy_xp_function(unit)
lazy_xp_function(write)
lazy_xp_function(read)


def _np_unit(x, eps=1e-12):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def _np_write(M, k, v, pw=1.0, pe=0.0):
    kh = _np_unit(k)
    pw = np.asarray(pw)[..., None, None]
    pe = np.asarray(pe)[..., None, None]
    outer = v[..., :, None] * kh[..., None, :]
    return M + pw * outer - pe * (M @ kh[..., :, None]) * kh[..., None, :]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unit_matches_numpy(xp, device, rng, dtype):
    x = rng.normal(size=(3, 5, 7))
    out = unit(xp.asarray(x, dtype=getattr(xp, dtype), device=device))
    assert_matches_numpy(out, _np_unit(x), xp=xp, dtype=getattr(xp, dtype))


def test_unit_other_axis(xp, device, rng):
    x = rng.normal(size=(4, 6))
    out = unit(xp.asarray(x, device=device), axis=0)
    assert_matches_numpy(out, x / np.linalg.norm(x, axis=0, keepdims=True), xp=xp)


def test_unit_zero_vector_is_zero_not_nan(xp, device):
    x = np.zeros((2, 3))
    x[1] = [0.0, 3.0, 4.0]
    out = unit(xp.asarray(x, device=device))
    assert_matches_numpy(out, np.array([[0, 0, 0], [0, 0.6, 0.8]]), xp=xp)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_write_matches_numpy(xp, device, rng, dtype):
    M, k, v = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 4))
    pw, pe = rng.uniform(size=(2, 3)), rng.uniform(size=(2, 3))
    dt = getattr(xp, dtype)
    args = [xp.asarray(a, dtype=dt, device=device) for a in (M, k, v, pw, pe)]
    assert_matches_numpy(write(*args), _np_write(M, k, v, pw, pe), xp=xp, dtype=dt)


def test_write_defaults_add_outer_product(xp, device, rng):
    M, k, v = rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=4)
    out = write(*(xp.asarray(a, device=device) for a in (M, k, v)))
    assert_matches_numpy(out, M + np.outer(v, _np_unit(k)), xp=xp)


def test_write_python_float_probabilities(xp, device, rng):
    M, k, v = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 5)), rng.normal(size=(3, 4))
    out = write(*(xp.asarray(a, device=device) for a in (M, k, v)), 0.25, 0.75)
    assert_matches_numpy(out, _np_write(M, k, v, 0.25, 0.75), xp=xp)


def test_write_broadcasts_batch_dimensions(xp, device, rng):
    # one shared memory, a batch of keys and values, per-head probabilities
    M, k, v = rng.normal(size=(4, 5)), rng.normal(size=(2, 3, 5)), rng.normal(size=(3, 4))
    pw = rng.uniform(size=(3,))
    out = write(*(xp.asarray(a, device=device) for a in (M, k, v, pw)))
    assert out.shape == (2, 3, 4, 5)
    assert_matches_numpy(out, _np_write(M, k, v, pw), xp=xp)


def test_write_normalize_false_uses_raw_key(xp, device, rng):
    M, k, v = rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=4)
    out = write(*(xp.asarray(a, device=device) for a in (M, k, v)), normalize=False)
    assert_matches_numpy(out, M + np.outer(v, k), xp=xp)


def test_theorem_2_overwrite(xp, device, rng):
    M, k, v = rng.normal(size=(3, 6, 8)), rng.normal(size=(3, 8)), rng.normal(size=(3, 6))
    Mx, kx, vx = (xp.asarray(a, device=device) for a in (M, k, v))
    assert_matches_numpy(read(write(Mx, kx, vx, 1.0, 1.0), kx), v, xp=xp)


def test_read_matches_numpy(xp, device, rng):
    M, q, pr = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 5)), rng.uniform(size=2)
    out = read(*(xp.asarray(a, device=device) for a in (M, q, pr)))
    expected = pr[:, None] * (M @ _np_unit(q)[..., None])[..., 0]
    assert_matches_numpy(out, expected, xp=xp)


def test_read_normalize_false(xp, device, rng):
    M, q = rng.normal(size=(4, 5)), rng.normal(size=5)
    out = read(xp.asarray(M, device=device), xp.asarray(q, device=device), 0.5, normalize=False)
    assert_matches_numpy(out, 0.5 * M @ q, xp=xp)


def test_inputs_are_not_mutated(xp, device, rng):
    M, k, v = rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=4)
    Mx, kx, vx = (xp.asarray(a, device=device) for a in (M, k, v))
    write(Mx, kx, vx, 1.0, 0.5)
    read(Mx, kx)
    assert_matches_numpy(Mx, M, xp=xp, rtol=0)
    assert_matches_numpy(kx, k, xp=xp, rtol=0)
    assert_matches_numpy(vx, v, xp=xp, rtol=0)


def test_float32_inputs_give_float32(xp, device, rng):
    M, k, v = (
        xp.asarray(rng.normal(size=s), dtype=xp.float32, device=device)
        for s in ((4, 5), (5,), (4,))
    )
    pw = xp.asarray(0.5, dtype=xp.float64, device=device)  # does not promote the result
    out = write(M, k, v, pw)
    assert out.dtype == xp.float32
    assert read(out, k).dtype == xp.float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_write_does_not_overflow_in_the_middle(xp, device, dtype):
    # M k̂ = 40000·√3 ≈ 69282 is past float16's 65504, yet the overwritten memory
    # (read back: v) is small: the write must not pass through the half format.
    if not hasattr(xp, dtype):
        pytest.skip(f"{xp.__name__} has no {dtype}")
    half = getattr(xp, dtype)
    M = xp.full((2, 3), 40000.0, dtype=half, device=device)
    k = xp.ones((3,), dtype=half, device=device)
    v = xp.asarray([1.0, -1.0], dtype=half, device=device)
    out = write(M, k, v, 1.0, 1.0)
    assert out.dtype == half
    r = xp.astype(read(out, k), xp.float32)
    got = backends.for_array(r).to_numpy(r)
    np.testing.assert_allclose(got, [1.0, -1.0], atol=0.02 if dtype == "float16" else 0.05)
