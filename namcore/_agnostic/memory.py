"""Standard-only implementations of the NAM primitives ``unit``, ``write`` and ``read``."""

from __future__ import annotations

from typing import TypeAlias

from namcore._typing import Array, Namespace

__all__ = ["EPS", "Probability", "add_rank1", "read", "scale", "unit", "update_direction", "write"]

#: The default floor of vector norms: ``unit(x)`` is ``x / max(||x||, EPS)``, so the zero
#: vector maps to zero (as in ``torch.nn.functional.normalize``).
EPS = 1e-12

#: A probability: a Python float, or an array of the batch shape (...).
Probability: TypeAlias = Array | float


def unit(x: Array, /, *, axis: int, eps: float, xp: Namespace) -> Array:
    """``x / max(||x||_2, eps)`` along ``axis``; zero maps to zero.

    The norm is computed as ``sqrt(max(sum(x*x), eps**2))``, which equals
    ``max(||x||, eps)`` but keeps the gradient finite at ``x = 0`` (the square root is
    never evaluated at zero). Half-precision inputs accumulate the sum in float32.
    """
    if xp.finfo(x.dtype).bits >= 32:
        return x / xp.sqrt(xp.clip(xp.sum(x * x, axis=axis, keepdims=True), min=eps * eps))
    # half precision: the norm and the division in float32 (eps**2 underflows in float16)
    acc = xp.astype(x, xp.float32)
    norm = xp.sqrt(xp.clip(xp.sum(acc * acc, axis=axis, keepdims=True), min=eps * eps))
    return xp.astype(acc / norm, x.dtype)


def scale(p: Probability, x: Array) -> Array:
    """``p * x`` where ``p`` has the batch shape of the vector ``x`` (..., d)."""
    if isinstance(p, float | int):
        return x if p == 1 else p * x
    return p[..., None] * x


def _is_zero(p: Probability) -> bool:
    return isinstance(p, float | int) and p == 0


def update_direction(
    M: Array, kh: Array, v: Array, p_write: Probability, p_erase: Probability, *, xp: Namespace
) -> Array:
    """The vector ``u`` of the rank-1 write ``M' = M + u k̂ᵀ``.

    ``u = p_write * v - p_erase * M k̂``: the write adds ``v`` and removes what ``k̂``
    currently reads. ``M k̂`` is only computed when ``p_erase`` is not the literal 0.
    """
    u = scale(p_write, v)
    if not _is_zero(p_erase):
        current = xp.matmul(M, kh[..., None])[..., 0]
        u = u - scale(p_erase, current)
    return u


def write(
    M: Array,
    k: Array,
    v: Array,
    p_write: Probability = 1.0,
    p_erase: Probability = 0.0,
    /,
    *,
    normalize: bool = True,
    eps: float = EPS,
    xp: Namespace,
) -> Array:
    """``M + p_write v k̂ᵀ - p_erase M k̂ k̂ᵀ`` as one rank-1 update ``M + u k̂ᵀ``."""
    kh = unit(k, axis=-1, eps=eps, xp=xp) if normalize else k
    u = update_direction(M, kh, v, p_write, p_erase, xp=xp)
    return add_rank1(M, u, kh)


def add_rank1(M: Array, u: Array, kh: Array) -> Array:
    """``M + u k̂ᵀ`` with batch axes: the last step of every write."""
    return M + u[..., :, None] * kh[..., None, :]


def read(
    M: Array,
    q: Array,
    p_read: Probability = 1.0,
    /,
    *,
    normalize: bool = True,
    eps: float = EPS,
    xp: Namespace,
) -> Array:
    """``p_read M q̂``, shape ``(..., d_v)``."""
    qh = unit(q, axis=-1, eps=eps, xp=xp) if normalize else q
    return scale(p_read, xp.matmul(M, qh[..., None])[..., 0])
