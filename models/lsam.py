r"""LSAM: an LSTM whose cell state is a NAM memory (the paper's section 5.1).

One step of a direction with ``h`` heads of width ``d_h``:

.. math::

    [q : k : v : g_r : g_w] = W_x x_t + W_h h_{t-1} + b, \qquad
    p_r = \sigma(g_r),\ p_w = \sigma(g_w)

    M_t = \mathrm{write}(M_{t-1}, k, v, p_w, p_w), \qquad
    h_t = \mathrm{read}(M_t, q, p_r)

with one memory ``(d_h, d_h)`` per head (heads are batch axes of ``M``) and the
heads' reads concatenated into ``h_t``. The erase probability is tied to the write
probability, so the content at ``k`` becomes ``(1 - p_w) M k + p_w v``: the analogue
of an LSTM's forget and input gates.

The model (:func:`forward`) is the arrangement the paper evaluates: embedding, a
bidirectional LSAM encoder layer (residual, then a residual feed-forward block and a
LayerNorm), and a unidirectional LSAM decoder over the encoder's outputs that
starts from the encoder's final memory (forward heads, then backward heads).
"""

from __future__ import annotations

import math
from typing import Any

from namcore._typing import Array, Namespace

from . import cells, lsam_step
from . import layers as L
from . import spec as P
from .config import LSAMConfig

__all__ = [
    "bidirectional_layer",
    "cell_specs",
    "forward",
    "layer",
    "specs",
    "stream_state",
    "stream_step",
    "streams",
]


def cell_specs(prefix: str, n_in: int, d: int, heads: int) -> dict[str, P.Spec]:
    """Parameters of one LSAM direction of width ``d`` with ``heads`` heads."""
    n_out = 3 * d + 2 * heads
    bound = 1.0 / math.sqrt(n_in + d)  # nn.Linear over the concatenation [x : h]
    return {
        f"{prefix}.w_x": P.Spec((n_in, n_out), "uniform", bound),
        f"{prefix}.w_h": P.Spec((d, n_out), "uniform", bound),
        f"{prefix}.b": P.Spec((n_out,), "zeros"),
    }


