"""Public helpers for checking that array-API code agrees across backends.

- :func:`assert_backends_agree` / :func:`compare_backends`: run a function on every
  installed backend from the same NumPy inputs and compare with NumPy float64.
- :func:`assert_matches_numpy`: one array against a NumPy reference, checking its
  library, dtype and shape too.
- :class:`XPBackend` and :mod:`namcore.testing.fixtures`: the backend matrix and the
  ``xp`` pytest fixture namcore's own tests use (import the fixtures into your
  ``conftest.py`` to reuse them).
- :data:`LIMITATIONS` and :func:`skips`: the known limitations of backends, as skip
  reasons for :func:`compare_backends`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from namcore import _compat
from namcore import backends as _backends
from namcore._typing import Array, Namespace

from ._compare import (
    BackendReport,
    assert_backends_agree,
    compare_backends,
    format_report,
    usable_backends,
)
from ._known import LIMITATIONS, skips
from ._matrix import ENV_VAR, XPBackend, selected_backends, setup_backend
from ._tolerance import Comparison, compare_to_reference, dtype_name, tolerance_for

__all__ = [
    "ENV_VAR",
    "LIMITATIONS",
    "BackendReport",
    "Comparison",
    "XPBackend",
    "assert_backends_agree",
    "assert_matches_numpy",
    "compare_backends",
    "compare_to_reference",
    "dtype_name",
    "format_report",
    "numerical_gradient",
    "selected_backends",
    "setup_backend",
    "skips",
    "to_numpy",
    "tolerance_for",
    "usable_backends",
]


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, step: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at the NumPy array ``x``.

    Use it in float64 as the oracle for autograd (``torch``) and ``jax.grad``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore.testing import numerical_gradient
    >>> np.round(numerical_gradient(lambda x: float(np.sum(x ** 2)), np.array([1.0, -2.0])), 6)
    array([ 2., -4.])
    """
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (f(plus) - f(minus)) / (2 * step)
    return grad


def to_numpy(x: Array) -> np.ndarray:
    """Copy any backend's array to a NumPy array on the host (for tests only).

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import backends
    >>> from namcore.testing import to_numpy
    >>> x = backends.get("numpy").from_numpy(np.arange(3.0), dtype="float32")
    >>> to_numpy(x)
    array([0., 1., 2.], dtype=float32)
    """
    return _backends.for_array(x).to_numpy(x)


def assert_matches_numpy(
    actual: Array,
    expected: np.ndarray,
    *,
    xp: Namespace,
    dtype: Any = None,
    rtol: float | None = None,
) -> None:
    """Assert ``actual`` is an array of namespace ``xp`` that matches ``expected``.

    Checks the library (so that a silent fall-back to NumPy is caught), the dtype
    (``dtype``, if given), the shape, and the values within a dtype-aware relative
    tolerance (``rtol`` overrides it).

    Examples
    --------
    >>> import numpy as np
    >>> import namcore
    >>> from namcore import backends
    >>> from namcore.testing import assert_matches_numpy
    >>> xp = backends.get("numpy").namespace()
    >>> assert_matches_numpy(namcore.unit(np.array([3.0, 4.0])), np.array([0.6, 0.8]), xp=xp)
    >>> assert_matches_numpy(np.array([1.0, 2.1]), np.array([1.0, 2.0]), xp=xp)
    Traceback (most recent call last):
    ...
    AssertionError: max relative error 5.000e-02 > 1e-09 (max abs error 1.000e-01)
    """
    got_xp = _compat.array_namespace(actual)
    want, got = _backends.for_namespace(xp).name, _backends.for_namespace(got_xp).name
    assert got == want, f"result is a {got} array, expected {want}"
    if dtype is not None:
        assert dtype_name(actual.dtype) == dtype_name(dtype), (
            f"dtype {dtype_name(actual.dtype)} != expected {dtype_name(dtype)}"
        )
    values = to_numpy(actual)
    expected = np.asarray(expected)
    assert values.shape == expected.shape, f"shape {values.shape} != expected {expected.shape}"
    tol = tolerance_for(actual.dtype) if rtol is None else rtol
    result = compare_to_reference(values, expected, tol)
    assert result.passed, (
        f"max relative error {result.max_rel_error:.3e} > {tol:.0e} "
        f"(max abs error {result.max_abs_error:.3e}) {result.problem}"
    )
