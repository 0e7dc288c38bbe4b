"""NumPy float64 oracles and the tolerance rule of the property tests.

The oracles follow the NAM paper's definitions of RD and WR (Nam & Seo, arXiv
2302.09422) directly and never call namcore.

Tolerance. ``namcore.testing.assert_matches_numpy`` measures the error relative to
``max|expected|``. That is not sound for properties whose expected value can be
much smaller than the operands (``read(write(M, k, 0, 0, 1), k) == 0`` is exactly
zero while the computation subtracts terms of size ``|M|``): the rounding error
scales with the operands, not with the result. :func:`assert_close` therefore takes
a ``scale`` (the size of the largest intermediate term, see :func:`memory_scale`) and
accepts ``max|actual - expected| <= rtol * max(scale, max|expected|)``. With float64,
``d_k <= 8`` and a handful of operations the true error is below ~1e-14 of that
scale; ``RTOL = 1e-9`` (namcore's float64 tolerance) leaves a wide margin and still
catches any real bug, which is off by O(1) of the scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from namcore.testing import assert_matches_numpy

__all__ = [
    "EPS",
    "RTOL",
    "amax",
    "assert_close",
    "memory_scale",
    "np_read",
    "np_unit",
    "np_write",
    "on",
]

#: namcore's normalisation floor (``x / max(||x||, EPS)``).
EPS = 1e-12
#: Relative tolerance on float64 results, relative to the operand scale.
RTOL = 1e-9


def np_unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x / max(||x||_2, EPS)`` along ``axis``."""
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), EPS)


def _gate(p: Any) -> np.ndarray:
    """A probability (float or batch-shaped array) as an array broadcasting over (d,)."""
    return np.asarray(p, dtype=np.float64)[..., None]


def np_write(
    M: np.ndarray, k: np.ndarray, v: np.ndarray, p_write: Any = 1.0, p_erase: Any = 0.0
) -> np.ndarray:
    """``M + p_w v k̂ᵀ - p_e M k̂ k̂ᵀ`` (the paper's WR with a normalised key)."""
    kh = np_unit(k)
    Mk = np.matmul(M, kh[..., None])[..., 0]
    pw, pe = _gate(p_write)[..., None], _gate(p_erase)[..., None]
    return (
        M + pw * np.einsum("...i,...j->...ij", v, kh) - pe * np.einsum("...i,...j->...ij", Mk, kh)
    )


def np_read(M: np.ndarray, q: np.ndarray, p_read: Any = 1.0) -> np.ndarray:
    """``p_r M q̂`` (the paper's RD with a normalised query)."""
    return _gate(p_read) * np.matmul(M, np_unit(q)[..., None])[..., 0]


def amax(*arrays: Any) -> float:
    """Largest magnitude over all ``arrays`` (0.0 if they are all empty)."""
    return max((float(np.max(np.abs(np.asarray(a)), initial=0.0)) for a in arrays), default=0.0)


def memory_scale(M: np.ndarray, v: Any = 0.0) -> float:
    """Size of the largest term in ``write``/``read`` of ``M`` and ``v``.

    ``|M k̂|`` can reach ``sqrt(d_k) max|M|``; ``d_k + 1`` bounds the sum of ``M`` and
    its rank-1 correction with room for the accumulation in the matrix product.
    """
    return (M.shape[-1] + 1) * amax(M) + amax(v)


def assert_close(
    actual: Any, expected: np.ndarray, *, xp: Any, scale: float = 0.0, rtol: float = RTOL
) -> None:
    """``actual`` is a float64 array of ``xp`` within ``rtol * max(scale, max|expected|)``.

    Delegates to :func:`namcore.testing.assert_matches_numpy` (which also checks the
    library, dtype and shape), converting the bound to its relative form.
    """
    expected = np.asarray(expected, dtype=np.float64)
    ref = amax(expected)
    bound = rtol * max(scale, ref)
    assert_matches_numpy(actual, expected, xp=xp, dtype="float64", rtol=bound / (ref or 1.0))


def on(xp: Any, device: Any, value: Any) -> Any:
    """A NumPy array as an ``xp`` array on ``device``; Python floats pass through.

    Read-only NumPy views (``np.broadcast_to``) are copied first: PyTorch warns on them.
    """
    if isinstance(value, np.ndarray | np.generic):
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            value = value.copy()
        return xp.asarray(value, device=device)
    return value
