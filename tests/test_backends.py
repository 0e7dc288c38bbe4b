"""The backend layer: registry, conversion, RNG, scan, and fast paths equal to the standard path."""

from __future__ import annotations

import numpy as np
import pytest

from namcore import backends
from namcore.backends import Backend
from namcore.testing import assert_matches_numpy, to_numpy


def test_registry_names_and_unknown_backend():
    assert backends.NAMES == ("numpy", "array_api_strict", "torch", "jax", "cupy", "ndonnx", "dask")
    assert "numpy" in backends.installed()
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'; expected one of numpy"):
        backends.get("tensorflow")


def test_for_array_finds_the_backend(xp, device, library):
    x = xp.asarray([1.0, 2.0], device=device)
    backend = backends.for_array(x)
    assert backend.name == library.backend_name
    assert backends.for_namespace(xp) is backend
    assert backend.is_installed()
    assert backend.devices(), "a backend that ran must see a device"


def test_unknown_compliant_namespace_gets_the_generic_backend():
    class FakeNamespace:
        __name__ = "fake_array_library"

    backend = backends.for_namespace(FakeNamespace())
    assert backend.name == "fake_array_library"
    assert type(backend).__name__ == "GenericBackend"


def test_numpy_round_trip(xp, device):
    backend = backends.for_namespace(xp)
    a = np.arange(6.0).reshape(2, 3)
    x = backend.from_numpy(a, dtype="float32", device=device)
    assert_matches_numpy(x, a, xp=xp, dtype=xp.float32, rtol=0)
    back = backend.to_numpy(x)
    assert isinstance(back, np.ndarray) and np.array_equal(back, a)


def test_random_normal_is_seeded_and_identical_across_backends(xp, device):
    backend = backends.for_namespace(xp)
    a = backend.random_normal(7, (3, 4), dtype="float64", device=device)
    b = backend.random_normal(7, (3, 4), dtype="float64", device=device)
    c = backend.random_normal(8, (3, 4), dtype="float64", device=device)
    reference = backends.get("numpy").random_normal(7, (3, 4), dtype="float64")
    assert_matches_numpy(a, to_numpy(reference), xp=xp, rtol=0)
    assert np.array_equal(to_numpy(a), to_numpy(b))
    assert not np.array_equal(to_numpy(a), to_numpy(c))
    assert 0.3 < float(np.std(to_numpy(backend.random_normal(1, (1000,))))) < 3


def test_scan_matches_a_python_loop(xp, device):
    backend = backends.for_namespace(xp)
    rng = np.random.default_rng(0)
    xs_np, w_np = rng.normal(size=(5, 3)), rng.normal(size=3)
    xs, w = xp.asarray(xs_np, device=device), xp.asarray(w_np, device=device)

    def step(carry, x):
        total, scaled = carry
        new = (total + x, scaled * 0.5 + x * w)
        return new, (new[0], xp.sum(new[1]))

    init = (xp.zeros(3, dtype=xs.dtype, device=device), xp.zeros(3, dtype=xs.dtype, device=device))
    (total, scaled), (totals, sums) = backend.scan(step, init, xs)
    expected_totals = np.cumsum(xs_np, axis=0)
    s, expected_sums = np.zeros(3), []
    for x in xs_np:
        s = s * 0.5 + x * w_np
        expected_sums.append(s.sum())
    assert_matches_numpy(total, expected_totals[-1], xp=xp)
    assert_matches_numpy(totals, expected_totals, xp=xp)
    assert_matches_numpy(scaled, s, xp=xp)
    assert_matches_numpy(sums, np.array(expected_sums), xp=xp)


def test_jit_gives_the_same_values(xp, device):
    backend = backends.for_namespace(xp)
    calls = []

    def f(a, b):
        calls.append(1)
        return xp.sum(a * b, axis=-1)

    a = xp.asarray(np.arange(6.0).reshape(2, 3), device=device)
    compiled = backend.jit(f)
    for _ in range(3):
        assert_matches_numpy(compiled(a, a), np.array([5.0, 50.0]), xp=xp)
    assert backend.jit_compiles == (backend.name == "jax")
    if backend.jit_compiles:
        assert len(calls) == 1  # traced once, then reused
    else:
        assert compiled is f


