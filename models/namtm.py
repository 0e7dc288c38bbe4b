r"""NAM Turing Machine (the paper's section 5.2): NAM-memory tapes moved by learned heads.

A tape of length ``N`` with cells of width ``d`` is the NAM memory
:math:`T = \sum_i v_i e_i^\top` (shape ``(d, N)``); a head is a vector
:math:`H \in \mathbb{R}^N` over positions. Each step, per tape:

.. math::

    T' = \mathrm{write}(T, \hat H_w, v, p_w, p_e), \qquad
    r = \mathrm{read}(T', \hat H_r, p_r)

    J' = \mathrm{write}(J, k, \hat H_w, p_w, p_e), \qquad
    H_{jump} = \mathrm{read}(J', q)

    H' = p_{left}\,\mathrm{roll}(H, -1) + p_{noop}\,H + p_{right}\,\mathrm{roll}(H, 1)
         + p_{jump}\,H_{jump}

for the read head and the write head separately (each rolled from *itself*: the
authors' first code rolled the read head for both, a bug fixed here).
:math:`\hat H = H / \lVert H \rVert` when ``normalize_heads`` (the authors' later
code); the jump table :math:`J` (``(N, d)``) maps a unit key to the position it was
written at. ``p_e = p_w`` unless ``separate_erase``.

As in both versions of the authors' code, the tape is written and then read, and
the controller (a bidirectional GRU or an LSTM over the inputs) never sees what is
read. Values and keys come from the inputs, actions and jump queries from the
controller. Layer ``i + 1`` starts from layer ``i``'s final tape, and only the last
layer's reads reach the output, so the earlier layers run no read head at all. No
parameter depends on the tape length, which is an argument of every call.
"""

from __future__ import annotations

from typing import Any

from namcore._typing import Array

from . import cells, namtm_step
from . import layers as L
from . import spec as P
from .config import NAMTMConfig
from .namtm_step import JUMP, LEFT, NOOP, RIGHT
from .namtm_step import move as move

__all__ = [
    "LEFT",
    "NOOP",
    "RIGHT",
    "JUMP",
    "forward",
    "initial_state",
    "move",
    "specs",
    "tape_step",
]


