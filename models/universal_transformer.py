r"""Universal Transformer encoder with adaptive computation time (Dehghani et al. 2019).

One pre-LayerNorm block (:func:`namcore.models.transformer.block`, softmax attention
over real positions) is applied again and again to every position. Before each
application ``s`` the state receives the position and the step signals,
:math:`h \leftarrow h + P_{pos} + P_{s}` (both sinusoidal). Each position halts by
ACT (Graves 2016): a halting probability :math:`p^s = \sigma(w_h \cdot h^s + b_h)` is
summed until the sum would pass ``halt_threshold`` (or ``max_steps`` is reached);
that last step gets the remainder :math:`R = 1 - \sum p`, and the output is the
mean of the states weighted by these probabilities:

.. math::

    y = \sum_{s < N} p^s\, h^{s+1} + R\, h^{N+1}, \qquad
    \rho = N + R \quad (\text{the ponder cost})

A halted position's weight is zero from then on, so its output no longer changes
(the block still runs on every position: the loop has a fixed length, which is what
``jax.jit`` and ONNX need). Training adds ``ponder_weight`` times the mean ponder
cost over real positions to the loss (:data:`PONDER`, the entry's loss hook).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from namcore._typing import Array

from . import layers as L
from . import spec as P
from .classic_config import UniversalTransformerConfig
from .entry import LossHook
from .transformer import block, block_specs, positions, sequence_positions, softmax_attention

__all__ = ["PONDER", "forward", "specs"]


def specs(config: UniversalTransformerConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of a Universal Transformer.

    The halting bias starts at 1, so positions start by pondering a few steps.
    """
    d = config.d_model
    out = P.embedding("embed", config.vocab_size, d)
    out |= block_specs("block", d, config.ff_size)
    out |= P.dense("halt", d, 1, bias_values=(1.0,))
    out |= P.layer_norm("norm", d)
    out |= P.dense("head.out", d, config.output_size)
    return out


def forward(
    params: L.Params,
    tokens: Array,
    mask: Array = None,
    *,
    config: UniversalTransformerConfig,
    return_ponder: bool = False,
) -> Any:
    """Logits ``(B, L, output_size)`` of a Universal Transformer for integer ``tokens`` (B, L).

    With ``return_ponder`` also the weighted ponder cost ``ponder_weight * (N + R)``
    per position, ``(B, L)``.
    """
    ctx, mask = L.context(params, tokens, mask, "UniversalTransformer")
    xp = ctx.xp
    d = config.d_model
    where = sequence_positions(tokens, d, ctx)
    steps = positions(xp.arange(config.max_steps, device=ctx.device), d, xp, ctx.dtype)
    state = L.embed(params, "embed", tokens, xp)
    zeros = xp.zeros_like(state[..., 0])
    total, remainder, updates, halted = zeros, zeros, zeros, zeros
    output = xp.zeros_like(state)

    def attend(q: Array, k: Array, v: Array) -> Any:
        return softmax_attention(q, k, v, mask, xp, d // config.n_heads)

    for s in range(config.max_steps):
        state = state + where + steps[s, :]
        p = L.sigmoid(L.dense(params, "halt", state, xp)[..., 0], xp)
        running = 1.0 - halted
        if s == config.max_steps - 1:  # every running position halts at the last step
            halting = running
        else:
            halting = ctx.floats(total + p * running > config.halt_threshold) * running
        running = running - halting
        halted = halted + halting
        total = total + p * running
        remainder = remainder + halting * (1.0 - total)
        total = total + halting * remainder
        updates = updates + running + halting
        weight = (p * running + halting * remainder)[..., None]
        state = block(params, "block", state, xp, config.n_heads, attend)
        output = weight * state + (1.0 - weight) * output
    logits = L.dense(params, "head.out", L.layer_norm(params, "norm", output, xp), xp)
    if return_ponder:
        return logits, config.ponder_weight * (updates + remainder)
    return logits


def _applies(config: UniversalTransformerConfig) -> bool:
    return config.ponder_weight > 0


def _no_draw(config: Any, seed: int, step: int, shape: tuple[int, int]) -> dict[str, Any]:
    del config, seed, step, shape
    return {}


def _ponder_loss(
    params: Mapping[str, Any],
    aux: Array,
    target_logp: Array,
    mask: Array,
    loss_mask: Array,
    *,
    stop_gradient: Callable[[Any], Any],
    preset: Any,
) -> Any:
    """The mean weighted ponder cost over real positions."""
    del params, target_logp, loss_mask, stop_gradient, preset
    xp = L.namespace_of(aux)
    real = xp.astype(mask, aux.dtype)
    return xp.sum(aux * real) / xp.clip(xp.sum(real), min=1.0)


#: ACT's ponder cost as a loss hook: ``ponder_weight`` times the mean of ``N + R``.
PONDER = LossHook(
    applies=_applies,
    draw=_no_draw,
    options={"return_ponder": True},
    loss=_ponder_loss,
)
