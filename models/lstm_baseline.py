r"""LSTM baseline of the paper's Table 2: bidirectional encoder, decoder with attention.

::

    e = [LSTM_fw(x) : LSTM_bw(x)]                 encoder, d_model/2 units per direction
    s = LSTM_dec(e), starting from the encoder's final (h, c) of both directions
    a = softmax_j(s_t W_a e_jᵀ) over real positions j     (Luong's "general" score)
    y = tanh([s_t : Σ_j a_tj e_j] W_c + b_c) -> logits

The decoder runs over the encoder's outputs (input and output are aligned), so the
attention is computed for every step at once after the decoder's scan.
"""

from __future__ import annotations

from typing import Any

from namcore._typing import Array

from . import cells
from . import layers as L
from . import spec as P
from .config import LSTMBaselineConfig

__all__ = ["forward", "specs"]


def specs(config: LSTMBaselineConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of the LSTM baseline."""
    d = config.d_model
    out = P.embedding("embed", config.vocab_size, d)
    out |= P.recurrent("encoder.fw", "lstm", d, d // 2)
    out |= P.recurrent("encoder.bw", "lstm", d, d // 2)
    out |= P.recurrent("decoder", "lstm", d, d)
    if config.attention:
        out |= P.dense("attention.score", d, d, bias=False)
        out |= P.dense("attention.combine", 2 * d, d)
    out |= P.dense("head.out", d, config.output_size)
    return out


def forward(
    params: L.Params, tokens: Array, mask: Array = None, *, config: LSTMBaselineConfig
) -> Any:
    """Logits ``(B, L, output_size)`` of the LSTM baseline for integer ``tokens`` (B, L)."""
    ctx, mask = L.context(params, tokens, mask, "LSTMBaseline")
    xp = ctx.xp
    x = L.embed(params, "embed", tokens, xp)
    encoded, state = cells.bidirectional(params, "encoder", "lstm", x, mask, ctx)
    decoded, _ = cells.recurrent(params, "decoder", "lstm", encoded, mask, ctx, initial=state)
    if config.attention:
        scores = xp.matmul(
            L.dense(params, "attention.score", decoded, xp), xp.matrix_transpose(encoded)
        )
        scores = xp.where(mask[:, None, :], scores, xp.full_like(scores, -1e30))
        context = xp.matmul(L.softmax(scores, xp), encoded)
        decoded = xp.tanh(
            L.dense(params, "attention.combine", xp.concat([decoded, context], axis=-1), xp)
        )
    return L.dense(params, "head.out", decoded, xp)
