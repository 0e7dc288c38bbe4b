"""Recurrent cells over sequences: GRU and LSTM loops, several cells in one scan, and
the LSTM controller loop of the NTM and the DNC. Written once against the array API
standard, on the building blocks of :mod:`.layers`.

The state is ``(h,)`` for a GRU and ``(h, c)`` for an LSTM. Sequences are batch-major
``(B, L, ...)``; the loops run time-major with the backend's ``scan``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from namcore._typing import Array, Namespace

from .layers import (
    Context,
    Params,
    batch_zeros,
    dense,
    keep_where,
    linear,
    run_memory_scan,
    run_scan,
    sigmoid,
    time_major,
    unstack,
)

__all__ = [
    "bidirectional",
    "controller_scan",
    "input_projection",
    "lstm_cell",
    "recurrent",
    "split_directions",
    "stack_directions",
    "stacked_cells",
]


def stack_directions(fw: Array, bw: Array, xp: Namespace) -> Any:
    """Time-major ``(L, ...)`` inputs of a forward and a backward pass as ``(L, 2, ...)``.

    The backward pass's inputs are reversed in time, so one scan runs both directions
    (:func:`split_directions` undoes it on the outputs).
    """
    return xp.stack([fw, xp.flip(bw, axis=0)], axis=1)


def split_directions(ys: Array, xp: Namespace) -> tuple[Any, Any]:
    """``(L, 2, ...)`` outputs of a two-direction scan as forward and backward ``(L, ...)``."""
    return ys[:, 0, ...], xp.flip(ys[:, 1, ...], axis=0)


def input_projection(params: Params, prefix: str, x: Array, xp: Namespace) -> Any:
    """``x @ w_x + b`` of a recurrent cell for every step at once, time-major (L, B, n)."""
    return time_major(linear(x, params[f"{prefix}.w_x"], xp) + params[f"{prefix}.b"], xp)


def lstm_cell(gates: Array, c: Array, xp: Namespace) -> tuple[Any, Any]:
    """New ``(h, c)`` of an LSTM from its pre-activations ``gates`` (..., 4H), order i, f, g, o."""
    hidden = c.shape[-1]
    i = sigmoid(gates[..., :hidden], xp)
    f = sigmoid(gates[..., hidden : 2 * hidden], xp)
    cand = xp.tanh(gates[..., 2 * hidden : 3 * hidden])
    o = sigmoid(gates[..., 3 * hidden :], xp)
    c_new = f * c + i * cand
    return o * xp.tanh(c_new), c_new


def recurrent(
    params: Params,
    prefix: str,
    kind: str,
    x: Array,
    mask: Array,
    ctx: Context,
    *,
    reverse: bool = False,
    initial: tuple[Any, ...] | None = None,
) -> tuple[Any, tuple[Any, ...]]:
    """Run a GRU or LSTM cell over ``x`` (B, L, n_in); return outputs (B, L, H) and final state.

    Padded positions (``mask`` False) leave the state unchanged and output it again,
    so a backward pass over right-padded sequences starts at the last real token.
    The state is ``(h,)`` for a GRU and ``(h, c)`` for an LSTM.
    """
    xp = ctx.xp
    w_h = params[f"{prefix}.w_h"]
    gates_x = input_projection(params, prefix, x, xp)
    if initial is None:
        initial = tuple(
            batch_zeros(ctx, x, (w_h.shape[0],)) for _ in range(2 if kind == "lstm" else 1)
        )
    b_hn = params[f"{prefix}.b_hn"] if kind == "gru" else None
    xs = (gates_x, time_major(mask, xp))
    final, ys = _scan(ctx, kind, w_h, b_hn, tuple(initial), xs, reverse)
    return time_major(ys, xp), final


def _scan(
    ctx: Context,
    kind: str,
    w_h: Array,
    b_hn: Array | None,
    initial: tuple[Any, ...],
    xs: tuple[Any, Any],
    reverse: bool = False,
) -> tuple[Any, Any]:
    """A GRU or LSTM over time-major ``xs`` ``(gates_x, mask)``: ``(final state, ys)``.

    The GRU's step has a hand-derived backward (``gru_step``); the LSTM's is the
    plain scan step of :func:`lstm_cell`.
    """
    if kind != "gru":
        return run_scan(ctx, _lstm_step(w_h, ctx.xp), initial, xs, reverse=reverse)
    from . import gru_step

    step = gru_step.make(ctx, w_h.shape[-2], tuple(w_h.shape[:-2]))
    _, final, (ys,) = run_memory_scan(ctx, step, (w_h, b_hn), (), initial, xs, reverse=reverse)
    return tuple(final), ys


def _lstm_step(w_h: Array, xp: Namespace) -> Callable:
    """The scan step of an LSTM cell; leading axes (directions, batch) broadcast."""

    def lstm_step(state, inputs):
        h, c = state
        gx, m_t = inputs
        h_new, c_new = lstm_cell(gx + xp.matmul(h, w_h), c, xp)
        h_new = keep_where(m_t, h_new, h, xp)
        return (h_new, keep_where(m_t, c_new, c, xp)), h_new

    return lstm_step


def stacked_cells(
    params: Params,
    cells: Sequence[tuple[str, bool]],
    kind: str,
    x: Array,
    mask: Array,
    ctx: Context,
) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Several GRU or LSTM cells over the same ``x`` (B, L, n_in), in one scan.

    ``cells`` are ``(prefix, reverse)`` pairs; a reversed cell reads the sequence
    from its end. The cells are stacked on a leading axis of the state and of the
    inputs (time-reversed for a reversed cell), so the scan has ``L`` steps for all
    of them, and their input projections are one product. Returns each cell's
    outputs (B, L, H), in the order of the sequence, and its final state.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore.models import cells, layers
    >>> rng = np.random.default_rng(0)
    >>> shapes = {"w_x": (3, 8), "w_h": (2, 8), "b": (8,)}  # LSTM: 4 gates of width 2
    >>> params = {f"{c}.{n}": rng.normal(size=s) for c in "fb" for n, s in shapes.items()}
    >>> ctx, mask = layers.context(params, np.zeros((1, 5), int), None, "example")
    >>> pairs = [("f", False), ("b", True)]  # "b" reads from the end
    >>> x = rng.normal(size=(1, 5, 3))
    >>> outputs, finals = cells.stacked_cells(params, pairs, "lstm", x, mask, ctx)
    >>> [y.shape for y in outputs], [len(state) for state in finals]  # (h, c) each
    ([(1, 5, 2), (1, 5, 2)], [2, 2])
    """
    xp = ctx.xp
    count = len(cells)
    w_h = xp.stack([params[f"{prefix}.w_h"] for prefix, _ in cells])
    b_hn = None
    if kind == "gru":
        b_hn = xp.stack([params[f"{prefix}.b_hn"] for prefix, _ in cells])[:, None, :]
    w_x = xp.concat([params[f"{prefix}.w_x"] for prefix, _ in cells], axis=-1)
    bias = xp.concat([params[f"{prefix}.b"] for prefix, _ in cells], axis=-1)
    width = params[f"{cells[0][0]}.b"].shape[-1]
    length = mask.shape[1]
    projected = xp.reshape(linear(x, w_x, xp) + bias, (-1, length, count, width))
    projected = xp.permute_dims(projected, (1, 2, 0, 3))  # (L, cells, B, gates)
    m = time_major(mask, xp)

    def ordered(a: Array, reverse: bool) -> Any:
        return xp.flip(a, axis=0) if reverse else a

    per_cell = unstack(projected, 1, xp)
    gates_x = xp.stack(
        [ordered(a, reverse) for a, (_, reverse) in zip(per_cell, cells, strict=True)], axis=1
    )
    xs = (gates_x, xp.stack([ordered(m, reverse) for _, reverse in cells], axis=1))
    zeros = batch_zeros(ctx, x, (w_h.shape[-2],))
    initial = tuple(xp.stack([zeros] * count) for _ in range(2 if kind == "lstm" else 1))
    final, ys = _scan(ctx, kind, w_h, b_hn, initial, xs)
    outputs = [
        time_major(ordered(y, reverse), xp)
        for y, (_, reverse) in zip(unstack(ys, 1, xp), cells, strict=True)
    ]
    return outputs, [tuple(s[i, ...] for s in final) for i in range(count)]


