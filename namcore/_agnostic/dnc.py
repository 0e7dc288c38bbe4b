"""Standard-only Differentiable Neural Computer memory management (Graves et al. 2016).

Usage, allocation and the temporal link matrix. Arguments arrive validated (see
:mod:`namcore.dnc`). Sorting uses ``argsort`` and ``take_along_axis`` (a flat ``take``
where a library lacks it, as Dask does); the exclusive cumulative product of the
allocation runs in log space with ``cumulative_sum``. Nothing mutates an input.
"""

from __future__ import annotations

import math

from namcore._compat import device as _device
from namcore._typing import Array, Namespace

from .memory import Probability, scale

__all__ = [
    "allocation",
    "backward",
    "forward",
    "link",
    "read_weighting",
    "take_last",
    "usage",
    "write_weighting",
]


def usage(u: Array, w: Array, free_gates: Array, read_weights: Array, *, xp: Namespace) -> Array:
    """``(u + w - u w) * prod_r (1 - f_r w_r)``, shape ``(..., N)``."""
    retention = xp.prod(1 - free_gates[..., :, None] * read_weights, axis=-2)
    return (u + w - u * w) * retention


def take_last(x: Array, index: Array, *, xp: Namespace) -> Array:
    """``take_along_axis(x, index, axis=-1)`` for ``index`` of the shape of ``x``.

    Libraries without ``take_along_axis`` (Dask) take from the flattened array with a
    per-row offset instead.
    """
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(x, index, axis=-1)
    n, batch = x.shape[-1], tuple(x.shape[:-1])
    offsets = xp.arange(math.prod(batch), dtype=index.dtype, device=_device(index)) * n
    flat_index = xp.reshape(index + xp.reshape(offsets, (*batch, 1)), (-1,))
    return xp.reshape(xp.take(xp.reshape(x, (-1,)), flat_index, axis=0), tuple(x.shape))


def allocation(u: Array, *, eps: float, xp: Namespace) -> Array:
    """``a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i]``, ``phi`` ascending usage.

    Usage is first mapped to ``eps + (1 - eps) u`` (into ``[eps, 1]``, order kept), so
    the logarithms are finite; ties keep index order (a stable sort). The result is
    scattered back with the inverse permutation (``argsort`` of the order).
    """
    order = xp.argsort(u, axis=-1, stable=True)
    ranked = eps + (1 - eps) * take_last(u, order, xp=xp)
    logs = xp.cumulative_sum(xp.log(ranked), axis=-1, include_initial=True)
    ranked_allocation = (1 - ranked) * xp.exp(logs[..., :-1])
    return take_last(ranked_allocation, xp.argsort(order, axis=-1), xp=xp)


def write_weighting(
    allocation: Array, content: Array, allocation_gate: Probability, write_gate: Probability
) -> Array:
    """``g_w (g_a a + (1 - g_a) c)``."""
    mixed = scale(allocation_gate, allocation) + scale(1 - allocation_gate, content)
    return scale(write_gate, mixed)


def link(L: Array, p: Array, w: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """The new link and precedence.

    ``L[i, j] = (1 - w_i - w_j) L[i, j] + w_i p_j`` with a zero diagonal, and
    ``p = (1 - sum w) p + w``.
    """
    column, row = w[..., :, None], w[..., None, :]
    updated = (1 - column - row) * L + column * p[..., None, :]
    n = L.shape[-1]
    off_diagonal = 1 - xp.eye(n, dtype=updated.dtype, device=_device(updated))
    precedence = (1 - xp.sum(w, axis=-1, keepdims=True)) * p + w
    return updated * off_diagonal, precedence


def forward(L: Array, w: Array, *, xp: Namespace) -> Array:
    """``L w``: the weighting of the cells written after those ``w`` points at."""
    return xp.matmul(L, w[..., :, None])[..., 0]


def backward(L: Array, w: Array, *, xp: Namespace) -> Array:
    """``Lᵀ w``: the weighting of the cells written before those ``w`` points at."""
    return xp.matmul(w[..., None, :], L)[..., 0, :]


def read_weighting(modes: Array, backward: Array, content: Array, forward: Array) -> Array:
    """``pi[0] b + pi[1] c + pi[2] f`` with ``modes = pi (..., 3)``."""
    return modes[..., 0:1] * backward + modes[..., 1:2] * content + modes[..., 2:3] * forward