def test_jit_static_arguments_are_python_values(xp, device):
    backend = backends.for_namespace(xp)
    seen = []

    def f(a, power, flip):
        seen.append((type(power), flip))  # Python values even while tracing
        out = a**power
        return -out if flip else out

    a = xp.asarray([1.0, 2.0, 3.0], device=device)
    compiled = backend.jit(f, static_argnums=(1, 2))
    assert_matches_numpy(compiled(a, 2, True), np.array([-1.0, -4.0, -9.0]), xp=xp)
    assert_matches_numpy(compiled(a, 3, False), np.array([1.0, 8.0, 27.0]), xp=xp)
    assert seen == [(int, True), (int, False)]


def test_enable_float64_makes_float64_available(xp):
    backend = backends.for_namespace(xp)
    backend.enable_float64()  # the xp fixture did it already; again is harmless
    assert backend.supports_dtype("float64")
    x = backend.from_numpy(np.array([0.1]), dtype="float64")
    assert to_numpy(x).dtype == np.float64 and to_numpy(x)[0] == 0.1


def test_jax_enable_float64_turns_x64_on(jax_x64):  # the fixture restores the setting
    jax_x64.config.update("jax_enable_x64", False)
    backend = backends.get("jax")
    assert not backend.supports_dtype("float64") and backend.supports_dtype("float32")
    backend.enable_float64()
    assert backend.supports_dtype("float64") and backend.supports_dtype("int64")


def test_setup_for_testing_gives_a_namespace_and_a_device(library):
    backend = backends.get(library.backend_name)
    try:
        xp, device = backend.setup_for_testing(gpu=library.on_gpu)
    except LookupError as exc:
        pytest.skip(f"{library.value}: {exc}")
    assert backends.for_array(xp.asarray([1.0], device=device)) is backend


def test_libraries_without_gpu_support_say_so():
    for name in ("numpy", "array_api_strict", "dask", "ndonnx"):
        with pytest.raises(LookupError, match=f"namcore runs {name} on the CPU only"):
            backends.get(name).testing_device(gpu=True)


def test_scan_without_xs_needs_length(xp, device):
    backend = backends.for_namespace(xp)
    one = xp.asarray(1.0, device=device)
    carry, ys = backend.scan(lambda c, _: (c * 2, None), one, None, length=4)
    assert float(to_numpy(carry)) == 16.0 and ys is None
    if type(backend).scan is Backend.scan:
        with pytest.raises(ValueError, match="`length` is required"):
            backend.scan(lambda c, _: (c, None), one, None)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("probabilities", ["defaults", "floats", "arrays"])
def test_write_fast_path_equals_standard_path(xp, device, normalize, probabilities):
    """Every backend's write (fast path or not) equals the base-class standard path."""
    backend = backends.for_namespace(xp)
    rng = np.random.default_rng(3)
    M, k, v = (
        xp.asarray(rng.normal(size=s), device=device) for s in ((2, 3, 4, 5), (3, 5), (2, 1, 4))
    )
    pw, pe = {
        "defaults": (1.0, 0.0),
        "floats": (0.3, 0.6),
        "arrays": tuple(xp.asarray(rng.uniform(size=(2, 3)), device=device) for _ in "ab"),
    }[probabilities]
    fast = backend.write(M, k, v, pw, pe, normalize, 1e-12, xp)
    standard = Backend.write(backend, M, k, v, pw, pe, normalize, 1e-12, xp)
    assert fast.shape == standard.shape == (2, 3, 4, 5)
    assert_matches_numpy(fast, to_numpy(standard), xp=xp, rtol=1e-12)


