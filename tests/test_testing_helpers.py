"""namcore.testing: the public helpers report disagreement readably."""

from __future__ import annotations

import numpy as np
import pytest

import namcore
from namcore import backends
from namcore.testing import (
    XPBackend,
    assert_backends_agree,
    assert_matches_numpy,
    compare_backends,
    compare_to_reference,
    dtype_name,
    setup_backend,
    tolerance_for,
)


def _on_strict(x):
    return backends.for_array(x).name == "array_api_strict"


def test_agreeing_function_passes_everywhere():
    rng = np.random.default_rng(0)
    reports = assert_backends_agree(
        namcore.write, rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3), 0.5, 0.5
    )
    assert {r.dtype for r in reports} == {"float32", "float64"}
    assert all(r.passed for r in reports)


def test_disagreeing_backend_is_named_in_the_report():
    def wrong_on_strict(x):
        return x * 2 if _on_strict(x) else x

    with pytest.raises(AssertionError, match=r"backends disagree on wrong_on_strict") as info:
        assert_backends_agree(wrong_on_strict, np.ones(3), backends=["numpy", "array_api_strict"])
    lines = info.value.args[0].splitlines()
    assert any(line.startswith("array_api_strict") and "FAIL" in line for line in lines)
    assert any(line.startswith("numpy") and "pass" in line for line in lines)


def test_errors_are_reported_not_raised():
    def fails_on_strict(x):
        if _on_strict(x):
            raise RuntimeError("boom")
        return x

    reports = compare_backends(
        fails_on_strict, np.ones(2), backends=["numpy", "array_api_strict"], dtypes=["float64"]
    )
    assert [r.passed for r in reports] == [True, False]
    assert reports[1].error == "RuntimeError: boom"


def test_tuple_outputs_are_compared_elementwise():
    reports = compare_backends(
        lambda x: (x, namcore.unit(x)), np.ones((2, 3)), backends=["numpy"], dtypes=["float32"]
    )
    assert reports[0].passed


def test_tolerances_follow_dtype():
    assert tolerance_for("float64") < tolerance_for("float32") < tolerance_for("float16")
    assert dtype_name(np.float32) == "float32"
    result = compare_to_reference(np.array([1.0, 2.0]), np.array([1.0, 2.1]), 1e-3)
    assert not result.passed and result.max_abs_error == pytest.approx(0.1)
    assert compare_to_reference(np.zeros(2), np.zeros(3), 1.0).problem.startswith("shape")


def test_assert_matches_numpy_catches_a_silent_numpy_result():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(AssertionError, match="result is a numpy array, expected array_api_strict"):
        assert_matches_numpy(np.ones(2), np.ones(2), xp=strict)


def test_compiled_runs_keep_python_numbers_static():
    pytest.importorskip("jax")
    seen = []

    def scaled(x, factor, flip):
        seen.append(type(factor))  # a Python float when static, a tracer otherwise
        return -x * factor if flip else x * factor

    reports = compare_backends(
        scaled, np.arange(3.0), 2.5, True, backends=["jax"], dtypes=["float32"]
    )
    assert [(r.backend, r.passed, r.skipped) for r in reports] == [
        ("jax", True, ""),
        ("jax (jit)", True, ""),
    ]
    assert seen == [float, float, float]  # the reference, eager JAX, the one trace


def test_setup_backend_asks_the_backend():
    xp, device = setup_backend(XPBackend.NUMPY)
    assert xp is backends.get("numpy").namespace() and device == "cpu"
    readonly, _ = setup_backend(XPBackend.NUMPY_READONLY)
    with pytest.raises(ValueError, match="read-only"):
        readonly.asarray([1.0])[0] = 2.0


def test_setup_backend_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(type(backends.get("numpy")), "is_installed", lambda self: False)
    with pytest.raises(LookupError, match="numpy is not installed"):
        setup_backend(XPBackend.NUMPY)
