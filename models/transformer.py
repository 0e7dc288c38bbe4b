r"""Transformer encoders: the NAM Transformer (NOA attention) and the softmax baseline.

Both are pre-LayerNorm encoders (the paper's section 4)::

    x = embed(tokens) + positions          (a learned CLS token first, if asked)
    x = x + W_o attention(LN(x))           per block
    x = x + MLP(LN(x))
    y = LN(x) -> per-token logits, or a pooled classifier

The NAM Transformer's attention is :func:`namcore.attention` on per-head
projections (no bias, no softmax, no :math:`1/\sqrt d`); padded positions write
nothing into the memory (the authors' LRA code wrote them). With ``causal`` it is a
decoder-only model that can stream: pass the ``state`` returned by one call to the
next. The baseline uses scaled dot-product softmax attention with the same mask.
"""

from __future__ import annotations

import math
from typing import Any

import namcore
from namcore._typing import Array, Namespace

from . import layers as L
from . import spec as P
from .config import NAMTransformerConfig, TransformerBaselineConfig, _TransformerConfig

__all__ = [
    "block",
    "embed_inputs",
    "block_specs",
    "forward_nam",
    "forward_softmax",
    "output_head",
    "positions",
    "sequence_positions",
    "softmax_attention",
    "specs",
    "stream_state",
    "stream_step",
    "streams",
]


