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


# --------------------------------------------------------------------------------------
# NTM and DNC (Graves et al. 2014, 2016), written from the papers' equations, cell by
# cell where that is the clearest form, independently of namcore.ntm / namcore.dnc.

__all__ += [
    "ALLOCATION_EPS",
    "np_allocation",
    "np_backward",
    "np_content_address",
    "np_forward",
    "np_interpolate",
    "np_link",
    "np_ntm_read",
    "np_ntm_write",
    "np_read_weighting",
    "np_sharpen",
    "np_shift",
    "np_usage",
    "np_write_weighting",
]

#: namcore.dnc's default usage floor: allocation uses ``eps + (1 - eps) u``.
ALLOCATION_EPS = 1e-6


def _per_memory(p: Any) -> np.ndarray:
    """A per-memory scalar (float or batch array) broadcasting over the cell axis."""
    return np.asarray(p, dtype=np.float64)[..., None]


def np_content_address(memory: np.ndarray, key: np.ndarray, strength: Any) -> np.ndarray:
    """``softmax_n(beta <k, M_n> / (max(|k|, EPS) max(|M_n|, EPS)))``."""
    dots = np.einsum("...nw,...w->...n", memory, key)
    norms = (
        np.maximum(np.linalg.norm(memory, axis=-1), EPS)
        * np.maximum(np.linalg.norm(key, axis=-1), EPS)[..., None]
    )
    scores = _per_memory(strength) * dots / norms
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_interpolate(content: np.ndarray, previous: np.ndarray, gate: Any) -> np.ndarray:
    """``g c + (1 - g) w_prev``."""
    g = _per_memory(gate)
    return g * content + (1 - g) * previous


def np_shift(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``out[i] = sum_k s[k] w[i - shift_k]`` over the shifts (-1, 0, +1), indices mod N."""
    batch, n = np.broadcast_shapes(w.shape[:-1], s.shape[:-1]), w.shape[-1]
    w, s = np.broadcast_to(w, (*batch, n)), np.broadcast_to(s, (*batch, 3))
    out = np.zeros((*batch, n))
    for i in range(n):
        for k, offset in enumerate((-1, 0, 1)):
            out[..., i] += s[..., k] * w[..., (i - offset) % n]
    return out


def np_sharpen(w: np.ndarray, gamma: Any) -> np.ndarray:
    """``w**gamma / sum w**gamma``."""
    powered = w ** _per_memory(gamma)
    return powered / powered.sum(axis=-1, keepdims=True)


def np_ntm_write(
    memory: np.ndarray, w: np.ndarray, erase: np.ndarray, add: np.ndarray
) -> np.ndarray:
    """``M (1 - w eᵀ) + w aᵀ``."""
    return memory * (1 - np.einsum("...n,...w->...nw", w, erase)) + np.einsum(
        "...n,...w->...nw", w, add
    )


def np_ntm_read(memory: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_n w[n] M[n]``."""
    return np.einsum("...n,...nw->...w", w, memory)


def np_usage(u: np.ndarray, w: np.ndarray, f: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``(u + w - u w) prod_r (1 - f_r w_r)``."""
    psi = np.ones((*np.broadcast_shapes(f.shape[:-1], r.shape[:-2]), r.shape[-1]))
    for head in range(r.shape[-2]):
        psi = psi * (1 - f[..., head, None] * r[..., head, :])
    return (u + w - u * w) * psi


def np_allocation(u: np.ndarray, eps: float = ALLOCATION_EPS) -> np.ndarray:
    """Per batch element: walk the cells by ascending usage (stable), multiplying usages."""
    out = np.zeros_like(u)
    for index in np.ndindex(*u.shape[:-1]):
        row = u[index]
        floored = eps + (1 - eps) * row
        product = 1.0
        for cell in np.argsort(row, kind="stable"):
            out[(*index, cell)] = (1 - floored[cell]) * product
            product *= floored[cell]
    return out


def np_write_weighting(a: np.ndarray, c: np.ndarray, g_a: Any, g_w: Any) -> np.ndarray:
    """``g_w (g_a a + (1 - g_a) c)``."""
    return _per_memory(g_w) * (_per_memory(g_a) * a + (1 - _per_memory(g_a)) * c)


def np_link(L: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry by entry: ``L[i, j] = (1 - w_i - w_j) L[i, j] + w_i p_j``, ``L[i, i] = 0``."""
    batch = np.broadcast_shapes(L.shape[:-2], p.shape[:-1], w.shape[:-1])
    n = L.shape[-1]
    L, p, w = (
        np.broadcast_to(a, batch + a.shape[a.ndim - k :]) for a, k in ((L, 2), (p, 1), (w, 1))
    )
    new = np.zeros((*batch, n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                new[..., i, j] = (1 - w[..., i] - w[..., j]) * L[..., i, j] + w[..., i] * p[..., j]
    precedence = (1 - w.sum(axis=-1, keepdims=True)) * p + w
    return new, precedence


def np_forward(L: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``L w``."""
    return np.einsum("...ij,...j->...i", L, w)


def np_backward(L: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``Lᵀ w``."""
    return np.einsum("...ij,...i->...j", L, w)


def np_read_weighting(modes: np.ndarray, b: np.ndarray, c: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``pi_b b + pi_c c + pi_f f``."""
    return modes[..., 0:1] * b + modes[..., 1:2] * c + modes[..., 2:3] * f