def bidirectional(
    params: Params, prefix: str, kind: str, x: Array, mask: Array, ctx: Context
) -> tuple[Any, tuple[Any, ...]]:
    """Forward (``prefix.fw``) and backward (``prefix.bw``) cells, outputs concatenated.

    Both directions run in one scan (:func:`stacked_cells`): half the loop steps of two.
    """
    xp = ctx.xp
    (y_f, y_b), (s_f, s_b) = stacked_cells(
        params, [(f"{prefix}.fw", False), (f"{prefix}.bw", True)], kind, x, mask, ctx
    )
    state = tuple(xp.concat([a, b], axis=-1) for a, b in zip(s_f, s_b, strict=True))
    return xp.concat([y_f, y_b], axis=-1), state


def controller_scan(
    params: Params,
    x: Array,
    mask: Array,
    ctx: Context,
    memory: tuple[Any, ...],
    reads: Array,
    access: Callable[[Any, tuple[Any, ...]], tuple[tuple[Any, ...], Any]],
) -> Any:
    """Run an LSTM controller that reads a memory every step; return the output logits.

    The controller (``controller.w_x``, ``.w_h``, ``.b``) sees ``[x_t : reads_{t-1}]``;
    ``access(h_t, memory) -> (memory, reads_t)`` is the memory's step, and the output
    layer ``head.out`` sees ``[h_t : reads_t]``. ``memory`` is the initial memory state
    (a tuple of ``(B, ...)`` arrays) and ``reads`` the initial reads ``(B, n_reads)``.
    At a padded position every state is kept. This is the loop of the NTM and the DNC.
    """
    xp = ctx.xp
    w_x, w_h = params["controller.w_x"], params["controller.w_h"]
    d = x.shape[-1]
    gates_x = time_major(linear(x, w_x[:d, :], xp) + params["controller.b"], xp)
    w_read = w_x[d:, :]
    hidden = w_h.shape[0]
    carry = (batch_zeros(ctx, x, (hidden,)), batch_zeros(ctx, x, (hidden,)), memory, reads)

    def step(state, inputs):
        h, c, memory, reads = state
        gx, m_t = inputs
        h_new, c_new = lstm_cell(gx + xp.matmul(reads, w_read) + xp.matmul(h, w_h), c, xp)
        memory_new, reads_new = access(h_new, memory)
        kept = (
            keep_where(m_t, h_new, h, xp),
            keep_where(m_t, c_new, c, xp),
            tuple(keep_where(m_t, a, b, xp) for a, b in zip(memory_new, memory, strict=True)),
            keep_where(m_t, reads_new, reads, xp),
        )
        return kept, xp.concat([kept[0], kept[3]], axis=-1)

    _, ys = run_scan(ctx, step, carry, (gates_x, time_major(mask, xp)))
    return dense(params, "head.out", time_major(ys, xp), xp)
