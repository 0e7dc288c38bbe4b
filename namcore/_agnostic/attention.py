"""Standard-only normalized outer-product attention (NOA).

All functions take unit-normalised queries and keys ``qh, kh (..., L, d_k)``, values
``v (..., L, d_v)``, effective write weights ``w (..., L)`` (``p_write * mask``, or
``None`` for all ones), read weights ``pr (..., L)`` or ``None``, and the initial memory
``state (..., d_v, d_k)`` already broadcast to the full batch shape. They return
``(y, M_L)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from namcore._compat import device as _device
from namcore._typing import Array, Namespace

__all__ = [
    "Scan",
    "causal_chunked",
    "causal_parallel",
    "chunks_last",
    "matrix_transpose",
    "noncausal",
    "pad_to",
    "recurrent",
]

#: A backend's ``scan`` (:meth:`namcore.backends.Backend.scan`): ``jax.lax.scan`` semantics.
Scan = Callable[..., tuple[Any, Any]]


def _weighted(x: Array, w: Array | None) -> Array:
    return x if w is None else x * w[..., None]


def matrix_transpose(x: Array, xp: Namespace) -> Array:
    """``x`` with its last two axes swapped."""
    return xp.matrix_transpose(x)


def noncausal(
    qh: Array,
    kh: Array,
    v: Array,
    w: Array | None,
    pr: Array | None,
    state: Array,
    *,
    xp: Namespace,
) -> tuple[Array, Array]:
    """``M = state + (w ⊙ V)ᵀ K̂``, then ``y = pr ⊙ Q̂ Mᵀ``: two matrix products."""
    memory = state + xp.matmul(matrix_transpose(_weighted(v, w), xp), kh)
    return _weighted(xp.matmul(qh, matrix_transpose(memory, xp)), pr), memory


def pad_to(x: Array, length: int, xp: Namespace, axis: int) -> Array:
    """Zero-pad ``x`` along ``axis`` (negative) up to ``length``."""
    missing = length - x.shape[axis]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[axis] = missing
    zeros = xp.zeros(tuple(shape), dtype=x.dtype, device=_device(x))
    return xp.concat([x, zeros], axis=axis)


def _chunks_first(x: Array, n: int, c: int, xp: Namespace, vector: bool) -> Array:
    """(..., n*c, d) -> (n, ..., c, d), or (..., n*c) -> (n, ..., c) for ``vector=False``."""
    batch = x.shape[:-2] if vector else x.shape[:-1]
    tail = (c, x.shape[-1]) if vector else (c,)
    x = xp.reshape(x, (*batch, n, *tail))
    axis = len(batch)
    order = (axis, *range(axis), *range(axis + 1, x.ndim))
    return xp.permute_dims(x, order)


def chunks_last(y: Array, xp: Namespace) -> Array:
    """(n, ..., c, d) -> (..., n*c, d)."""
    order = (*range(1, y.ndim - 2), 0, y.ndim - 2, y.ndim - 1)
    y = xp.permute_dims(y, order)
    return xp.reshape(y, (*y.shape[:-3], y.shape[-3] * y.shape[-2], y.shape[-1]))


def causal_chunked(
    qh: Array,
    kh: Array,
    v: Array,
    w: Array | None,
    pr: Array | None,
    state: Array,
    *,
    chunk_size: int,
    xp: Namespace,
    scan: Scan,
) -> tuple[Array, Array]:
    """Causal NOA without erase, chunk by chunk, in O(L·C + d_k·d_v) extra memory.

    Within a chunk the output is ``tril(Q̂ (w ⊙ K̂)ᵀ) V`` (a token sees itself); the
    chunks before it contribute through the running memory ``S``: ``Q̂ Sᵀ``. After the
    chunk, ``S += (w ⊙ V)ᵀ K̂``. ``scan`` walks the chunks (``lax.scan`` on JAX).
    """
    length = qh.shape[-2]
    c = max(1, min(chunk_size, length))
    n = -(-length // c)
    dev = _device(kh)
    if w is None:  # padded positions must not write: make the weights explicit
        w = xp.ones(kh.shape[:-1], dtype=kh.dtype, device=dev)
    padded = [pad_to(x, n * c, xp, -2) for x in (qh, kh, v)]
    weights = pad_to(w, n * c, xp, -1)
    xs = (
        *(_chunks_first(x, n, c, xp, True) for x in padded),
        _chunks_first(weights, n, c, xp, False),
    )
    rows = xp.arange(c, device=dev)
    tril = xp.astype(rows[:, None] >= rows[None, :], kh.dtype)

    def step(memory: Array, chunk: tuple[Array, Array, Array, Array]) -> tuple[Array, Array]:
        q_c, k_c, v_c, w_c = chunk
        kw = k_c * w_c[..., None]
        scores = xp.matmul(q_c, matrix_transpose(kw, xp)) * tril
        y_c = xp.matmul(scores, v_c) + xp.matmul(q_c, matrix_transpose(memory, xp))
        return memory + xp.matmul(matrix_transpose(v_c, xp), kw), y_c

    memory, ys = scan(step, state, xs)
    y = chunks_last(ys, xp)[..., :length, :]
    return _weighted(y, pr), memory


def causal_parallel(
    qh: Array,
    kh: Array,
    v: Array,
    w: Array | None,
    pr: Array | None,
    state: Array,
    *,
    xp: Namespace,
) -> tuple[Array, Array]:
    """Causal NOA without erase in one step: ``y = tril(Q̂ (w ⊙ K̂)ᵀ) V + Q̂ Sᵀ``.

    O(L²) time and memory, but no loop and no shape arithmetic: it works on symbolic
    arrays whose batch and sequence sizes are unknown (ndonnx graph inputs), and for a
    streaming step (L = 1) it is the cheapest form. The positions come from a
    cumulative sum so that no ``arange(L)`` with a concrete ``L`` is needed.
    """
    kw = _weighted(kh, w)
    position = xp.cumulative_sum(xp.ones_like(kh[..., 0]), axis=-1)
    causal = xp.astype(position[..., :, None] >= position[..., None, :], kh.dtype)
    scores = xp.matmul(qh, matrix_transpose(kw, xp)) * causal
    y = xp.matmul(scores, v) + xp.matmul(qh, matrix_transpose(state, xp))
    memory = state + xp.matmul(matrix_transpose(_weighted(v, w), xp), kh)
    return _weighted(y, pr), memory


def recurrent(
    qh: Array,
    kh: Array,
    v: Array,
    w: Array | None,
    e: Array | None,
    pr: Array | None,
    state: Array,
    *,
    causal: bool,
    xp: Namespace,
    scan: Scan,
    decay: Array | None = None,
) -> tuple[Array, Array]:
    """The write recurrence position by position (for sequences of unknown length).

    ``M_t = γ_t M_{t-1} + (w_t v_t - e_t γ_t M_{t-1} k̂_t) k̂_tᵀ`` with ``γ`` = ``decay``
    (..., L) (already 1 at masked positions) or 1; causal reads ``M_t`` at each step,
    non-causal reads the final memory with every query. Known lengths take the chunk
    form of :mod:`namcore._agnostic.delta` instead.
    """
    from .memory import update_direction

    length, dev = kh.shape[-2], _device(kh)
    if w is None:
        w = xp.ones((*kh.shape[:-2], length), dtype=kh.dtype, device=dev)
    if e is None:
        e = xp.zeros((*kh.shape[:-2], length), dtype=kh.dtype, device=dev)

    def to_time_major(x: Array, vector: bool) -> Array:
        axis = x.ndim - (2 if vector else 1)
        return xp.permute_dims(x, (axis, *range(axis), *range(axis + 1, x.ndim)))

    if decay is None:
        decay = xp.ones((*kh.shape[:-2], length), dtype=kh.dtype, device=dev)
    xs = (
        to_time_major(qh, True),
        to_time_major(kh, True),
        to_time_major(v, True),
        to_time_major(w, False),
        to_time_major(e, False),
        to_time_major(decay, False),
    )

    def step(memory: Array, x: tuple[Array, ...]) -> tuple[Array, Array]:
        q_t, k_t, v_t, w_t, e_t, g_t = x
        memory = memory * g_t[..., None, None]
        u = update_direction(memory, k_t, v_t, w_t, e_t, xp=xp)
        memory = memory + u[..., :, None] * k_t[..., None, :]
        y_t = xp.matmul(memory, q_t[..., None])[..., 0] if causal else None
        return memory, y_t

    memory, ys = scan(step, state, xs)
    if not causal:
        return _weighted(xp.matmul(qh, matrix_transpose(memory, xp)), pr), memory
    y = xp.permute_dims(ys, (*range(1, ys.ndim - 1), 0, ys.ndim - 1))
    return _weighted(y, pr), memory
