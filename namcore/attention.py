"""Normalized outer-product attention (NOA): attention read as a NAM memory.

Public delegation layer for :func:`attention`: validates, normalises, picks the
algorithm, and hands the work to the backend (pure-standard code by default).
"""

from __future__ import annotations

from typing import Any

from namcore import _validation as _v
from namcore import backends as _backends
from namcore._agnostic import attention as _noa
from namcore._agnostic.memory import EPS
from namcore._typing import Array, Namespace

__all__ = ["attention"]


def attention(
    q: Array,
    k: Array,
    v: Array,
    /,
    *,
    causal: bool = False,
    p_write: Array | float | None = None,
    p_erase: Array | float | None = None,
    p_read: Array | float | None = None,
    decay: Array | float | None = None,
    mask: Array | None = None,
    state: Array | None = None,
    return_state: bool = False,
    chunk_size: int | None = None,
) -> Any:  # y, or (y, state) with return_state=True
    r"""Normalized outer-product attention: write every (key, value), read with each query.

    The memory after position :math:`t` is
    :math:`M_t = \mathrm{write}(\gamma_t M_{t-1}, k_t, v_t, p^w_t, p^e_t)` for a real
    token and :math:`M_t = M_{t-1}` for a masked one, with :math:`M_0` = ``state`` (or
    zeros) and :math:`\gamma_t` = ``decay`` (or 1). Causal attention returns
    :math:`y_t = \mathrm{read}(M_t, q_t, p^r_t)` (a token sees itself); non-causal
    attention reads the final memory: :math:`y_t = \mathrm{read}(M_L, q_t, p^r_t)`.
    There is no softmax, no :math:`1/\sqrt{d}` scale and no normaliser.

    Parameters
    ----------
    q, k : array, shape (..., L, d_k)
        Queries and keys (normalised to unit length here), batch and heads leading,
        as in ``torch.nn.functional.scaled_dot_product_attention``.
    v : array, shape (..., L, d_v)
        Values.
    causal : bool, optional
        Read the memory as it stands after each position. Default: False.
    p_write, p_erase, p_read : float or array, shape (..., L), optional
        Per-position probabilities in [0, 1]. ``None`` means 1, 0 and 1. With
        ``p_write = p_erase = β`` the memory follows the delta rule (DeltaNet).
    decay : float or array, shape (..., L), optional
        Per-position decay in [0, 1] applied to the memory before the position's write
        (``None`` means 1). With ``p_erase`` this is the gated delta rule (Gated
        DeltaNet); alone, scalar-gated linear attention. A decay of 0 is a reset: the
        memory is emptied, so sequences packed one after another in a row, each
        starting with a decay of 0, give what they give run apart.
    mask : boolean array, shape (..., L), optional
        True for real tokens; a masked position decays, writes and erases nothing. Its
        output is still computed; ignore it.
    state : array, shape (..., d_v, d_k), optional
        Initial memory, e.g. the state returned by the previous piece of a stream.
    return_state : bool, optional
        Also return the final memory :math:`M_L`. Default: False.
    chunk_size : int, optional
        Chunk length of the chunkwise algorithms; a tuning knob that changes nothing
        but rounding. Default: the backend's choice (64 without erase or decay; 16 to
        32 with them).

    Returns
    -------
    y : array, shape (..., L, d_v)
        Same library, dtype and device as the inputs.
    state : array, shape (..., d_v, d_k)
        Only with ``return_state=True``. float16/bfloat16 inputs accumulate the
        memory, and return it, in float32.

    Raises
    ------
    TypeError
        Non-floating ``q``, ``k``, ``v``, ``state``, probabilities or ``decay``, or a
        non-boolean ``mask``.
    ValueError
        Mismatched lengths or feature sizes, batch shapes that do not broadcast, or
        concrete probabilities or decays outside [0, 1].

    Notes
    -----
    Without ``p_erase`` and ``decay``, non-causal attention is two matrix products,
    :math:`M = (p^w \odot \hat K)^\top V`-style, then :math:`\hat Q M^\top`; causal
    attention runs chunk by chunk, with peak extra memory O(L·C + d_k·d_v) per head,
    never a per-position state. With ``p_erase`` or ``decay`` the chunkwise-parallel
    (WY) form of :mod:`namcore._agnostic.delta` runs: a triangular system per chunk,
    solved for all chunks at once, then one pass over the chunks. The gradient with
    respect to a decay of exactly 0 is not propagated (a reset is a reset).

    Examples
    --------
    >>> import numpy as np
    >>> import namcore
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.normal(size=(3, 2, 8, 4))       # batch 2, L = 8, d = 4
    >>> y = namcore.attention(q, k, v, causal=True)
    >>> y.shape
    (2, 8, 4)
    >>> y1, s = namcore.attention(q[:, :5], k[:, :5], v[:, :5], causal=True, return_state=True)
    >>> y2 = namcore.attention(q[:, 5:], k[:, 5:], v[:, 5:], causal=True, state=s)
    >>> bool(np.allclose(np.concatenate([y1, y2], axis=1), y))   # streaming
    True
    """
    func = "attention"
    optional = _v.array_arguments(
        p_write=p_write, p_erase=p_erase, p_read=p_read, decay=decay, mask=mask, state=state
    )
    xp = _v.namespace(func, q=q, k=k, v=v, **optional)
    _v.check_bool(func, "causal", causal)
    _v.check_bool(func, "return_state", return_state)
    backend = _backends.for_namespace(xp)
    backend.check_same_device(func, {"q": q, "k": k, "v": v, **optional})
    for name, x in (("q", q), ("k", k), ("v", v)):
        _v.check_float(func, name, x, xp)
        _v.check_min_ndim(func, name, x, 2, "(..., L, d)")
    length = k.shape[-2]
    for name, x in (("q", q), ("v", v)):
        if x.shape[-2] != length:
            raise ValueError(
                f"{func}: `{name}` has length {x.shape[-2]} (shape "
                f"{tuple(x.shape)}) but `k` has length {length} (shape "
                f"{tuple(k.shape)}); q, k and v need the same L"
            )
    _v.check_last_dim(func, "q", q, k.shape[-1], "d_k", "k", k.shape)
    shapes = {"q": tuple(q.shape[:-2]), "k": tuple(k.shape[:-2]), "v": tuple(v.shape[:-2])}
    if state is not None:
        _v.check_float(func, "state", state, xp)
        _v.check_min_ndim(func, "state", state, 2, "(..., d_v, d_k)")
        expected = (v.shape[-1], k.shape[-1])
        if any(
            None not in (got, want) and got != want
            for got, want in zip(state.shape[-2:], expected, strict=True)
        ):
            raise ValueError(
                f"{func}: `state` has shape {tuple(state.shape)}, expected "
                f"(..., d_v, d_k) = (..., {expected[0]}, {expected[1]})"
            )
        shapes["state"] = tuple(state.shape[:-2])
    batch = _v.broadcast_shapes(func, **shapes)
    sequence = (*batch, length)
    # Symbolic arrays (ndonnx graph inputs) may have unknown sizes (None): then nothing
    # is materialised at the full batch shape and arithmetic broadcasting does the work.
    dynamic = None in sequence

    dtype = xp.result_type(q, k, v)
    acc = xp.float32 if xp.finfo(dtype).bits < 32 else dtype

    def gate(name: str, p: Array | float | None) -> Array | None:
        if p is None:
            return None
        p = _v.probability(func, name, p, xp=xp, batch=sequence, dtype=acc, backend=backend)
        if isinstance(p, float):
            if dynamic:  # a 0-d array broadcasts in the products that use it
                return xp.asarray(p, dtype=acc, device=_v.device_of(k))
            return xp.full(sequence, p, dtype=acc, device=_v.device_of(k))
        return p if dynamic else xp.broadcast_to(p, sequence)

    w, e, pr = gate("p_write", p_write), gate("p_erase", p_erase), gate("p_read", p_read)
    constant = isinstance(decay, int | float) and not isinstance(decay, bool)
    gamma = None if constant and decay == 1 else gate("decay", decay)
    real = None
    if mask is not None:
        # Masked positions are made inert by selection, not multiplication, so that a
        # NaN or inf there (in k, v, a gate or a decay) cannot reach the memory.
        m = _v.mask(func, mask, xp=xp, batch=sequence, dtype=acc, expand=not dynamic)
        real = m > 0
        w = m if w is None else xp.where(real, w, xp.zeros_like(w))
        e = None if e is None else xp.where(real, e, xp.zeros_like(e))
        gamma = None if gamma is None else xp.where(real, gamma, xp.ones_like(gamma))
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"{func}: `chunk_size` must be a positive int, got {chunk_size!r}")

    qh = backend.unit(xp.astype(q, acc, copy=False), -1, EPS, xp)
    kh = backend.unit(xp.astype(k, acc, copy=False), -1, EPS, xp)
    va = xp.astype(v, acc, copy=False)
    if real is not None:
        kh = xp.where(real[..., None], kh, xp.zeros_like(kh))
        va = xp.where(real[..., None], va, xp.zeros_like(va))
    memory_shape = (*batch, va.shape[-1], kh.shape[-1])
    if state is None and dynamic:  # zeros (..., d_v, d_k) without knowing the sizes
        state = xp.zeros_like(xp.matmul(_noa.matrix_transpose(va[..., :1, :], xp), kh[..., :1, :]))
    elif state is None:
        state = xp.zeros(memory_shape, dtype=acc, device=_v.device_of(k))
    else:
        state = xp.astype(state, acc, copy=False)
        state = state if dynamic else xp.broadcast_to(state, memory_shape)

    if (e is not None or gamma is not None) and dynamic:  # no chunks without known sizes
        y, memory = _noa.recurrent(
            qh, kh, va, w, e, pr, state, causal=causal, xp=xp, scan=backend.scan, decay=gamma
        )
    elif e is not None or gamma is not None:
        # no reset to track when the decays are known and none is 0 (cheap to read)
        values = None if constant or gamma is None else backend.concrete_values(decay)
        positive = (isinstance(decay, int | float) and decay > 0) or (
            values is not None and bool(values.size and values.min() > 0)
        )
        log_decay, reset = _log_decay(gamma, positive=positive, xp=xp)
        y, memory = backend.attention_delta(
            qh,
            kh,
            va,
            w,
            e,
            log_decay,
            reset,
            pr,
            state,
            causal,
            chunk_size or backend.delta_chunk_size,
            xp,
        )
    elif causal:
        y, memory = backend.attention_causal(
            qh, kh, va, w, pr, state, chunk_size or backend.chunk_size, xp
        )
    else:
        y, memory = _noa.noncausal(qh, kh, va, w, pr, state, xp=xp)
    y = xp.astype(y, dtype) if y.dtype != dtype else y
    return (y, memory) if return_state else y


def _log_decay(
    gamma: Array | None, *, positive: bool, xp: Namespace
) -> tuple[Array | None, Array | None]:
    """``(log γ, reset)`` for the chunk form (``γ`` is already 1 at masked positions).

    ``log γ`` is taken where ``γ > 0`` (0 elsewhere, with a gradient that stays finite)
    and ``reset`` marks the positions whose decay is exactly 0. ``positive`` (no decay
    is 0, as far as the caller knows) drops the reset marks.
    """
    if gamma is None:
        return None, None
    above = gamma > 0
    log_decay = xp.log(xp.where(above, gamma, xp.ones_like(gamma)))
    reset = None if positive else xp.astype(~above, gamma.dtype)
    return log_decay, reset
