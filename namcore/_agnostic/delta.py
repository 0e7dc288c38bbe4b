"""The delta-rule family chunk by chunk (erase and decay), core standard only.

For a real token ``t`` (``w = p_write·mask``, ``e = p_erase·mask``, ``γ`` the decay;
a masked token has ``w = e = 0`` and ``γ = 1``) the memory follows

    M_t = γ_t M_{t-1} + u_t k̂_tᵀ,      u_t = w_t v_t − e_t γ_t M_{t-1} k̂_t.

With ``e = w = β`` this is the delta rule (DeltaNet); with a decay as well, the gated
delta rule (Gated DeltaNet); with a decay and no erase, scalar-gated linear attention.

Inside a chunk of ``C`` positions entered with memory ``M0``, let ``Γ_t`` be the decay
accumulated from the chunk's start to ``t`` (inclusive) and ``D[t, i] = Γ_t / Γ_i``.
Unrolling the recurrence gives the UT (WY) form

    (I + A) U = diag(w) V − diag(e Γ) K̂ M0ᵀ,      A[t, i] = e_t D[t, i] k̂_t·k̂_i  (i < t)
    Y = diag(Γ) Q̂ M0ᵀ + (tril(Q̂ K̂ᵀ) ⊙ D) U,      M_C = Γ_C M0 + Uᵀ diag(Γ_C / Γ) K̂,

so everything but the products with ``M0`` is computed for all chunks at once
(:func:`prepare`), and a scan over the chunks (:func:`run`) carries the memory. The
inverse ``(I + A)⁻¹`` of the unit lower-triangular matrix is built by recursive
doubling of its diagonal blocks (:func:`unit_lower_inverse`): ``log2 C`` rounds of
small matrix products, no ``linalg`` extension, and only bounded blocks are ever
multiplied (the rows of the inverse are the coefficients of a contracting
recurrence), unlike the Neumann product ``Π (I + (−A)^{2^j})`` whose powers of ``A``
grow like binomial coefficients.

Decays are carried as per-chunk cumulative sums ``G`` of ``log γ``, and every ratio is
``exp(G_t − G_i)`` of a difference inside one chunk, so products that underflow give
exact zeros, never NaN. A decay of exactly 0 (a reset) has no logarithm: it is carried
as a count ``Z`` of resets, and ``D[t, i] = 0`` whenever a reset lies in ``(i, t]``.
"""

from __future__ import annotations

from typing import NamedTuple

from namcore._compat import device as _device
from namcore._typing import Array, Namespace

from .attention import Scan, chunks_last, matrix_transpose, pad_to

__all__ = ["Chunks", "chunked", "prepare", "run", "unit_lower_inverse"]


class Chunks(NamedTuple):
    """Per-chunk quantities, all with the chunk index as the axis before the last two.

    ``u`` (..., n, C, d_v) and ``w`` (..., n, C, d_k): the memory-free part of ``U`` and
    its coefficient on ``M0`` (``U = u − w M0ᵀ``; ``w`` is ``None`` without erase);
    ``y`` (..., n, C, d_v) and ``q`` (..., n, C, d_k): the memory-free part of the
    output and its coefficient on ``M0`` (``Y = y + q M0ᵀ``; ``None`` when not causal).
    With ``P = tril(Q̂ K̂ᵀ) ⊙ D``, ``y = P u`` and ``q = diag(Γ) Q̂ − P w``, so the pass
    over the chunks has no product by ``P``.
    ``k`` (..., n, C, d_k): ``diag(Γ_C/Γ) K̂``; ``carry`` (..., n): ``Γ_C`` (``None``
    without decay).
    """

    u: Array
    w: Array | None
    y: Array | None
    q: Array | None
    k: Array
    carry: Array | None


def _diagonal_blocks(a: Array, size: int, xp: Namespace) -> Array:
    """The diagonal ``size × size`` blocks of ``a (..., p, p)``: shape (..., p/size, size, size).

    Entry ``(r, q)`` of block ``i`` sits at ``i·size·(p+1) + r·p + q`` of the flattened
    matrix: padding that by ``p`` lays the blocks out as rows of length ``size·(p+1)``,
    so slices and reshapes find them (no gather, no reduction).
    """
    p = a.shape[-1]
    count, batch = p // size, a.shape[:-2]
    if count == 1:
        return xp.reshape(a, (*batch, 1, size, size))
    flat = pad_to(xp.reshape(a, (*batch, p * p)), p * (p + 1), xp, -1)
    rows = xp.reshape(flat, (*batch, count, size * (p + 1)))[..., : size * p]
    return xp.reshape(rows, (*batch, count, size, p))[..., :size]