def specs(config: NAMTMConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of a NAM-TM model."""
    d, tapes, cell = config.d_model, config.n_tapes, config.tape_head_dim
    n_act, n_gates = config.n_actions, config.n_gates
    action_bias = [0.0] * n_act
    action_bias[NOOP] = action_bias[RIGHT] = config.action_bias
    per_tape = tuple(action_bias * 2 + [0.0] * n_gates)  # read actions, write actions, gates
    out = P.embedding("embed", config.vocab_size, d)
    out |= P.dense("input", d, d)
    out |= P.layer_norm("input_norm", d)
    for i in range(config.n_layers):
        prefix = f"layers.{i}"
        if config.controller == "bigru":
            out |= P.recurrent(f"{prefix}.controller.fw", "gru", d, d // 2)
            out |= P.recurrent(f"{prefix}.controller.bw", "gru", d, d // 2)
        else:
            out |= P.recurrent(f"{prefix}.controller.fw", "lstm", d, d)
        out |= P.dense(f"{prefix}.actions", d, tapes * len(per_tape), bias_values=per_tape)
        out |= P.dense(f"{prefix}.value", d, tapes * cell)
        if config.jump:
            out |= P.dense(f"{prefix}.key", d, tapes * cell)
            out |= P.dense(f"{prefix}.query", d, 2 * tapes * cell)
    out |= P.dense("output", tapes * cell, d)
    out |= P.layer_norm("head.norm", d)
    out |= P.dense("head.out", d, config.output_size)
    return out


def initial_state(
    ctx: L.Context,
    batch: Any,
    tapes: int,
    cell: int,
    tape_length: int,
    *,
    jump: bool,
    tape: Any = None,
) -> tuple[Any, ...]:
    """``(T, J, H_read, H_write)``: empty tapes (or ``tape``), heads at position 0.

    ``batch`` is the batch size, or an array ``(B, ...)`` whose (possibly symbolic)
    batch size to use. ``J`` is ``None`` without jumps.
    """
    xp = ctx.xp

    def zeros(shape: tuple[int, ...]) -> Any:
        if isinstance(batch, int):
            return ctx.zeros((batch, *shape))
        return L.batch_zeros(ctx, batch, shape)

    if tape is None:
        tape = zeros((tapes, cell, tape_length))
    table = zeros((tapes, tape_length, cell)) if jump else None
    first = xp.concat([zeros((tapes, 1)) + 1.0, zeros((tapes, tape_length - 1))], axis=-1)
    return tape, table, first, first


def tape_step(
    ctx: L.Context,
    state: tuple[Any, ...],
    *,
    value: Array,
    key: Any,
    query_read: Any,
    query_write: Any,
    act_read: Any,
    act_write: Any,
    p_read: Any,
    p_write: Any,
    p_erase: Any,
    normalize_heads: bool,
    return_writes: bool = False,
) -> tuple[Any, ...]:
    """One NAM-TM step for every tape; returns the new state and the read ``(B, tapes, d)``.

    With ``return_writes``, also the ``(u, k̂)`` of each memory's rank-1 write (the
    tape's, then the jump table's), as :func:`namcore.models.layers.run_memory_scan`
    needs them.

    ``state`` is ``(T, J, H_read, H_write)`` as from :func:`initial_state`. ``value``,
    ``key`` and the queries are ``(B, tapes, d)`` (``key`` unit length; ``key`` and
    the queries are ignored without a jump table), the action probabilities
    ``(B, tapes, n_actions)``, the gates ``(B, tapes)``.
    """
    T, J, H_read, H_write = state
    arrays = [value, act_read, act_write, *(p[..., None] for p in (p_read, p_write, p_erase))]
    memory = (T,) if J is None else (T, J)
    if J is not None:
        arrays += [key, query_read, query_write]
    fields = dict(zip(namtm_step.field_names(read=True, jump=J is not None), arrays, strict=True))
    memory, heads, r, writes, _ = namtm_step.step_forward(
        ctx, memory, (H_read, H_write), fields, normalize_heads
    )
    new = (memory[0], memory[1] if J is not None else None, *heads)
    return (new, r, writes) if return_writes else (new, r)


def _controllers(
    params: L.Params, x: Array, mask: Array, ctx: L.Context, config: NAMTMConfig
) -> list[Any]:
    """Every layer's controller output (B, L, d) over ``x``: one scan for all layers.

    The controllers never see what is read, and every layer's sees the same ``x``,
    so they run together, stacked (both directions of every layer's GRU, or every
    layer's LSTM).
    """
    layers = [f"layers.{i}.controller" for i in range(config.n_layers)]
    if config.controller != "bigru":
        outputs, _ = cells.stacked_cells(
            params, [(f"{c}.fw", False) for c in layers], "lstm", x, mask, ctx
        )
        return outputs
    pairs = [(f"{c}.{direction}", direction == "bw") for c in layers for direction in ("fw", "bw")]
    outputs, _ = cells.stacked_cells(params, pairs, "gru", x, mask, ctx)
    return [ctx.xp.concat(outputs[2 * i : 2 * i + 2], axis=-1) for i in range(len(layers))]


def _layer(
    params: L.Params,
    prefix: str,
    x: Array,
    hidden: Array,
    mask: Array,
    ctx: L.Context,
    config: NAMTMConfig,
    tape_length: int,
    tape: Any,
    *,
    read: bool,
) -> tuple[Any, Any]:
    """One NAM-TM layer over ``x`` (B, L, d) and its controller's output ``hidden``:
    reads (B, L, tapes * cell), final tape.

    Without ``read`` (every layer but the last: only its final tape is used), the
    reads are ``None`` and the read head is not run (see :func:`namtm_step.make`).
    """
    xp = ctx.xp
    length = mask.shape[1]  # known even where x's is not (ndonnx after a matmul)
    tapes, cell, n_act = config.n_tapes, config.tape_head_dim, config.n_actions
    logits = xp.reshape(
        L.dense(params, f"{prefix}.actions", hidden, xp),
        (-1, length, tapes, 2 * n_act + config.n_gates),
    )
    gates = L.sigmoid(logits[..., 2 * n_act :], xp)
    written = ctx.floats(mask)[:, :, None, None]
    p_write = gates[..., 1:2] * written
    p_erase = gates[..., 2:3] * written if config.separate_erase else p_write
    fields = {
        "v": xp.reshape(L.dense(params, f"{prefix}.value", x, xp), (-1, length, tapes, cell)),
        "act_w": L.softmax(logits[..., n_act : 2 * n_act], xp),
        "p_w": p_write,
        "p_e": p_erase,
    }
    if read:
        fields |= {"act_r": L.softmax(logits[..., :n_act], xp), "p_r": gates[..., 0:1]}
    if config.jump:
        fields["k"] = ctx.unit(
            xp.reshape(L.dense(params, f"{prefix}.key", x, xp), (-1, length, tapes, cell))
        )
        query = xp.reshape(
            L.dense(params, f"{prefix}.query", hidden, xp), (-1, length, 2, tapes, cell)
        )
        q_r, fields["q_w"] = L.unstack(query, 2, xp)
        if read:
            fields["q_r"] = q_r
    names = namtm_step.field_names(read=read, jump=config.jump)
    # One packed time-major input (L, B, tapes, width) instead of ten: one transpose,
    # and one slice per field and step.
    widths = [int(fields[n].shape[-1]) for n in names]
    packed = L.time_major(xp.concat([fields[n] for n in names], axis=-1), xp)

    step = namtm_step.make(ctx, widths, config.normalize_heads, read=read)
    T, J, H_read, H_write = initial_state(
        ctx, x, tapes, cell, tape_length, jump=config.jump, tape=tape
    )
    memories = (T, J) if config.jump else (T,)
    heads = (H_read, H_write) if read else (H_write,)
    final, _, ys = L.run_memory_scan(
        ctx, step, (), memories, heads, (packed, L.time_major(mask, xp))
    )
    if not read:
        return None, final[0]
    reads = L.time_major(ys[0], xp)
    return xp.reshape(reads, (-1, length, tapes * cell)), final[0]


def forward(
    params: L.Params,
    tokens: Array,
    mask: Array = None,
    *,
    config: NAMTMConfig,
    tape_length: int | None = None,
) -> Any:
    """Logits ``(B, L, output_size)`` of a NAM-TM model for integer ``tokens`` (B, L).

    ``tape_length`` overrides ``config.tape_length`` for this call.
    """
    tape_length = config.tape_length if tape_length is None else tape_length
    if isinstance(tape_length, bool) or not isinstance(tape_length, int) or tape_length < 1:
        raise ValueError(f"NAMTM: tape_length must be a positive integer, got {tape_length!r}")
    ctx, mask = L.context(params, tokens, mask, "NAMTM")
    xp = ctx.xp
    x = L.dense(params, "input", L.embed(params, "embed", tokens, xp), xp)
    x = L.layer_norm(params, "input_norm", x, xp)
    tape = None
    hiddens = _controllers(params, x, mask, ctx, config)
    for i, hidden in enumerate(hiddens):
        # only the last layer's reads are used: the others pass on their final tape
        last = i == len(hiddens) - 1
        reads, tape = _layer(
            params, f"layers.{i}", x, hidden, mask, ctx, config, tape_length, tape, read=last
        )
    out = L.dense(params, "output", reads, xp)
    hidden = L.relu(L.layer_norm(params, "head.norm", out, xp), xp)
    return L.dense(params, "head.out", hidden, xp)
