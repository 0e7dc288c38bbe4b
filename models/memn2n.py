r"""End-to-End Memory Network (Sukhbaatar et al. 2015) over the tokens of the input.

The memory holds one slot per real input token; every position asks its own
question. With ``K`` hops and adjacent weight tying (``K + 1`` embedding tables
:math:`E_0 \ldots E_K`, :math:`A^k = E_{k-1}`, :math:`C^k = E_k`, :math:`B = A^1`):

.. math::

    u^1_t = E_0 x_t + P_t, \qquad
    m^k_j = E_{k-1} x_j + P_j, \qquad c^k_j = E_k x_j + P_j

    p^k_{tj} = \mathrm{softmax}_j(u^k_t \cdot m^k_j), \qquad
    u^{k+1}_t = u^k_t + \textstyle\sum_j p^k_{tj} c^k_j

    y_t = E_K^\top u^{K+1}_t \quad (\text{or a dense layer when the outputs are not tokens})

The softmax runs over real positions only. The paper encodes the position of a word
*inside* a memory sentence (its "PE") and the order of sentences with learned
"temporal" tables; here a slot is one token, so its position in the sequence is
encoded instead, :math:`P_j`, with fixed sinusoids (no learned table, so any length
can be read). There is no non-linearity, as in the paper's adjacent-tying model.
"""

from __future__ import annotations

from typing import Any

from namcore._typing import Array

from . import layers as L
from . import spec as P
from .classic_config import MemN2NConfig
from .transformer import sequence_positions

__all__ = ["forward", "specs"]


def specs(config: MemN2NConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of a MemN2N (tables ``N(0, 0.1²)``)."""
    out: dict[str, P.Spec] = {}
    for k in range(config.n_hops + 1):
        out |= P.embedding(f"embed.{k}", config.vocab_size, config.d_model, scale=0.1)
    if not config.tied_output:
        out |= P.dense("head.out", config.d_model, config.output_size)
    return out


def forward(params: L.Params, tokens: Array, mask: Array = None, *, config: MemN2NConfig) -> Any:
    """Logits ``(B, L, output_size)`` of a MemN2N for integer ``tokens`` (B, L)."""
    ctx, mask = L.context(params, tokens, mask, "MemN2N")
    xp = ctx.xp
    where = sequence_positions(tokens, config.d_model, ctx)
    tables = [L.embed(params, f"embed.{k}", tokens, xp) + where for k in range(config.n_hops + 1)]
    keys_mask = mask[:, None, :]
    u = tables[0]
    for k in range(1, config.n_hops + 1):
        scores = xp.matmul(u, xp.matrix_transpose(tables[k - 1]))
        scores = xp.where(keys_mask, scores, xp.full_like(scores, -1e30))
        u = u + xp.matmul(L.softmax(scores, xp), tables[k])
    if config.tied_output:
        return xp.matmul(u, xp.matrix_transpose(params[f"embed.{config.n_hops}"]))
    return L.dense(params, "head.out", u, xp)
