r"""The Linear Transformer (Katharopoulos et al. 2020), the NAM paper's Table 1 baseline.

A pre-LayerNorm encoder built from the NAM Transformer's blocks
(:func:`~namcore.models.transformer.block`) whose attention replaces the softmax by
the feature map :math:`\phi(x) = \mathrm{elu}(x) + 1` (positive everywhere) and
divides by its normaliser:

.. math::

    y_i = \frac{\phi(q_i)^\top \sum_j \phi(k_j)\, v_j^\top}
               {\phi(q_i)^\top \sum_j \phi(k_j) + \varepsilon}

over the real (unpadded) keys ``j``, or over ``j <= i`` when ``causal`` (prefix
sums). Computed right to left, a head costs :math:`O(L\, d_k d_v)` rather than
:math:`O(L^2 d)`. NAM's attention (:func:`namcore.attention`) differs in the map
(unit vectors instead of elu + 1) and has no normaliser.

Examples
--------
>>> import numpy as np
>>> from namcore.models import LinearTransformerConfig, forward, init_numpy
>>> cfg = LinearTransformerConfig(vocab_size=12, d_model=16, n_heads=2)
>>> forward(init_numpy(cfg, seed=0), np.ones((2, 7), dtype=np.int64), config=cfg).shape
(2, 7, 12)
"""

from __future__ import annotations

from typing import Any

from namcore._typing import Array, Namespace

from . import layers as L
from . import transformer
from .linear_config import LinearTransformerConfig

# The embedding and the head are the NAM Transformer's own (CLS token, positions,
# classifier); they are private there, shared here to keep one definition of each.
from .transformer import embed_inputs, output_head

__all__ = ["elu_plus_one", "forward", "linear_attention", "specs"]


def specs(config: LinearTransformerConfig) -> dict[str, Any]:
    """Parameter names, shapes and initialisers: exactly those of the NAM Transformer."""
    return transformer.specs(config)


def elu_plus_one(x: Array, xp: Namespace) -> Any:
    r""":math:`\mathrm{elu}(x) + 1`: ``x + 1`` where ``x > 0``, ``exp(x)`` elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> elu_plus_one(np.asarray([-1.0, 0.0, 2.0]), np).round(4).tolist()
    [0.3679, 1.0, 3.0]
    """
    positive = x > 0
    return xp.where(positive, x + 1.0, xp.exp(xp.where(positive, xp.zeros_like(x), x)))


def linear_attention(
    q: Array,
    k: Array,
    v: Array,
    mask: Array,
    xp: Namespace,
    *,
    causal: bool = False,
    eps: float = 1e-6,
) -> Any:
    """Linear attention of heads ``(B, H, L, d)``; ``mask (B, L)`` marks the real keys.

    Examples
    --------
    >>> import numpy as np
    >>> q = k = np.zeros((1, 1, 3, 2))
    >>> v = np.arange(6.0).reshape(1, 1, 3, 2)
    >>> mask = np.asarray([[True, True, False]])
    >>> linear_attention(q, k, v, mask, np)[0, 0].round(3).tolist()  # the mean of 2 values
    [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
    """
    keep = xp.astype(mask, k.dtype)[:, None, :, None]
    fq, fk = elu_plus_one(q, xp), elu_plus_one(k, xp) * keep
    if causal:
        # prefix sums of the outer products phi(k_j) v_j^T and of phi(k_j): (B, H, L, d, dv)
        memory = xp.cumulative_sum(fk[..., :, None] * v[..., None, :], axis=2)
        norm = xp.cumulative_sum(fk, axis=2)
        numerator = xp.sum(fq[..., :, None] * memory, axis=-2)
        denominator = xp.sum(fq * norm, axis=-1)[..., None]
    else:
        memory = xp.matmul(xp.matrix_transpose(fk), v)  # (B, H, d, dv)
        numerator = xp.matmul(fq, memory)
        denominator = xp.matmul(fq, xp.sum(fk, axis=2)[..., None])  # (B, H, L, 1)
    return numerator / (denominator + eps)


def forward(
    params: L.Params, tokens: Array, mask: Array = None, *, config: LinearTransformerConfig
) -> Any:
    """Linear Transformer logits: ``(B, L, output_size)``, or ``(B, n_classes)``."""
    ctx, mask = L.context(params, tokens, mask, "LinearTransformer")
    xp = ctx.xp
    x, mask = embed_inputs(params, tokens, mask, ctx, config, 0)

    def attend(q: Array, k: Array, v: Array) -> Any:
        return linear_attention(q, k, v, mask, xp, causal=config.causal, eps=config.eps)

    for i in range(config.n_layers):
        x = transformer.block(params, f"blocks.{i}", x, xp, config.n_heads, attend)
    return output_head(params, L.layer_norm(params, "norm", x, xp), mask, ctx, config)