def specs(config: _TransformerConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of either Transformer."""
    d = config.d_model
    out = P.embedding("embed", config.vocab_size, d)
    if config.positions == "learned":
        out |= P.embedding("positions", config.max_length, d, scale=0.02)
    if config.cls:
        out["cls"] = P.Spec((d,), "zeros")
    for i in range(config.n_layers):
        out |= block_specs(f"blocks.{i}", d, config.ff_size)
    out |= P.layer_norm("norm", d)
    n_out = config.output_size if config.n_classes is None else config.n_classes
    out |= P.dense("head.out", d, n_out)
    return out


def block_specs(prefix: str, d: int, ff_size: int) -> dict[str, P.Spec]:
    """Parameters of one pre-LayerNorm block of width ``d`` (see :func:`block`)."""
    out = P.layer_norm(f"{prefix}.norm1", d)
    for name in ("query", "key", "value"):
        out |= P.dense(f"{prefix}.{name}", d, d, bias=False)
    out |= P.dense(f"{prefix}.out", d, d)
    out |= P.layer_norm(f"{prefix}.norm2", d)
    out |= P.dense(f"{prefix}.mlp1", d, ff_size)
    out |= P.dense(f"{prefix}.mlp2", ff_size, d)
    return out


def positions(index: Array, d: int, xp: Namespace, dtype: Any) -> Any:
    """Sinusoidal position embeddings ``(L, d)`` for integer positions ``index`` (L,)."""
    half = d // 2
    freq = xp.exp(
        xp.astype(xp.arange(half, device=L._v.device_of(index)), dtype)
        * (-2.0 * math.log(10000.0) / d)
    )
    angle = xp.astype(index, dtype)[:, None] * freq[None, :]
    both = xp.stack([xp.sin(angle), xp.cos(angle)], axis=-1)  # interleave sin, cos
    return xp.reshape(both, (-1, d))


def sequence_positions(tokens: Array, d: int, ctx: L.Context) -> Any:
    """Sinusoidal embeddings ``(1, L, d)`` of the positions of ``tokens`` (B, L).

    A symbolic length (an ndonnx graph input) is counted from the tokens instead.
    """
    xp = ctx.xp
    if tokens.shape[1] is None:
        index = xp.cumulative_sum(xp.ones_like(tokens[0, :])) - 1
    else:
        index = xp.arange(tokens.shape[1], device=ctx.device)
    return positions(index, d, xp, ctx.dtype)[None, ...]


def embed_inputs(
    params: L.Params,
    tokens: Array,
    mask: Array,
    ctx: L.Context,
    config: _TransformerConfig,
    offset: Any,
) -> tuple[Any, Any]:
    """Token embeddings (a CLS token first, if asked) plus position embeddings.

    The CLS token takes position 0, so a zero-initialised CLS still starts non-zero.
    """
    xp = ctx.xp
    x = L.embed(params, "embed", tokens, xp)
    if config.cls:
        cls = params["cls"] + L.batch_zeros(ctx, x, (1, params["cls"].shape[0]))
        x = xp.concat([cls, x], axis=1)
        mask = xp.concat([xp.ones_like(mask[:, :1]), mask], axis=1)
    length = x.shape[1]
    if length is None:  # a symbolic length (ndonnx graph input): count the positions
        index = xp.cumulative_sum(xp.ones_like(tokens[0, :]), include_initial=config.cls)
        index = (index if config.cls else index - 1) + offset
    else:
        index = xp.arange(length, device=ctx.device) + offset
    if config.positions == "learned":
        end = (length or 0) + (offset if isinstance(offset, int) else 0)
        if end > config.max_length:
            cls_note = " (including the CLS token)" if config.cls else ""
            raise ValueError(
                f"positions up to {end}{cls_note} exceed max_length="
                f"{config.max_length} of the learned position embeddings; "
                "use sinusoidal positions for longer sequences or streams"
            )
        x = x + L.embed(params, "positions", index, xp)[None, ...]
    else:
        x = x + positions(index, config.d_model, xp, ctx.dtype)[None, ...]
    return x, mask


def _heads(params: L.Params, name: str, x: Array, n_heads: int, xp: Namespace) -> Any:
    """Project (B, L, d) and split into heads: (B, H, L, d_head)."""
    y = L.dense(params, name, x, xp)
    length, d_head = y.shape[1], params[f"{name}.w"].shape[1] // n_heads
    if length is None:  # symbolic batch and length: split by slicing, not reshaping
        return xp.stack([y[..., h * d_head : (h + 1) * d_head] for h in range(n_heads)], axis=1)
    return xp.permute_dims(xp.reshape(y, (-1, length, n_heads, d_head)), (0, 2, 1, 3))


def _merge(y: Array, xp: Namespace, heads: int) -> Any:
    """(B, H, L, d_head) -> (B, L, H * d_head)."""
    length = y.shape[2]
    if length is None or y.shape[3] is None:
        return xp.concat([y[:, h, ...] for h in range(heads)], axis=-1)
    return xp.reshape(xp.permute_dims(y, (0, 2, 1, 3)), (-1, length, heads * y.shape[3]))


def softmax_attention(q: Array, k: Array, v: Array, mask: Array, xp: Namespace, d_head: int) -> Any:
    """Scaled dot-product attention of heads ``(B, H, L, d_head)``; ``mask (B, L)``: real keys.

    ``d_head`` is given, since a symbolic array (an ndonnx graph input) may not know it.
    """
    scores = xp.matmul(q, xp.matrix_transpose(k)) / math.sqrt(d_head)
    scores = xp.where(mask[:, None, None, :], scores, xp.full_like(scores, -1e30))
    return xp.matmul(L.softmax(scores, xp), v)


def _encode(
    params: L.Params, x: Array, mask: Array, ctx: L.Context, config: _TransformerConfig, attend: Any
) -> Any:
    """The blocks and the final LayerNorm; ``attend(i, q, k, v)`` is the attention."""
    xp = ctx.xp
    for i in range(config.n_layers):
        x = block(
            params, f"blocks.{i}", x, xp, config.n_heads, lambda q, k, v, i=i: attend(i, q, k, v)
        )
    return L.layer_norm(params, "norm", x, xp)


def block(params: L.Params, prefix: str, x: Array, xp: Namespace, n_heads: int, attend: Any) -> Any:
    """One pre-LayerNorm block: ``x + W_o attend(q, k, v)``, then ``x + MLP(LN(x))``.

    ``attend(q, k, v)`` takes and returns heads ``(B, H, L, d_head)``.
    """
    h = L.layer_norm(params, f"{prefix}.norm1", x, xp)
    q, k, v = (
        _heads(params, f"{prefix}.{name}", h, n_heads, xp) for name in ("query", "key", "value")
    )
    x = x + L.dense(params, f"{prefix}.out", _merge(attend(q, k, v), xp, n_heads), xp)
    h = L.layer_norm(params, f"{prefix}.norm2", x, xp)
    return x + L.dense(
        params, f"{prefix}.mlp2", L.gelu(L.dense(params, f"{prefix}.mlp1", h, xp), xp), xp
    )


def output_head(
    params: L.Params, x: Array, mask: Array, ctx: L.Context, config: _TransformerConfig
) -> Any:
    """Per-token logits of the final states ``x``, or a classifier's (CLS or masked mean)."""
    xp = ctx.xp
    if config.n_classes is None:
        return L.dense(params, "head.out", x[:, 1:, :] if config.cls else x, xp)
    if config.cls:
        pooled = x[:, 0, :]
    else:
        weights = ctx.floats(mask)[..., None]
        pooled = xp.sum(x * weights, axis=1) / xp.clip(xp.sum(weights, axis=1), min=1.0)
    return L.dense(params, "head.out", pooled, xp)


def forward_nam(
    params: L.Params,
    tokens: Array,
    mask: Array = None,
    *,
    config: NAMTransformerConfig,
    state: Array = None,
    return_state: bool = False,
) -> Any:
    """NAM Transformer logits: ``(B, L, output_size)``, or ``(B, n_classes)`` with a classifier.

    With ``config.causal``, ``state`` (from a previous call with ``return_state=True``)
    continues a stream: ``(position, memories)`` where ``position`` counts the tokens
    seen and ``memories`` holds one ``(B, H, d_head, d_head)`` memory per block.
    """
    ctx, mask = L.context(params, tokens, mask, "NAMTransformer")
    if (state is not None or return_state) and not config.causal:
        raise ValueError(
            "NAMTransformer: state and return_state need a causal model "
            "(NAMTransformerConfig(causal=True))"
        )
    offset, memories = (0, (None,) * config.n_layers) if state is None else state
    x, mask = embed_inputs(params, tokens, mask, ctx, config, offset)
    heads_mask = mask[:, None, :]  # broadcast over the heads by namcore.attention
    new_memories = []

    def attend(i, q, k, v):
        if not config.causal:
            return namcore.attention(q, k, v, mask=heads_mask)
        y, memory = namcore.attention(
            q, k, v, causal=True, mask=heads_mask, state=memories[i], return_state=True
        )
        new_memories.append(memory)
        return y

    logits = output_head(params, _encode(params, x, mask, ctx, config, attend), mask, ctx, config)
    if return_state:
        return logits, (offset + tokens.shape[1], tuple(new_memories))
    return logits


def forward_softmax(
    params: L.Params, tokens: Array, mask: Array = None, *, config: TransformerBaselineConfig
) -> Any:
    """Softmax Transformer baseline logits, shaped as :func:`forward_nam`'s."""
    ctx, mask = L.context(params, tokens, mask, "TransformerBaseline")
    x, mask = embed_inputs(params, tokens, mask, ctx, config, 0)
    y = _encode(
        params,
        x,
        mask,
        ctx,
        config,
        lambda i, q, k, v: softmax_attention(q, k, v, mask, ctx.xp, config.d_head),
    )
    return output_head(params, y, mask, ctx, config)


def stream_state(config: NAMTransformerConfig) -> dict[str, tuple[tuple[int | str, ...], str]]:
    """The streaming state of a causal NAM Transformer: tokens seen, one memory per block."""
    d_h = config.d_head
    return {
        "position": ((), "int64"),
        "memory": ((config.n_layers, "batch", config.n_heads, d_h, d_h), "float"),
    }


def stream_step(
    params: L.Params, token: Array, state: dict[str, Any], *, config: NAMTransformerConfig
) -> tuple[Any, dict[str, Any]]:
    """One streaming step of a causal NAM Transformer: logits ``(B, output_size)``, new state."""
    memory = state["memory"]
    layers = tuple(memory[i, ...] for i in range(config.n_layers))
    logits, (position, memories) = forward_nam(
        params,
        token[:, None],
        config=config,
        state=(state["position"], layers),
        return_state=True,
    )
    xp = L.namespace_of(memory)
    return logits[:, 0, :], {"position": position, "memory": xp.stack(list(memories), axis=0)}


def streams(config: NAMTransformerConfig) -> bool:
    """Whether this NAM Transformer can stream (``causal=True``)."""
    return bool(config.causal)
