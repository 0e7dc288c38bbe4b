"""Standard-only Neural Turing Machine addressing and memory access (Graves et al. 2014).

Arguments arrive validated (see :mod:`namcore.ntm`): ``memory (..., N, W)``, weightings
``(..., N)``, per-memory scalars as Python floats or arrays of the batch shape. Nothing
here mutates an input or branches on values.
"""

from __future__ import annotations

from namcore._typing import Array, Namespace

from .memory import Probability, scale, unit

__all__ = [
    "content_address",
    "cosine_similarity",
    "interpolate",
    "read",
    "shift",
    "sharpen",
    "softmax",
    "write",
]


def cosine_similarity(memory: Array, key: Array, *, eps: float, xp: Namespace) -> Array:
    """``K[n] = <key, M[n]> / (max(|key|, eps) max(|M[n]|, eps))``, shape ``(..., N)``."""
    rows = unit(memory, axis=-1, eps=eps, xp=xp)
    direction = unit(key, axis=-1, eps=eps, xp=xp)
    return xp.vecdot(rows, direction[..., None, :], axis=-1)  # row-wise dot products


def softmax(x: Array, *, xp: Namespace) -> Array:
    """Softmax over the last axis, shifted by the maximum (never overflows)."""
    e = xp.exp(x - xp.max(x, axis=-1)[..., None])
    return e / xp.sum(e, axis=-1, keepdims=True)


def content_address(
    memory: Array, key: Array, strength: Probability, *, eps: float, xp: Namespace
) -> Array:
    """``softmax_n(strength * K[n])``: content weights ``(..., N)``."""
    return softmax(scale(strength, cosine_similarity(memory, key, eps=eps, xp=xp)), xp=xp)


def interpolate(content: Array, previous: Array, gate: Probability) -> Array:
    """``g * content + (1 - g) * previous``."""
    return scale(gate, content) + scale(1 - gate, previous)


def shift(w: Array, s: Array, *, xp: Namespace) -> Array:
    """Circular convolution with the shifts (-1, 0, +1) weighed by ``s (..., 3)``.

    ``out[i] = s[0] w[i + 1] + s[1] w[i] + s[2] w[i - 1]`` (indices modulo N): a +1
    shift moves the weight of cell ``i`` to cell ``i + 1``.
    """
    before = xp.concat([w[..., -1:], w[..., :-1]], axis=-1)  # before[i] = w[i - 1]
    after = xp.concat([w[..., 1:], w[..., :1]], axis=-1)  # after[i] = w[i + 1]
    return s[..., 0:1] * after + s[..., 1:2] * w + s[..., 2:3] * before


def sharpen(w: Array, gamma: Array | float, *, xp: Namespace) -> Array:
    """``w**gamma / sum(w**gamma)`` over the last axis.

    Computed as ``(w / max w)**gamma`` normalised, which is the same number but cannot
    underflow to ``0 / 0`` for a large ``gamma``: the largest cell contributes exactly 1.
    Zero cells are masked out of the power (no ``0 * log 0`` in the gradient with
    respect to ``gamma``), and an all-zero ``w`` gives all zeros.
    """
    top = xp.max(w, axis=-1)[..., None]
    positive = w > 0
    ratio = xp.where(positive, w / xp.where(top > 0, top, xp.ones_like(top)), xp.ones_like(w))
    if isinstance(gamma, float | int):
        powered = ratio if gamma == 1 else ratio**gamma
    else:
        powered = xp.pow(ratio, gamma[..., None])
    powered = xp.where(positive, powered, xp.zeros_like(powered))
    total = xp.sum(powered, axis=-1, keepdims=True)
    return powered / xp.where(total > 0, total, xp.ones_like(total))


def write(memory: Array, w: Array, erase: Array, add: Array) -> Array:
    """Erase then add: ``M * (1 - w eᵀ) + w aᵀ``."""
    column = w[..., :, None]
    return memory * (1 - column * erase[..., None, :]) + column * add[..., None, :]


def read(memory: Array, w: Array, *, xp: Namespace) -> Array:
    """``wᵀ M``: the weighted sum of the rows, shape ``(..., W)``."""
    return xp.matmul(w[..., None, :], memory)[..., 0, :]