def specs(config: LSAMConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of an LSAM model."""
    d, heads = config.d_model, config.n_heads
    out = P.embedding("embed", config.vocab_size, d)
    if config.bidirectional:
        out |= cell_specs("encoder.fw", d, d // 2, heads // 2)
        out |= cell_specs("encoder.bw", d, d // 2, heads // 2)
        out |= P.dense("encoder.mix", d, d)
    else:
        out |= cell_specs("encoder.fw", d, d, heads)
    out |= P.dense("encoder.ff1", d, config.ff_size)
    out |= P.dense("encoder.ff2", config.ff_size, d)
    out |= P.layer_norm("encoder.norm", d)
    if config.decoder:
        out |= cell_specs("decoder.fw", d, d, heads)
    out |= P.dense("head.hidden", d, d)
    out |= P.layer_norm("head.norm", d)
    out |= P.dense("head.out", d, config.output_size)
    return out


def layer(
    params: L.Params,
    prefix: str,
    x: Array,
    mask: Array,
    ctx: L.Context,
    *,
    heads: int,
    reverse: bool = False,
    memory: Array = None,
    hidden: Array = None,
    return_hidden: bool = False,
) -> tuple[Any, ...]:
    """Run one LSAM direction over ``x`` (B, L, n_in).

    Parameters
    ----------
    params, prefix
        The parameter mapping and the direction's name in it (``prefix.w_x`` ...).
    mask : boolean array (B, L)
        Padded positions write nothing and keep the hidden state.
    heads : int
        Number of heads the direction's width is split into.
    reverse : bool
        Run from the last position to the first.
    memory : array (B, heads, d_h, d_h), optional
        Initial memory. Default: zeros.
    hidden : array (B, d), optional
        Initial hidden state. Default: zeros.
    return_hidden : bool
        Also return the final hidden state.

    Returns
    -------
    outputs : array (B, L, d)
    memory : array (B, heads, d_h, d_h)
        The memory after the last real token.
    hidden : array (B, d)
        Only with ``return_hidden``: the hidden state after the last real token.
    """
    xp = ctx.xp
    w_h = params[f"{prefix}.w_h"]
    d = w_h.shape[0]
    if memory is None:
        memory = L.batch_zeros(ctx, x, (heads, d // heads, d // heads))
    if hidden is None:
        hidden = L.batch_zeros(ctx, x, (d,))
    gates_x = cells.input_projection(params, prefix, x, xp)
    xs = (gates_x, L.time_major(mask, xp))
    ys, memory, hidden = _scan(ctx, w_h, xs, memory, hidden, heads, reverse=reverse)
    outputs = L.time_major(ys, xp)
    return (outputs, memory, hidden) if return_hidden else (outputs, memory)


def _scan(
    ctx: L.Context,
    w_h: Array,
    xs: tuple[Any, Any],
    memory: Array,
    hidden: Array,
    heads: int,
    *,
    reverse: bool = False,
) -> tuple[Any, Any, Any]:
    """The LSAM recurrence over time-major ``xs = (x @ w_x + b, mask)``.

    Leading axes of ``w_h`` (..., d, n) and of the state (..., B, ...) beyond the
    batch are independent recurrences (the two directions of an encoder) run in one
    scan. Returns ``(outputs, memory, hidden)``, outputs time-major.
    """
    step = lsam_step.make(ctx, w_h.shape[-2], heads, tuple(w_h.shape[:-2]))
    (memory,), (hidden,), (ys,) = L.run_memory_scan(
        ctx, step, (w_h,), (memory,), (hidden,), xs, reverse=reverse
    )
    return ys, memory, hidden


def bidirectional_layer(
    params: L.Params, prefix: str, x: Array, mask: Array, ctx: L.Context, *, heads: int
) -> tuple[Any, Any, Any]:
    """The forward (``prefix.fw``) and backward (``prefix.bw``) directions in one scan.

    The same as :func:`layer` forward and :func:`layer` with ``reverse=True`` (each
    with ``heads`` heads), with the two stacked on a leading axis of the weights, the
    state and the (time-reversed, for the backward direction) inputs. Returns
    ``(outputs_fw, outputs_bw, memory)``: outputs (B, L, d) each and the final
    memories (B, 2 * heads, d_h, d_h), forward heads first.
    """
    xp = ctx.xp
    fw, bw = f"{prefix}.fw", f"{prefix}.bw"
    w_h = xp.stack([params[f"{fw}.w_h"], params[f"{bw}.w_h"]])
    d = w_h.shape[-2]
    m = L.time_major(mask, xp)
    xs = (
        cells.stack_directions(
            cells.input_projection(params, fw, x, xp), cells.input_projection(params, bw, x, xp), xp
        ),
        cells.stack_directions(m, m, xp),
    )
    memory = L.batch_zeros(ctx, x, (heads, d // heads, d // heads))
    hidden = L.batch_zeros(ctx, x, (d,))
    ys, memory, _ = _scan(
        ctx, w_h, xs, xp.stack([memory, memory]), xp.stack([hidden, hidden]), heads
    )
    y_f, y_b = cells.split_directions(ys, xp)
    memory = xp.concat([memory[0, ...], memory[1, ...]], axis=1)
    return L.time_major(y_f, xp), L.time_major(y_b, xp), memory


def forward(
    params: L.Params,
    tokens: Array,
    mask: Array = None,
    *,
    config: LSAMConfig,
    state: Array = None,
    return_state: bool = False,
) -> Any:
    """Logits ``(B, L, output_size)`` of an LSAM model for integer ``tokens`` (B, L).

    A causal LSAM (``bidirectional=False, decoder=False``) can stream: ``state`` (from
    a previous call with ``return_state=True``) is ``(memory, hidden)`` of its one
    LSAM layer, ``(B, heads, d_h, d_h)`` and ``(B, d_model)``; feeding a sequence in
    pieces then gives the same logits as one call.
    """
    ctx, mask = L.context(params, tokens, mask, "LSAM")
    xp = ctx.xp
    heads = config.n_heads
    x = L.embed(params, "embed", tokens, xp)
    if state is not None or return_state:
        if config.bidirectional or config.decoder:
            raise ValueError(
                "LSAM: state and return_state need a causal model "
                "(LSAMConfig(bidirectional=False, decoder=False))"
            )
        memory, hidden = (None, None) if state is None else state
        y, memory, hidden = layer(
            params,
            "encoder.fw",
            x,
            mask,
            ctx,
            heads=heads,
            memory=memory,
            hidden=hidden,
            return_hidden=True,
        )
        logits = _head(params, x + y, xp)
        return (logits, (memory, hidden)) if return_state else logits
    if config.bidirectional:
        y_f, y_b, memory = bidirectional_layer(params, "encoder", x, mask, ctx, heads=heads // 2)
        mixed = L.dense(params, "encoder.mix", xp.concat([y_f, y_b], axis=-1), xp)
        x = x + L.relu(mixed, xp)
    else:
        y, memory = layer(params, "encoder.fw", x, mask, ctx, heads=heads)
        x = x + y
    if not config.decoder:
        return _head(params, x, xp)
    x = _feed_forward(params, x, xp)
    x, _ = layer(params, "decoder.fw", x, mask, ctx, heads=heads, memory=memory)
    return _output(params, x, xp)


def _feed_forward(params: L.Params, x: Array, xp: Namespace) -> Any:
    ff = L.dense(params, "encoder.ff2", L.relu(L.dense(params, "encoder.ff1", x, xp), xp), xp)
    return L.layer_norm(params, "encoder.norm", x + ff, xp)


def _output(params: L.Params, x: Array, xp: Namespace) -> Any:
    hidden = L.relu(L.dense(params, "head.hidden", x, xp), xp)
    return L.dense(params, "head.out", L.layer_norm(params, "head.norm", hidden, xp), xp)


def _head(params: L.Params, x: Array, xp: Namespace) -> Any:
    """The position-wise rest of an encoder-only model: feed-forward block and output."""
    return _output(params, _feed_forward(params, x, xp), xp)


def stream_state(config: LSAMConfig) -> dict[str, tuple[tuple[int | str, ...], str]]:
    """The streaming state of a causal LSAM: its memory and hidden state."""
    d_h = config.d_head
    return {
        "memory": (("batch", config.n_heads, d_h, d_h), "float"),
        "hidden": (("batch", config.d_model), "float"),
    }


def stream_step(
    params: L.Params, token: Array, state: dict[str, Any], *, config: LSAMConfig
) -> tuple[Any, dict[str, Any]]:
    """One streaming step of a causal LSAM: logits ``(B, output_size)`` and the new state."""
    logits, (memory, hidden) = forward(
        params,
        token[:, None],
        config=config,
        state=(state["memory"], state["hidden"]),
        return_state=True,
    )
    return logits[:, 0, :], {"memory": memory, "hidden": hidden}


def streams(config: LSAMConfig) -> bool:
    """Whether this LSAM can stream (``bidirectional=False, decoder=False``)."""
    return not config.bidirectional and not config.decoder
