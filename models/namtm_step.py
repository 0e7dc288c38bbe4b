r"""One step of the NAM-TM tapes, and its backward derived by hand.

Per tape (see :mod:`namcore.models.namtm` for the model), with the tape ``T`` (c, N),
the jump table ``J`` (N, c), the read and write heads ``H_r``, ``H_w`` (N) and one
position's inputs (the value ``v``, the action probabilities ``α_r``, ``α_w``, the
gates ``p_r``, ``p_w``, ``p_e``, the key ``k`` and the jump queries ``q_r``, ``q_w``):

.. math::

    \hat h_w = \hat H_w,\ \hat h_r = \hat H_r, \quad
    a = T \hat h_w, \quad u = p_w v - p_e a, \quad T' = T + u \hat h_w^\top, \quad
    y = p_r\, T' \hat h_r

    b = J \hat k, \quad w = p_w \hat h_w - p_e b, \quad J' = J + w \hat k^\top, \quad
    j_r = J' \hat q_r,\ j_w = J' \hat q_w

    H' = \alpha_L\, \mathrm{roll}(H, -1) + \alpha_N H + \alpha_R\, \mathrm{roll}(H, 1)
         + \alpha_J\, j \quad \text{(each head with its own actions and jump)}

(``ĥ`` is the unit head where ``normalize_heads``, the head itself otherwise; padded
positions keep the heads and write nothing, their ``p_w = p_e = 0``.) Going backwards,
with ``G_T`` and ``G_J`` the gradients reaching ``T'`` and ``J'`` (the reads' shares
included) and the adjoint of ``roll(·, s)`` being ``roll(·, -s)``:

.. math::

    G_J = \bar J' + \bar j_r \hat q_r^\top + \bar j_w \hat q_w^\top, \quad
    \bar w = G_J \hat k, \quad \bar b = -p_e \bar w, \quad
    \bar J = G_J + \bar b \hat k^\top

    \bar{\hat q} = J'^\top \bar j = J^\top \bar j + \hat k (w \cdot \bar j), \quad
    \bar{\hat k} = G_J^\top w + J^\top \bar b

    G_T = \bar T' + p_r \bar y\, \hat h_r^\top, \quad
    \bar u = G_T \hat h_w, \quad \bar a = -p_e \bar u, \quad
    \bar T = G_T + \bar a \hat h_w^\top

    \bar{\hat h}_r = T'^\top (p_r \bar y), \quad
    \bar{\hat h}_w = G_T^\top u + T^\top \bar a + p_w \bar w

and every unit vector's gradient projected off itself and divided by its norm (as in
:func:`namcore.models.step_grads.unit_backward`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from namcore._agnostic import memory as _memory
from namcore._typing import Namespace
from namcore.backends import ManualStep

from . import layers as L
from .step_grads import matvec, unit_backward

__all__ = ["JUMP", "LEFT", "NOOP", "RIGHT", "field_names", "make", "move", "step_forward"]

#: Index of each action in the action distributions (as in :mod:`.namtm`).
LEFT, NOOP, RIGHT, JUMP = 0, 1, 2, 3


#: The fields only the read head uses.
_READ_ONLY = frozenset({"act_r", "p_r", "q_r"})


def field_names(*, read: bool, jump: bool) -> tuple[str, ...]:
    """The names of :func:`step_forward`'s ``fields``, in order.

    ``v`` the value, ``act_r``/``act_w`` the action probabilities, ``p_r``, ``p_w``,
    ``p_e`` the gates (width 1), ``k`` the key and ``q_r``/``q_w`` the jump queries.
    Without ``read`` the read head's fields are left out; without ``jump`` the key's
    and the queries'.

    Examples
    --------
    >>> from namcore.models.namtm_step import field_names
    >>> field_names(read=False, jump=True)
    ('v', 'act_w', 'p_w', 'p_e', 'k', 'q_w')
    """
    names = ("v", "act_r", "act_w", "p_r", "p_w", "p_e") + (("k", "q_r", "q_w") if jump else ())
    return names if read else tuple(n for n in names if n not in _READ_ONLY)


def step_forward(
    ctx: L.Context,
    memory: tuple[Any, ...],
    heads: tuple[Any, ...],
    fields: Mapping[str, Any],
    normalize_heads: bool,
    *,
    read: bool = True,
) -> tuple[Any, Any, Any, Any, Any]:
    """The tapes' step without the mask: ``(memory, heads, read, writes, residuals)``.

    ``memory`` is ``(T,)`` or ``(T, J)``; ``heads`` is ``(H_read, H_write)``;
    ``fields`` maps each name of :func:`field_names` to a ``(B, tapes, width)``
    array (the gates of width 1). Without ``read`` (a layer whose reads nothing uses: every
    NAM-TM layer but the last), ``heads`` is ``(H_write,)``, the read is ``None``, and
    neither the read head nor its products are computed; the tapes and the write
    head come out the same.
    """
    xp = ctx.xp
    T = memory[0]
    jump = len(memory) > 1
    f = fields
    H_read, H_write = heads if read else (None, heads[0])
    aw = ctx.unit(H_write) if normalize_heads else H_write
    a = matvec(T, aw, xp)
    u = f["p_w"] * f["v"] - f["p_e"] * a
    T = _memory.add_rank1(T, u, aw)
    ar = raw = None
    if read:
        ar = ctx.unit(H_read) if normalize_heads else H_read
        raw = matvec(T, ar, xp)
    new_memory: tuple[Any, ...] = (T,)
    writes: tuple[Any, ...] = ((u, aw),)
    jumps: list[Any] = [None, None]
    kqq = kqq_hat = b = w = None
    if jump:
        J = memory[1]
        # one normalisation for the key and the queries: (k, q_r, q_w) or (k, q_w)
        kqq = xp.stack([f[n] for n in ("k", "q_r", "q_w") if n in f], axis=-2)
        kqq_hat = ctx.unit(kqq)
        kh = kqq_hat[..., 0, :]
        b = matvec(J, kh, xp)
        w = f["p_w"] * aw - f["p_e"] * b
        J = _memory.add_rank1(J, w, kh)
        jumps = [matvec(J, kqq_hat[..., i, :], xp) for i in range(1, kqq.shape[-2])]
        jumps = jumps if read else [None, *jumps]
        new_memory, writes = (new_memory[0], J), (*writes, (w, kh))
    jump_r, jump_w = jumps
    new_heads: tuple[Any, ...] = (move(H_write, f["act_w"], jump_w, xp),)
    if read:
        new_heads = (move(H_read, f["act_r"], jump_r, xp), *new_heads)
    residuals = (H_read, H_write, aw, ar, a, u, raw, jump_r, jump_w, kqq, kqq_hat, b, w)
    return new_memory, new_heads, f["p_r"] * raw if read else None, writes, residuals


def make(
    ctx: L.Context, widths: Sequence[int], normalize_heads: bool, *, read: bool = True
) -> ManualStep:
    """The tapes' step over packed inputs, for :func:`layers.run_memory_scan`.

    The step's ``params`` are ``()``, its memory ``(T,)`` (B, tapes, c, N) or
    ``(T, J)`` with the jump table (B, tapes, N, c), its carry ``(H_read, H_write)``
    (B, tapes, N), its output ``(read,)`` (B, tapes, c) and its inputs ``(packed,
    mask)``: the fields of :func:`step_forward` concatenated on the last axis, with
    ``widths`` their widths, and the position's mask (B,). Without ``read``, the carry
    is ``(H_write,)``, the output ``()``, and the fields leave out the read head's
    (see :func:`field_names`).

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import backends
    >>> from namcore.models import layers as L, namtm_step
    >>> ctx = L.Context(backends.get("numpy").namespace(), backends.get("numpy"), np.float64, "cpu")
    >>> step = namtm_step.make(ctx, widths=[2, 3, 3, 1, 1, 1], normalize_heads=True)
    >>> T, H = np.zeros((1, 1, 2, 4)), np.eye(4)[None, None, 0]  # head at cell 0
    >>> packed = np.array([[[5.0, 6.0, 0, 0, 1, 0, 0, 1, 1.0, 1.0, 0.0]]])  # write v, move right
    >>> (T,), (H_r, H_w), (read,), _ = step((), (T,), (H, H), (packed, np.ones(1, bool)))
    >>> T[0, 0, :, 0].tolist(), H_w[0, 0].tolist(), read[0, 0].tolist()
    ([5.0, 6.0], [0.0, 1.0, 0.0, 0.0], [5.0, 6.0])
    """
    xp = ctx.xp
    bounds = [sum(widths[:i]) for i in range(len(widths) + 1)]
    jump = len(widths) > len(field_names(read=read, jump=False))
    names = field_names(read=read, jump=jump)
    if len(names) != len(widths):
        raise ValueError(
            f"namtm_step.make: widths has {len(widths)} fields; with read={read} a step "
            f"takes {len(field_names(read=read, jump=False))} (no jump table) or "
            f"{len(field_names(read=read, jump=True))}"
        )

    def split(packed: Any) -> dict[str, Any]:
        return {n: packed[..., bounds[i] : bounds[i + 1]] for i, n in enumerate(names)}

    def forward(params: Any, memory: Any, carry: Any, inputs: Any) -> Any:
        packed, m = inputs
        memory, heads, out, writes, residuals = step_forward(
            ctx,
            tuple(memory),
            tuple(carry),
            split(packed),
            normalize_heads,
            read=read,
        )
        heads = tuple(L.keep_where(m, a, b, xp) for a, b in zip(heads, carry, strict=True))
        return memory, heads, (out,) if read else (), writes, residuals

    def backward(
        params: Any,
        inputs: Any,
        memory: Any,
        memory_after: Any,
        residuals: Any,
        g_memory: Any,
        g_carry: Any,
        g_y: Any,
    ) -> Any:
        packed, m = inputs
        f = split(packed)
        H_read, H_write, aw, ar, a, u, raw, jump_r, jump_w, kqq, kqq_hat, b, w = residuals
        p_w, p_e = f["p_w"], f["p_e"]
        kept = ctx.floats(m)[:, None, None]
        g = {}  # the gradients of the fields, by name
        # the heads' own: a padded position passes them on unchanged
        g_Hw_in = g_carry[-1] * kept
        g["act_w"], g_Hw, g_jw = _move_backward(H_write, f["act_w"], jump_w, g_Hw_in, xp)
        g_Hw = g_Hw + g_carry[-1] - g_Hw_in
        T = memory[0]
        G_T = g_memory[0]
        if read:
            g_Hr_in = g_carry[0] * kept
            g["act_r"], g_Hr, g_jr = _move_backward(H_read, f["act_r"], jump_r, g_Hr_in, xp)
            g_Hr = g_Hr + g_carry[0] - g_Hr_in
            (g_y,) = g_y
            g_raw = f["p_r"] * g_y
            g["p_r"] = xp.sum(raw * g_y, axis=-1, keepdims=True)
            G_T = _memory.add_rank1(G_T, g_raw, ar)
        g_u = matvec(G_T, aw, xp)
        g_a = -p_e * g_u
        if read:
            # T'ᵀ (p_r ȳ) and Tᵀ ā as one product of two rows; T'ᵀ x = Tᵀ x + ĥ_w (u · x)
            rows = xp.matmul(xp.stack([g_raw, g_a], axis=-2), T)
            g_ar = rows[..., 0, :] + aw * xp.sum(u * g_raw, axis=-1, keepdims=True)
            g_aw = rows[..., 1, :]
        else:
            g_aw = xp.matmul(g_a[..., None, :], T)[..., 0, :]
        g_aw = g_aw + matvec(xp.matrix_transpose(G_T), u, xp)
        g["v"] = p_w * g_u
        g["p_w"] = xp.sum(f["v"] * g_u, axis=-1, keepdims=True)
        g["p_e"] = -xp.sum(a * g_u, axis=-1, keepdims=True)
        g_memory_out: tuple[Any, ...] = (_memory.add_rank1(G_T, g_a, aw),)
        if jump:
            J = memory[1]
            kh = kqq_hat[..., 0, :]
            g_jumps = xp.stack([g_jr, g_jw] if read else [g_jw], axis=-2)  # (..., 1 or 2, N)
            G_J = g_memory[1] + xp.matmul(xp.matrix_transpose(g_jumps), kqq_hat[..., 1:, :])
            g_w = matvec(G_J, kh, xp)
            g_b = -p_e * g_w
            g_aw = g_aw + p_w * g_w
            g["p_w"] = g["p_w"] + xp.sum(aw * g_w, axis=-1, keepdims=True)
            g["p_e"] = g["p_e"] - xp.sum(b * g_w, axis=-1, keepdims=True)
            # Jᵀ b̄ and Jᵀ j̄ for each jump as one product of two or three rows
            rows = xp.matmul(xp.concat([g_b[..., None, :], g_jumps], axis=-2), J)
            g_kh = rows[..., 0, :] + matvec(xp.matrix_transpose(G_J), w, xp)
            g_qh = rows[..., 1:, :] + kh[..., None, :] * xp.sum(
                w[..., None, :] * g_jumps, axis=-1, keepdims=True
            )
            g_kqq = unit_backward(kqq, kqq_hat, xp.concat([g_kh[..., None, :], g_qh], axis=-2), xp)
            for i, n in enumerate(n for n in ("k", "q_r", "q_w") if n in f):
                g[n] = g_kqq[..., i, :]
            g_memory_out = (*g_memory_out, _memory.add_rank1(G_J, g_b, kh))
        if normalize_heads:
            g_aw = unit_backward(H_write, aw, g_aw, xp)
        g_heads: tuple[Any, ...] = (g_Hw + g_aw,)
        if read:
            g_ar = unit_backward(H_read, ar, g_ar, xp) if normalize_heads else g_ar
            g_heads = (g_Hr + g_ar, *g_heads)
        g_packed = xp.concat([g[n] for n in names], axis=-1)
        return (), g_memory_out, g_heads, (g_packed, None)

    return ManualStep(forward, backward)


def move(H: Any, actions: Any, jump_target: Any, xp: Namespace) -> Any:
    """Mix LEFT / NO-OP / RIGHT (cyclic rolls) and JUMP of head ``H`` (..., N).

    ``actions`` (..., 3 or 4) are the action probabilities; ``jump_target`` is used
    only when there are four.
    """
    out = (
        actions[..., LEFT : LEFT + 1] * xp.roll(H, -1, axis=-1)
        + actions[..., NOOP : NOOP + 1] * H
        + actions[..., RIGHT : RIGHT + 1] * xp.roll(H, 1, axis=-1)
    )
    if actions.shape[-1] > JUMP:
        out = out + actions[..., JUMP : JUMP + 1] * jump_target
    return out


def _move_backward(H: Any, actions: Any, jump_target: Any, g: Any, xp: Namespace) -> Any:
    """The gradients of :func:`move` at ``(actions, H, jump_target)`` given ``g`` at its output."""
    parts = [xp.roll(H, -1, axis=-1), H, xp.roll(H, 1, axis=-1)]
    if actions.shape[-1] > JUMP:
        parts.append(jump_target)
    g_actions = xp.concat([xp.sum(p * g, axis=-1, keepdims=True) for p in parts], axis=-1)
    g_H = (
        actions[..., LEFT : LEFT + 1] * xp.roll(g, 1, axis=-1)
        + actions[..., NOOP : NOOP + 1] * g
        + actions[..., RIGHT : RIGHT + 1] * xp.roll(g, -1, axis=-1)
    )
    g_jump = actions[..., JUMP : JUMP + 1] * g if actions.shape[-1] > JUMP else None
    return g_actions, g_H, g_jump