def unit_lower_inverse(a: Array, *, xp: Namespace) -> Array:
    """``(I + A)⁻¹`` for strictly lower-triangular ``A (..., c, c)``, core standard only.

    Recursive doubling: the inverses of the diagonal blocks of size ``s`` give those of
    size ``2s`` through ``[[T11, 0], [−T22 A21 T11, T22]]``; ``A`` is zero-padded to a
    power of two (an identity block, which changes nothing) and cut back.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import backends
    >>> xp = backends.get("numpy").namespace()
    >>> a = np.tril(np.random.default_rng(0).uniform(size=(5, 5)), -1)
    >>> t = unit_lower_inverse(a, xp=xp)
    >>> bool(np.allclose(t @ (np.eye(5) + a), np.eye(5)))
    True
    """
    c = a.shape[-1]
    p = 1
    while p < c:
        p *= 2
    if p != c:
        a = pad_to(pad_to(a, p, xp, -1), p, xp, -2)
    batch = a.shape[:-2]
    inverse = xp.ones((*batch, p, 1, 1), dtype=a.dtype, device=_device(a))
    size = 1
    while size < p:
        below = _diagonal_blocks(a, 2 * size, xp)[..., size:, :size]
        pairs = xp.reshape(inverse, (*batch, p // (2 * size), 2, size, size))
        t11, t22 = pairs[..., 0, :, :], pairs[..., 1, :, :]
        # 1×1 diagonal blocks are 1: skip the many tiny products of the first round
        t21 = -below if size == 1 else -xp.matmul(t22, xp.matmul(below, t11))
        top = xp.concat([t11, xp.zeros_like(t11)], axis=-1)
        inverse = xp.concat([top, xp.concat([t21, t22], axis=-1)], axis=-2)
        size *= 2
    inverse = xp.reshape(inverse, (*batch, p, p))
    return inverse if p == c else inverse[..., :c, :c]


def _ratio(
    g_rows: Array,
    g_cols: Array,
    z_rows: Array | None,
    z_cols: Array | None,
    allowed: Array,
    xp: Namespace,
) -> Array:
    """``exp(G_r − G_c)`` where ``allowed`` (a 0/1 float mask) and no reset lies between.

    The exponent is masked before ``exp`` so that entries above the diagonal (whose
    exponent is positive and may overflow) never reach it.
    """
    keep = allowed
    if z_rows is not None and z_cols is not None:
        keep = keep * xp.astype(z_rows[..., :, None] == z_cols[..., None, :], keep.dtype)
    return xp.exp((g_rows[..., :, None] - g_cols[..., None, :]) * keep) * keep


def prepare(
    qh: Array,
    kh: Array,
    v: Array,
    w: Array | None,
    e: Array | None,
    log_decay: Array | None,
    reset: Array | None,
    *,
    causal: bool,
    chunk_size: int,
    xp: Namespace,
) -> Chunks:
    """Everything of the chunk form that does not depend on the incoming memories.

    ``qh, kh (..., L, d_k)``, ``v (..., L, d_v)`` share one batch shape; ``w``, ``e``,
    ``log_decay`` (``log γ`` at real tokens with ``γ > 0``, else 0) and ``reset`` (1 at
    real tokens with ``γ = 0``, else 0) are ``(..., L)`` or ``None``. The sequence is
    zero-padded to whole chunks; padding writes, erases and decays nothing.
    """
    length = kh.shape[-2]
    c = max(1, min(chunk_size, length))
    n = -(-length // c)
    dev = _device(kh)
    if w is None:  # padded positions must not write: make the weights explicit
        w = xp.ones(kh.shape[:-1], dtype=kh.dtype, device=dev)

    def split(x: Array, vector: bool) -> Array:
        x = pad_to(x, n * c, xp, -2 if vector else -1)
        batch = x.shape[:-2] if vector else x.shape[:-1]
        return xp.reshape(x, (*batch, n, c, x.shape[-1]) if vector else (*batch, n, c))

    q_c, k_c, v_c, w_c = split(qh, True), split(kh, True), split(v, True), split(w, False)
    rows = xp.arange(c, device=dev)
    inclusive = xp.astype(rows[:, None] >= rows[None, :], kh.dtype)
    strict = xp.astype(rows[:, None] > rows[None, :], kh.dtype)

    if log_decay is not None:
        g = xp.cumulative_sum(split(log_decay, False), axis=-1)
        z = None if reset is None else xp.cumulative_sum(split(reset, False), axis=-1)
        within = _ratio(g, g, z, z, inclusive, xp)  # D, lower incl.
        from_start = xp.exp(g) if z is None else xp.exp(g) * xp.astype(z == 0, g.dtype)
        to_end = _ratio(
            g[..., -1:],
            g,
            None if z is None else z[..., -1:],
            z,
            xp.ones((1, c), dtype=g.dtype, device=dev),
            xp,
        )[..., 0, :]
        carry = from_start[..., -1]
    else:
        within, from_start, to_end, carry = inclusive, None, None, None

    w_k = None
    if e is None:
        u_c = v_c * w_c[..., None]
    else:
        e_c = split(e, False)
        kk = xp.matmul(k_c, matrix_transpose(k_c, xp))
        lower = within * strict if log_decay is not None else strict
        inverse = unit_lower_inverse(e_c[..., :, None] * kk * lower, xp=xp)
        # T diag(w) V and T diag(eΓ) K̂, the diagonals scaling T's columns (C×C) rather
        # than the rows of V and K̂ (C×d): fewer elementwise passes over the sequence.
        u_c = xp.matmul(inverse * w_c[..., None, :], v_c)
        scale = e_c if from_start is None else e_c * from_start
        w_k = xp.matmul(inverse * scale[..., None, :], k_c)
    y_c = q_out = None
    if causal:
        scores = xp.matmul(q_c, matrix_transpose(k_c, xp)) * within
        y_c = xp.matmul(scores, u_c)
        q_out = q_c if from_start is None else q_c * from_start[..., None]
        if w_k is not None:
            q_out = q_out - xp.matmul(scores, w_k)
    k_out = k_c if to_end is None else k_c * to_end[..., None]
    return Chunks(u_c, w_k, y_c, q_out, k_out, carry)


def _chunk_step(
    memory: Array,
    u: Array,
    w: Array | None,
    y: Array | None,
    q: Array | None,
    k: Array,
    carry: Array | None,
    *,
    xp: Namespace,
) -> tuple[Array, Array]:
    """One chunk: ``U = u − w Mᵀ``, ``Y = y + q Mᵀ``, ``M ← Γ_C M + Uᵀ k``."""
    if w is not None:
        u = u - xp.matmul(w, matrix_transpose(memory, xp))
    if y is not None:
        y = y + xp.matmul(q, matrix_transpose(memory, xp))
    if carry is not None:
        memory = memory * carry[..., None, None]
    return memory + xp.matmul(matrix_transpose(u, xp), k), y


def run(chunks: Chunks, state: Array, *, xp: Namespace, scan: Scan) -> tuple[Array | None, Array]:
    """Carry the memory across the chunks of :func:`prepare`: ``(Y (..., n·C, d_v), M)``.

    ``Y`` is ``None`` when the chunks were prepared without ``causal``.
    """
    present = [name for name, x in chunks._asdict().items() if x is not None]

    def chunk_axis_first(name: str) -> Array:
        x = getattr(chunks, name)
        axis = x.ndim - (1 if name == "carry" else 3)  # carry is (..., n), others (..., n, C, d)
        return xp.permute_dims(x, (axis, *range(axis), *range(axis + 1, x.ndim)))

    xs = tuple(chunk_axis_first(name) for name in present)

    def step(memory: Array, x: tuple[Array, ...]) -> tuple[Array, Array]:
        given = dict(zip(present, x, strict=True))
        return _chunk_step(memory, *(given.get(name) for name in Chunks._fields), xp=xp)

    memory, ys = scan(step, state, xs)
    if ys is None:
        return None, memory
    return chunks_last(ys, xp), memory


def chunked(
    qh: Array,
    kh: Array,
    v: Array,
    w: Array | None,
    e: Array | None,
    log_decay: Array | None,
    reset: Array | None,
    pr: Array | None,
    state: Array,
    *,
    causal: bool,
    chunk_size: int,
    xp: Namespace,
    scan: Scan,
) -> tuple[Array, Array]:
    """NOA with erase and/or decay, chunkwise: ``(y (..., L, d_v), M_L)``.

    Arguments as in :func:`prepare`; ``pr`` (..., L) or ``None`` weighs the reads and
    ``state`` (..., d_v, d_k) is the incoming memory, broadcast to the batch shape.
    Non-causal attention reads the final memory with every query.
    """
    chunks = prepare(qh, kh, v, w, e, log_decay, reset, causal=causal, chunk_size=chunk_size, xp=xp)
    y, memory = run(chunks, state, xp=xp, scan=scan)
    if y is None:
        y = xp.matmul(qh, matrix_transpose(memory, xp))
    else:
        y = y[..., : qh.shape[-2], :]
    return (y if pr is None else y * pr[..., None]), memory
