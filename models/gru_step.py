r"""One step of a GRU cell, and its backward derived by hand.

The step (the cell of :func:`namcore.models.cells.recurrent` and
:func:`~namcore.models.cells.bidirectional`, as in ``torch.nn.GRU``) maps the hidden
state ``h`` and one position's input projection ``g = x W_x + b`` to

.. math::

    s = h W_h = [s_r : s_u : s_n], \quad
    r = \sigma(g_r + s_r),\ u = \sigma(g_u + s_u), \quad
    c = \tanh(g_n + r\,(s_n + b_n))

    h' = m\,((1 - u)\,c + u\,h) + (1 - m)\,h

with ``m`` the position's mask. :func:`make` returns it as a
:class:`namcore.backends.ManualStep`, so JAX and PyTorch differentiate the loop with
the backward below instead of their autodiff (and PyTorch's ``compile_steps``
compiles it). Going backwards, with ``ḡ`` the gradient reaching ``h'`` and
``ḡ' = m ḡ``:

.. math::

    \bar c = (1 - u)\,\bar g', \quad \bar a_n = (1 - c^2)\,\bar c, \quad
    \bar a_u = u (1 - u)\,(h - c)\,\bar g', \quad
    \bar a_r = r (1 - r)\,(s_n + b_n)\,\bar a_n

    \bar g = [\bar a_r : \bar a_u : \bar a_n], \quad
    \bar s = [\bar a_r : \bar a_u : r\,\bar a_n], \quad
    \bar h = (1 - m)\,\bar g + u\,\bar g' + \bar s W_h^\top

and, summed over the steps and the batch after the loop (``param_grads``),
``W̄_h = Σ hᵀ s̄`` and ``b̄_n = Σ r ā_n``.
"""

from __future__ import annotations

from typing import Any

from namcore.backends import ManualStep

from . import layers as L
from .step_grads import rows as _rows

__all__ = ["make"]


def make(ctx: L.Context, hidden: int, lead: tuple[int, ...]) -> ManualStep:
    """The GRU step of width ``hidden``, for :func:`layers.run_memory_scan`.

    ``lead`` are the leading axes of ``w_h`` (..., hidden, 3 * hidden) and of the state
    beyond the batch (two directions run in one scan: ``(2,)``). The step's params
    are ``(w_h, b_hn)`` (``b_hn`` broadcasts against ``(..., B, hidden)``), its memory
    ``()``, its carry and output ``(h,)`` (..., B, hidden) and its inputs ``(g, mask)``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import backends
    >>> from namcore.models import layers as L, gru_step
    >>> xp = backends.get("numpy").namespace()
    >>> ctx = L.Context(xp, backends.get("numpy"), np.float64, "cpu")
    >>> step = gru_step.make(ctx, hidden=3, lead=())
    >>> w_h, b_hn = np.zeros((3, 9)), np.zeros(3)
    >>> g, mask = np.zeros((2, 9)), np.array([True, False])  # a batch of 2
    >>> _, (h,), (y,), _ = step((w_h, b_hn), (), (np.ones((2, 3)),), (g, mask))
    >>> h  # u = 1/2, c = 0: half of h is kept; the padded row keeps all of it
    array([[0.5, 0.5, 0.5],
           [1. , 1. , 1. ]])
    """
    xp = ctx.xp

    def forward(params: Any, memory: Any, carry: Any, inputs: Any) -> Any:
        (w_h, b_hn), (h,) = params, carry
        g, m = inputs
        s = xp.matmul(h, w_h)
        gates = L.sigmoid(g[..., : 2 * hidden] + s[..., : 2 * hidden], xp)
        r, u = gates[..., :hidden], gates[..., hidden:]
        s_n = s[..., 2 * hidden :] + b_hn
        c = xp.tanh(g[..., 2 * hidden :] + r * s_n)
        h_new = L.keep_where(m, (1.0 - u) * c + u * h, h, xp)
        return (), (h_new,), (h_new,), (), (h, r, u, c, s_n)

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
        (w_h, _), (h, r, u, c, s_n) = params, residuals
        g_out = g_carry[0] + g_y[0]
        g_new = g_out * ctx.floats(inputs[1])[..., None]  # a padded position passes it on
        a_n = (1.0 - u) * g_new * (1.0 - c * c)
        a_u = u * (1.0 - u) * (h - c) * g_new
        a_r = r * (1.0 - r) * s_n * a_n
        g_s = xp.concat([a_r, a_u, r * a_n], axis=-1)
        g_h = g_out - g_new + u * g_new + xp.matmul(g_s, xp.matrix_transpose(w_h))
        return None, (), (g_h,), (xp.concat([a_r, a_u, a_n], axis=-1), None)

    def param_grads(params: Any, xs: Any, residuals: Any, g_xs: Any) -> Any:
        # s = h W_h: W̄_h = Σ hᵀ s̄, one product over all steps and batch rows; s̄ is
        # the input's gradient with its n part times r, which is also b̄_n's summand.
        _, b_hn = params
        h, r = residuals[0], residuals[1]
        g = g_xs[0]
        g_sn = r * g[..., 2 * hidden :]
        g_s = xp.concat([g[..., : 2 * hidden], g_sn], axis=-1)
        g_w = xp.matmul(xp.matrix_transpose(_rows(h, lead, xp)), _rows(g_s, lead, xp))
        g_b = xp.reshape(xp.sum(_rows(g_sn, lead, xp), axis=-2), b_hn.shape)
        return (g_w, g_b)

    return ManualStep(forward, backward, param_grads)
