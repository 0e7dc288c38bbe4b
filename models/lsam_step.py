r"""One step of the LSAM recurrence, and its backward derived by hand.

The step (see :mod:`namcore.models.lsam` for the model) maps the memory ``M`` (one
``d_h x d_h`` matrix per head), the hidden state ``h`` and one position's input
projection ``g = x W_x + b`` to

.. math::

    z = g + h W_h = [q : k : v : z_r : z_w], \quad
    s_r = \sigma(z_r),\ p_w = \sigma(z_w)\, m, \quad
    a = M \hat k, \quad u = p_w v - p_w a

    M' = M + u \hat k^\top, \quad r = M' \hat q, \quad
    h' = m\,(s_r r) + (1 - m)\, h

with ``m`` the position's mask. :func:`make` returns it as a
:class:`namcore.backends.ManualStep`: the backends that differentiate (JAX, PyTorch)
run its hand-derived backward instead of their autodiff, rebuilding each step's
memory from its write (``M = M' - u k̂ᵀ``) rather than storing it. The backward is
written once against the array API standard; going backwards through the formulas
above (``G`` is the gradient reaching ``M'``, the read's share included):

.. math::

    \bar r = s_r \bar h,\quad G = \bar M' + \bar r \hat q^\top,\quad
    \bar u = G \hat k,\quad \bar v = p_w \bar u,\quad \bar a = -p_w \bar u

    \bar M = G + \bar a \hat k^\top,\quad
    \bar{\hat k} = G^\top u + M^\top \bar a,\quad
    \bar{\hat q} = M'^\top \bar r = M^\top \bar r + \hat k\,(u \cdot \bar r)

and each unit vector's gradient projected off itself and divided by the norm.
"""

from __future__ import annotations

from typing import Any

from namcore._agnostic import memory as _memory
from namcore._typing import Array
from namcore.backends import ManualStep

from . import layers as L
from .step_grads import matvec as _matvec
from .step_grads import rows as _rows
from .step_grads import unit_backward as _unit_backward

__all__ = ["make"]


def make(ctx: L.Context, d: int, heads: int, lead: tuple[int, ...]) -> ManualStep:
    """The LSAM step of width ``d`` with ``heads`` heads, for :func:`layers.run_memory_scan`.

    ``lead`` are the leading axes of the weights ``w_h`` (..., d, n) and of the state
    beyond the batch (two directions run in one scan: ``(2,)``). The step's
    ``params`` are ``(w_h,)``, its memory ``(M,)`` (..., B, heads, d_h, d_h), its
    carry and output ``(h,)`` (..., B, d), and its inputs ``(g, mask)``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import backends
    >>> from namcore.models import layers as L, lsam_step
    >>> xp = backends.get("numpy").namespace()
    >>> ctx = L.Context(xp, backends.get("numpy"), np.float64, "cpu")
    >>> step = lsam_step.make(ctx, d=4, heads=2, lead=())
    >>> w_h, g = np.ones((4, 3 * 4 + 2 * 2)), np.ones((1, 16))  # batch of 1
    >>> M, h, mask = np.zeros((1, 2, 2, 2)), np.zeros((1, 4)), np.ones(1, dtype=bool)
    >>> (M,), (h,), (y,), ((u, k_hat),) = step((w_h,), (M,), (h,), (g, mask))
    >>> M.shape, h.shape, bool(np.allclose(M, u[..., :, None] * k_hat[..., None, :]))
    ((1, 2, 2, 2), (1, 4), True)
    """
    xp = ctx.xp
    d_head = d // heads

    def split(x: Array, *parts: int) -> Any:
        return xp.reshape(x, (*lead, -1, *parts, heads, d_head))

    def join(x: Array, width: int = d) -> Any:
        return xp.reshape(x, (*lead, -1, width))

    def forward(params: Any, memory: Any, carry: Any, inputs: Any) -> Any:
        ((w_h,), (M,), (h,)) = params, memory, carry
        g, m = inputs
        z = g + xp.matmul(h, w_h)
        # q and k side by side: one normalisation (and one backward) for both
        qk = split(z[..., : 2 * d], 2)
        v = split(z[..., 2 * d : 3 * d])
        gates = L.sigmoid(z[..., 3 * d :], xp)  # [read : write] probabilities
        s_read = gates[..., :heads]
        p_write = gates[..., heads:] * ctx.floats(m)[..., None]
        qk_hat = ctx.unit(qk)
        qh, kh = qk_hat[..., 0, :, :], qk_hat[..., 1, :, :]
        a = _matvec(M, kh, xp)
        u = _memory.scale(p_write, v) - _memory.scale(p_write, a)  # update_direction's
        M_new = _memory.add_rank1(M, u, kh)
        r = _matvec(M_new, qh, xp)
        h_new = L.keep_where(m, join(_memory.scale(s_read, r)), h, xp)
        residuals = (h, qk, v, qk_hat, a, u, r, gates)
        return (M_new,), (h_new,), (h_new,), ((u, kh),), residuals

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
        ((w_h,), (M,), (g_M,)) = params, memory, g_memory
        _, qk, v, qk_hat, a, u, r, gates = residuals
        qh, kh = qk_hat[..., 0, :, :], qk_hat[..., 1, :, :]
        kept = ctx.floats(inputs[1])[..., None]
        g_out = g_carry[0] + g_y[0]
        g_new = g_out * kept  # a padded position passes its gradient to h unchanged
        g_hn = split(g_new)
        s_read = gates[..., :heads]
        p_write = gates[..., heads:] * kept
        g_r = s_read[..., None] * g_hn
        G = _memory.add_rank1(g_M, g_r, qh)
        g_u = _matvec(G, kh, xp)
        g_v = p_write[..., None] * g_u
        g_a = -g_v
        # r̄ᵀ M and āᵀ M as one product of two rows (two columns, Mᵀ [r̄ ā], runs
        # about 7x slower on XLA's CPU backend); M'ᵀ r̄ = Mᵀ r̄ + k̂ (u · r̄).
        both = xp.matmul(xp.stack([g_r, g_a], axis=-2), M)
        g_qh = both[..., 0, :] + kh * xp.sum(u * g_r, axis=-1, keepdims=True)
        g_kh = both[..., 1, :] + _matvec(xp.matrix_transpose(G), u, xp)
        g_qk = _unit_backward(qk, qk_hat, xp.stack([g_qh, g_kh], axis=-3), xp)
        g_gates = xp.concat(
            [xp.sum(r * g_hn, axis=-1), xp.sum((v - a) * g_u, axis=-1) * kept], axis=-1
        )
        g_z = xp.concat([join(g_qk, 2 * d), join(g_v), g_gates * (gates * (1.0 - gates))], axis=-1)
        g_h = g_out - g_new + xp.matmul(g_z, xp.matrix_transpose(w_h))
        return None, (_memory.add_rank1(G, g_a, kh),), (g_h,), (g_z, None)

    def param_grads(params: Any, xs: Any, residuals: Any, g_xs: Any) -> Any:
        # z_t = g_t + h_t W_h, so W̄_h = Σ_t h_tᵀ z̄_t, and z̄_t is the gradient of g_t:
        # one product over all steps and batch rows, (..., d, L·B) @ (..., L·B, n)
        h, g_z = _rows(residuals[0], lead, xp), _rows(g_xs[0], lead, xp)
        return (xp.matmul(xp.matrix_transpose(h), g_z),)

    return ManualStep(forward, backward, param_grads)