def test_read_fast_path_equals_standard_path(xp, device):
    backend = backends.for_namespace(xp)
    rng = np.random.default_rng(4)
    M, q = (
        xp.asarray(rng.normal(size=(3, 4, 5)), device=device),
        xp.asarray(rng.normal(size=(3, 5)), device=device),
    )
    fast = backend.read(M, q, 0.5, True, 1e-12, xp)
    standard = Backend.read(backend, M, q, 0.5, True, 1e-12, xp)
    assert_matches_numpy(fast, to_numpy(standard), xp=xp, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_fast_path_equals_standard_path(xp, device, dtype):
    """Including both tails, where a naive 1 / (1 + exp(-x)) overflows."""
    backend = backends.for_namespace(xp)
    values = np.concatenate([np.linspace(-30, 30, 61), [-1000.0, -90.0, 0.0, 90.0, 1000.0]])
    x = xp.asarray(values, dtype=getattr(xp, dtype), device=device)
    fast = backend.sigmoid(x, xp)
    standard = Backend.sigmoid(backend, x, xp)
    assert_matches_numpy(fast, to_numpy(standard), xp=xp, dtype=getattr(xp, dtype))
    expected = np.exp(-np.logaddexp(0.0, -values))  # 1 / (1 + exp(-x)) without overflow
    assert_matches_numpy(fast, expected, xp=xp, dtype=getattr(xp, dtype))


@pytest.mark.parametrize("lead", [(), (5,), (2, 3, 4)], ids=["vector", "rows", "3-d"])
def test_linear_fast_path_equals_standard_path(xp, device, lead):
    backend = backends.for_namespace(xp)
    rng = np.random.default_rng(5)
    x = xp.asarray(rng.normal(size=(*lead, 6)), device=device)
    w = xp.asarray(rng.normal(size=(6, 7)), device=device)
    fast = backend.linear(x, w, xp)
    assert tuple(fast.shape) == (*lead, 7)
    assert_matches_numpy(fast, to_numpy(Backend.linear(backend, x, w, xp)), xp=xp, rtol=1e-12)
    assert_matches_numpy(fast, to_numpy(x) @ to_numpy(w), xp=xp, rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
@pytest.mark.parametrize("parts", ["erase", "decay", "both"])
def test_attention_delta_fast_path_equals_standard_path(xp, device, causal, parts):
    """Every backend's erase/decay attention equals the base-class chunk form, with
    broadcast batches (q of batch 1), gates and a reset."""
    backend = backends.for_namespace(xp)
    rng = np.random.default_rng(9)
    length = 13

    def arr(*shape, low=None):
        a = rng.normal(size=shape) if low is None else rng.uniform(low, 1, size=shape)
        return xp.asarray(a, device=device)

    qh, kh, v = arr(1, 3, length, 4), arr(2, 3, length, 4), arr(2, 3, length, 5)
    qh, kh = (x / xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True)) for x in (qh, kh))
    w, pr, state = arr(2, 3, length, low=0), arr(2, 3, length, low=0), arr(2, 3, 5, 4)
    e = arr(2, 3, length, low=0) if parts != "decay" else None
    log_decay = reset = None
    if parts != "erase":
        log_decay = xp.log(arr(2, 3, length, low=0.5))
        flags = np.zeros((2, 3, length))
        flags[1, 2, 6] = 1.0
        reset = xp.asarray(flags, device=device)
    args = (qh, kh, v, w, e, log_decay, reset, pr, state, causal, 4, xp)
    fast = backend.attention_delta(*args)
    standard = Backend.attention_delta(backend, *args)
    for got, want in zip(fast, standard, strict=True):
        assert tuple(got.shape) == tuple(want.shape)
        assert_matches_numpy(got, to_numpy(want), xp=xp, rtol=1e-12)


def test_numpy_fast_path_falls_back_when_memory_broadcasts():
    # M has a larger batch than k and v: the in-place add cannot be used.
    rng = np.random.default_rng(5)
    M, k, v = rng.normal(size=(4, 2, 3)), rng.normal(size=3), rng.normal(size=2)
    xp = backends.get("numpy").namespace()
    numpy = backends.get("numpy")
    out = numpy.write(M, k, v, 1.0, 0.0, True, 1e-12, xp)
    assert np.allclose(out, Backend.write(numpy, M, k, v, 1.0, 0.0, True, 1e-12, xp))


def test_concrete_values_skips_jax_tracers():
    jax = pytest.importorskip("jax")
    backend = backends.get("jax")
    seen = []
    jax.jit(lambda x: seen.append(backend.concrete_values(x)) or x)(jax.numpy.ones(2))
    assert seen == [None]
    assert backend.concrete_values(jax.numpy.ones(2)).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_unit_fast_path_equals_standard_path(xp, device, library, dtype):
    if not hasattr(xp, dtype):
        pytest.skip(f"{library.value} has no {dtype}")
    backend = backends.for_namespace(xp)
    x = np.random.default_rng(6).normal(size=(3, 4, 5))
    x[0, 0] = 0.0
    arr = xp.asarray(xp.asarray(x, device=device), dtype=getattr(xp, dtype))
    for axis in (-1, 0):
        fast = backend.unit(arr, axis, 1e-12, xp)
        standard = Backend.unit(backend, arr, axis, 1e-12, xp)
        assert fast.dtype == standard.dtype == arr.dtype
        assert_matches_numpy(fast, to_numpy(standard), xp=xp, rtol=1e-12)
