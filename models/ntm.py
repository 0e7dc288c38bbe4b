r"""Neural Turing Machine (Graves et al. 2014): an LSTM controller with a read and a write head.

One step, with the memory ``M (N, W)``, the heads' previous weights ``w_r, w_w`` and
the previous read ``r``:

.. math::

    h_t, c_t = \mathrm{LSTM}([x_t : r_{t-1}], h_{t-1}, c_{t-1})

    w_w = \mathrm{address}(M_{t-1}, w_w^{t-1}; k_w, \beta_w, g_w, s_w, \gamma_w), \qquad
    M_t = M_{t-1} \odot (1 - w_w e^\top) + w_w a^\top

    w_r = \mathrm{address}(M_t, w_r^{t-1}; k_r, \beta_r, g_r, s_r, \gamma_r), \qquad
    r_t = w_r^\top M_t, \qquad y_t = W_y [h_t : r_t] + b_y

where :math:`\mathrm{address}` is content addressing, interpolation with the
previous weights, a circular shift and sharpening (:func:`namcore.ntm.address`).
Each head's parameters come from the controller's output: key (raw), strength
:math:`\beta = \mathrm{softplus}`, gate :math:`g = \sigma`, shift weights a softmax
over (-1, 0, +1), :math:`\gamma = 1 + \mathrm{softplus}`; erase :math:`e = \sigma`
and add :math:`a = \tanh`. The memory starts at zero and both heads on cell 0, so
location addressing has an anchor from the first step. The model is causal: it
runs once over the sequence and emits a prediction at every position.
"""

from __future__ import annotations

from typing import Any

from namcore._agnostic import ntm as _ntm
from namcore._agnostic.memory import EPS
from namcore._typing import Array, Namespace

from . import cells
from . import layers as L
from . import spec as P
from .classic_config import NTMConfig

__all__ = ["address", "forward", "head_parameters", "specs"]


def specs(config: NTMConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of an NTM."""
    d, w = config.d_model, config.memory_width
    out = P.embedding("embed", config.vocab_size, d)
    out |= P.recurrent("controller", "lstm", d + w, d)
    out |= P.dense("read_head", d, config.head_size)
    out |= P.dense("write_head", d, config.head_size + 2 * w)
    out |= P.dense("head.out", d + w, config.output_size)
    return out


def head_parameters(z: Array, width: int, xp: Namespace) -> tuple[Any, ...]:
    """Split a head's outputs ``z (B, W + 6)`` into key, strength, gate, shift, gamma."""
    key = z[:, :width]
    strength = L.softplus(z[:, width], xp)
    gate = L.sigmoid(z[:, width + 1], xp)
    shift = L.softmax(z[:, width + 2 : width + 5], xp)
    gamma = 1.0 + L.softplus(z[:, width + 5], xp)
    return key, strength, gate, shift, gamma


def address(memory: Array, previous: Array, z: Array, width: int, xp: Namespace) -> Any:
    """New weights ``(B, N)`` of a head with outputs ``z`` over ``memory (B, N, W)``."""
    key, strength, gate, shift, gamma = head_parameters(z, width, xp)
    content = _ntm.content_address(memory, key, strength, eps=EPS, xp=xp)
    gated = _ntm.interpolate(content, previous, gate)
    return _ntm.sharpen(_ntm.shift(gated, shift, xp=xp), gamma, xp=xp)


def forward(params: L.Params, tokens: Array, mask: Array = None, *, config: NTMConfig) -> Any:
    """Logits ``(B, L, output_size)`` of an NTM for integer ``tokens`` (B, L).

    Padded positions (``mask`` False) leave every state unchanged.
    """
    ctx, mask = L.context(params, tokens, mask, "NTM")
    xp = ctx.xp
    n, w = config.memory_size, config.memory_width
    x = L.embed(params, "embed", tokens, xp)
    first_cell = xp.astype(xp.arange(n, device=ctx.device) == 0, ctx.dtype)
    start = L.batch_zeros(ctx, x, (n,)) + first_cell
    memory = (L.batch_zeros(ctx, x, (n, w)), start, start)  # memory, read and write weights

    def access(h, state):
        memory, w_r, w_w = state
        z_w = L.dense(params, "write_head", h, xp)
        w_w = address(memory, w_w, z_w[:, : w + 6], w, xp)
        erase = L.sigmoid(z_w[:, w + 6 : 2 * w + 6], xp)
        memory = _ntm.write(memory, w_w, erase, xp.tanh(z_w[:, 2 * w + 6 :]))
        w_r = address(memory, w_r, L.dense(params, "read_head", h, xp), w, xp)
        return (memory, w_r, w_w), _ntm.read(memory, w_r, xp=xp)

    return cells.controller_scan(params, x, mask, ctx, memory, L.batch_zeros(ctx, x, (w,)), access)
