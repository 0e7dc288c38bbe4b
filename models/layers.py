"""Building blocks shared by the models, written once against the array API standard.

Every function takes a flat parameter mapping (see :mod:`namcore.models.params`), a
prefix naming the layer inside it, and arrays of one library; ``xp`` is that
library's array-API namespace. Sequences are batch-major ``(B, L, ...)``; the
recurrent helpers scan time-major with the backend's ``scan`` (``jax.lax.scan`` on
JAX, so ``jit`` does not unroll the loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from namcore import _validation as _v
from namcore import backends as _backends
from namcore._agnostic import memory as _memory
from namcore._agnostic.memory import EPS as _EPS
from namcore._typing import Array, Namespace

__all__ = [
    "Context",
    "batch_zeros",
    "context",
    "controller_scan",
    "dense",
    "embed",
    "gelu",
    "layer_norm",
    "lstm_cell",
    "namespace_of",
    "recurrent",
    "sigmoid",
    "softmax",
    "softplus",
    "split_directions",
    "stack_directions",
    "stacked_cells",
    "time_major",
]

Params = Mapping[str, Any]


class Context:
    """The namespace, backend, dtype and device of a model's parameters."""

    __slots__ = ("backend", "device", "dtype", "xp")

    def __init__(self, xp: Namespace, backend: Any, dtype: Any, device: Any) -> None:
        self.xp, self.backend, self.dtype, self.device = xp, backend, dtype, device

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.xp.zeros(shape, dtype=self.dtype, device=self.device)

    def floats(self, x: Array) -> Any:
        """A boolean/integer array as 0/1 (or its values) in the parameters' dtype."""
        return self.xp.astype(x, self.dtype)

    # The primitives through the backend layer: the models validate their inputs once
    # per call, so the per-step checks of the public functions are skipped.
    def unit(self, x: Array) -> Any:
        return self.backend.unit(x, -1, _EPS, self.xp)

    def write(
        self, M: Array, k: Array, v: Array, p_write: Any, p_erase: Any, *, normalize: bool = True
    ) -> Any:
        return self.backend.write(M, k, v, p_write, p_erase, normalize, _EPS, self.xp)

    def read(self, M: Array, q: Array, p_read: Any = 1.0, *, normalize: bool = True) -> Any:
        return self.backend.read(M, q, p_read, normalize, _EPS, self.xp)

    def write_rank1(
        self, M: Array, k: Array, v: Array, p_write: Any, p_erase: Any, *, normalize: bool = True
    ) -> tuple[Any, tuple[Any, Any]]:
        """:meth:`write`, also returning its ``(u, k̂)`` (``M' = M + u k̂ᵀ``).

        The pair is what a step of :func:`run_memory_scan` reports for each memory.
        """
        kh = self.unit(k) if normalize else k
        u = _memory.update_direction(M, kh, v, p_write, p_erase, xp=self.xp)
        return _memory.add_rank1(M, u, kh), (u, kh)


def context(params: Params, tokens: Array, mask: Array | None, func: str) -> tuple[Context, Any]:
    """Check ``tokens``/``mask`` against the parameters; return the context and the mask.

    ``tokens`` must be an integer array ``(B, L)`` of the parameters' library;
    ``mask`` (default: all True) a boolean array of the same shape.
    """
    first = next(iter(params.values()))
    arrays = {"params": first, "tokens": tokens}
    if mask is not None:
        arrays["mask"] = mask
    xp = _v.namespace(func, **arrays)
    if tokens.ndim != 2 or not xp.isdtype(tokens.dtype, "integral"):
        raise ValueError(
            f"{func}: tokens must be an integer array of shape (batch, length), "
            f"got dtype {tokens.dtype} and shape {tuple(tokens.shape)}"
        )
    if mask is None:
        # (ndonnx's ones_like forgets the known sizes of a symbolic array; == keeps them)
        mask = xp.ones_like(tokens, dtype=xp.bool) if None not in tokens.shape else tokens == tokens
    elif tuple(mask.shape) != tuple(tokens.shape) or not xp.isdtype(mask.dtype, "bool"):
        raise ValueError(
            f"{func}: mask must be a boolean array shaped like tokens "
            f"{tuple(tokens.shape)}, got dtype {mask.dtype} and shape "
            f"{tuple(mask.shape)}"
        )
    ctx = Context(xp, _backends.for_namespace(xp), first.dtype, _v.device_of(first))
    return ctx, mask


def namespace_of(x: Array) -> Any:
    """The array-API namespace of the array ``x`` (``TypeError`` for anything else)."""
    return _v.namespace("namcore.models", x=x)


def dense(params: Params, prefix: str, x: Array, xp: Namespace) -> Any:
    """``x @ w + b`` (the bias is optional)."""
    y = linear(x, params[f"{prefix}.w"], xp)
    bias = params.get(f"{prefix}.b")
    return y if bias is None else y + bias


def embed(params: Params, name: str, tokens: Array, xp: Namespace) -> Any:
    """Rows of the table ``params[name]`` for integer ``tokens`` of any shape.

    Concrete ids must lie in ``[0, vocab_size)`` (``ValueError`` otherwise). Ids that
    cannot be read without a cost or a trace (under ``jax.jit`` or ``torch.compile``,
    on an accelerator, in a Dask graph) are not checked: there an id at or past
    ``vocab_size`` gives a row of NaN on JAX (``take``'s fill mode), a negative id
    counts from the end as NumPy indexing does, and other libraries do what their
    ``take`` does.
    """
    table = params[name]
    values = _backends.for_namespace(xp).concrete_values(tokens)
    if values is not None and values.size:
        low, high = values.min(), values.max()
        if low < 0 or high >= table.shape[0]:
            raise ValueError(
                f"tokens must be ids in [0, vocab_size) = [0, {table.shape[0]}) (the rows "
                f"of {name!r}), got values in [{low}, {high}]"
            )
    shape = tuple(tokens.shape)
    if shape.count(None) > 1:  # symbolic sizes (ndonnx graph inputs): one-hot rows
        vocab = xp.arange(table.shape[0], dtype=tokens.dtype)
        return xp.matmul(xp.astype(tokens[..., None] == vocab, table.dtype), table)
    flat = xp.take(table, xp.reshape(tokens, (-1,)), axis=0)
    return xp.reshape(flat, (*(-1 if s is None else s for s in shape), table.shape[-1]))


def layer_norm(params: Params, prefix: str, x: Array, xp: Namespace, eps: float = 1e-5) -> Any:
    """LayerNorm over the last axis with learned ``scale`` and ``bias``."""
    mean = xp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = xp.mean(centred * centred, axis=-1, keepdims=True)
    return centred / xp.sqrt(var + eps) * params[f"{prefix}.scale"] + params[f"{prefix}.bias"]


def linear(x: Array, w: Array, xp: Namespace) -> Any:
    """``x @ w`` of inputs (..., n) and a weight (n, m): :meth:`namcore.backends.Backend.linear`."""
    return _backends.for_namespace(xp).linear(x, w, xp)


def sigmoid(x: Array, xp: Namespace) -> Any:
    """Logistic function (the backend's; see :meth:`namcore.backends.Backend.sigmoid`)."""
    return _backends.for_namespace(xp).sigmoid(x, xp)


def softplus(x: Array, xp: Namespace) -> Any:
    """``log(1 + exp(x))``, without overflow (``logaddexp(x, 0)``)."""
    return xp.logaddexp(x, xp.zeros_like(x))


def relu(x: Array, xp: Namespace) -> Any:
    """``max(x, 0)`` as ``maximum``, on every backend alike.

    At exactly 0, ``maximum``'s gradient is split in half on PyTorch and JAX alike,
    while PyTorch's fused ``relu`` passes none; HAM's all-zero leaves sit on that tie,
    so a ``relu`` fast path would make the backends' gradients disagree.
    """
    return xp.maximum(x, xp.zeros_like(x))


def gelu(x: Array, xp: Namespace) -> Any:
    """GELU, tanh approximation (``torch.nn.functional.gelu(approximate="tanh")``)."""
    return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def softmax(x: Array, xp: Namespace, axis: int = -1) -> Any:
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=axis, keepdims=True)


def batch_zeros(ctx: Context, like: Array, shape: tuple[int, ...]) -> Any:
    """Zeros ``(B, *shape)`` with the batch size ``B`` of ``like`` (B, ...).

    When ``B`` is symbolic (an ndonnx graph input with a dynamic batch), the zeros are
    broadcast from ``like`` instead of being created with a concrete size.
    """
    batch = like.shape[0]
    if batch is not None:
        return ctx.zeros((batch, *shape))
    xp = ctx.xp
    column = xp.zeros_like(xp.astype(like[(slice(None),) + (0,) * (like.ndim - 1)], ctx.dtype))
    return xp.reshape(column, (-1, *(1,) * len(shape))) + ctx.zeros(shape)


def time_major(x: Array, xp: Namespace) -> Any:
    """Swap the first two axes: ``(B, L, ...)`` ↔ ``(L, B, ...)``."""
    axes = (1, 0, *range(2, x.ndim))
    return xp.permute_dims(x, axes)


def keep_where(m: Array, new: Array, old: Array, xp: Namespace) -> Any:
    """``new`` where the flag ``m`` (B,) (or (D, B)) is True, else ``old`` (carry a pad)."""
    if m.ndim == 1:
        flag = xp.reshape(m, (-1,) + (1,) * (new.ndim - 1))
    else:
        flag = m[(Ellipsis,) + (None,) * (new.ndim - m.ndim)]
    return xp.where(flag, new, old)


def stack_directions(fw: Array, bw: Array, xp: Namespace) -> Any:
    """Time-major ``(L, ...)`` inputs of a forward and a backward pass as ``(L, 2, ...)``.

    The backward pass's inputs are reversed in time, so one scan runs both directions
    (:func:`split_directions` undoes it on the outputs).
    """
    return xp.stack([fw, xp.flip(bw, axis=0)], axis=1)


def split_directions(ys: Array, xp: Namespace) -> tuple[Any, Any]:
    """``(L, 2, ...)`` outputs of a two-direction scan as forward and backward ``(L, ...)``."""
    return ys[:, 0, ...], xp.flip(ys[:, 1, ...], axis=0)


def run_scan(
    ctx: Context, step: Callable, carry: Any, xs: tuple, *, reverse: bool = False
) -> tuple[Any, Any]:
    """Scan ``step`` over axis 0 of the time-major arrays ``xs`` (backwards if ``reverse``)."""
    xp = ctx.xp
    if reverse:
        xs = tuple(xp.flip(x, axis=0) for x in xs)
    carry, ys = ctx.backend.scan(step, carry, xs)
    if reverse:
        ys = _map_tree(lambda y: xp.flip(y, axis=0), ys)
    return carry, ys


def run_memory_scan(
    ctx: Context,
    step: Callable,
    params: tuple[Any, ...],
    memory: tuple[Any, ...],
    carry: tuple[Any, ...],
    xs: tuple[Any, ...],
    *,
    reverse: bool = False,
) -> tuple[Any, Any, Any]:
    """:func:`run_scan` for a step that writes memories: the backend's ``memory_scan``.

    ``step(params, memory, carry, x) -> (memory, carry, y, writes)`` (see
    :meth:`namcore.backends.Backend.memory_scan`); returns ``(memory, carry, ys)``. On
    JAX and PyTorch the gradient rebuilds each step's memory from its rank-1 write
    instead of storing it, so training memory grows as O(L·d), not O(L·d²).
    """
    xp = ctx.xp
    if reverse:
        xs = tuple(xp.flip(x, axis=0) for x in xs)
    memory, carry, ys = ctx.backend.memory_scan(step, params, memory, carry, xs)
    if reverse:
        ys = tuple(xp.flip(y, axis=0) for y in ys)
    return memory, carry, ys


def _map_tree(f: Callable, tree: Array) -> Any:
    if tree is None:
        return None
    if isinstance(tree, tuple):
        return tuple(_map_tree(f, t) for t in tree)
    return f(tree)


def input_projection(params: Params, prefix: str, x: Array, xp: Namespace) -> Any:
    """``x @ w_x + b`` of a recurrent cell for every step at once, time-major (L, B, n)."""
    return time_major(linear(x, params[f"{prefix}.w_x"], xp) + params[f"{prefix}.b"], xp)


def lstm_cell(gates: Array, c: Array, xp: Namespace) -> tuple[Any, Any]:
    """New ``(h, c)`` of an LSTM from its pre-activations ``gates`` (..., 4H), order i, f, g, o."""
    hidden = c.shape[-1]
    i = sigmoid(gates[..., :hidden], xp)
    f = sigmoid(gates[..., hidden : 2 * hidden], xp)
    cand = xp.tanh(gates[..., 2 * hidden : 3 * hidden])
    o = sigmoid(gates[..., 3 * hidden :], xp)
    c_new = f * c + i * cand
    return o * xp.tanh(c_new), c_new


def recurrent(
    params: Params,
    prefix: str,
    kind: str,
    x: Array,
    mask: Array,
    ctx: Context,
    *,
    reverse: bool = False,
    initial: tuple[Any, ...] | None = None,
) -> tuple[Any, tuple[Any, ...]]:
    """Run a GRU or LSTM cell over ``x`` (B, L, n_in); return outputs (B, L, H) and final state.

    Padded positions (``mask`` False) leave the state unchanged and output it again,
    so a backward pass over right-padded sequences starts at the last real token.
    The state is ``(h,)`` for a GRU and ``(h, c)`` for an LSTM.
    """
    xp = ctx.xp
    w_h = params[f"{prefix}.w_h"]
    gates_x = input_projection(params, prefix, x, xp)
    if initial is None:
        initial = tuple(
            batch_zeros(ctx, x, (w_h.shape[0],)) for _ in range(2 if kind == "lstm" else 1)
        )
    xs = (gates_x, time_major(mask, xp))
    if kind == "gru":
        final, ys = _gru_scan(ctx, w_h, params[f"{prefix}.b_hn"], tuple(initial), xs, reverse)
    else:
        final, ys = run_scan(ctx, _lstm_step(w_h, xp), tuple(initial), xs, reverse=reverse)
    return time_major(ys, xp), final


def _gru_scan(
    ctx: Context,
    w_h: Array,
    b_hn: Array,
    initial: tuple[Any, ...],
    xs: tuple[Any, Any],
    reverse: bool = False,
) -> tuple[Any, Any]:
    """A GRU over time-major ``xs``: its step has a hand-derived backward (``gru_step``)."""
    from . import gru_step

    step = gru_step.make(ctx, w_h.shape[-2], tuple(w_h.shape[:-2]))
    _, final, (ys,) = run_memory_scan(ctx, step, (w_h, b_hn), (), initial, xs, reverse=reverse)
    return tuple(final), ys


def _lstm_step(w_h: Array, xp: Namespace) -> Callable:
    """The scan step of an LSTM cell; leading axes (directions, batch) broadcast."""

    def lstm_step(state, inputs):
        h, c = state
        gx, m_t = inputs
        h_new, c_new = lstm_cell(gx + xp.matmul(h, w_h), c, xp)
        h_new = keep_where(m_t, h_new, h, xp)
        return (h_new, keep_where(m_t, c_new, c, xp)), h_new

    return lstm_step


def stacked_cells(
    params: Params,
    cells: Sequence[tuple[str, bool]],
    kind: str,
    x: Array,
    mask: Array,
    ctx: Context,
) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Several GRU or LSTM cells over the same ``x`` (B, L, n_in), in one scan.

    ``cells`` are ``(prefix, reverse)`` pairs; a reversed cell reads the sequence
    from its end. The cells are stacked on a leading axis of the state and of the
    inputs (time-reversed for a reversed cell), so the scan has ``L`` steps for all
    of them, and their input projections are one product. Returns each cell's
    outputs (B, L, H), in the order of the sequence, and its final state.
    """
    xp = ctx.xp
    count = len(cells)
    w_h = xp.stack([params[f"{prefix}.w_h"] for prefix, _ in cells])
    b_hn = None
    if kind == "gru":
        b_hn = xp.stack([params[f"{prefix}.b_hn"] for prefix, _ in cells])[:, None, :]
    w_x = xp.concat([params[f"{prefix}.w_x"] for prefix, _ in cells], axis=-1)
    bias = xp.concat([params[f"{prefix}.b"] for prefix, _ in cells], axis=-1)
    width = params[f"{cells[0][0]}.b"].shape[-1]
    length = mask.shape[1]
    projected = xp.reshape(linear(x, w_x, xp) + bias, (-1, length, count, width))
    projected = xp.permute_dims(projected, (1, 2, 0, 3))  # (L, cells, B, gates)
    m = time_major(mask, xp)

    def ordered(a: Array, reverse: bool) -> Any:
        return xp.flip(a, axis=0) if reverse else a

    gates_x = xp.stack(
        [ordered(projected[:, i, ...], reverse) for i, (_, reverse) in enumerate(cells)], axis=1
    )
    xs = (gates_x, xp.stack([ordered(m, reverse) for _, reverse in cells], axis=1))
    zeros = batch_zeros(ctx, x, (w_h.shape[-2],))
    initial = tuple(xp.stack([zeros] * count) for _ in range(2 if kind == "lstm" else 1))
    if kind == "gru":
        final, ys = _gru_scan(ctx, w_h, b_hn, initial, xs)
    else:
        final, ys = run_scan(ctx, _lstm_step(w_h, xp), initial, xs)
    outputs = [
        time_major(ordered(ys[:, i, ...], reverse), xp) for i, (_, reverse) in enumerate(cells)
    ]
    return outputs, [tuple(s[i, ...] for s in final) for i in range(count)]


def bidirectional(
    params: Params, prefix: str, kind: str, x: Array, mask: Array, ctx: Context
) -> tuple[Any, tuple[Any, ...]]:
    """Forward (``prefix.fw``) and backward (``prefix.bw``) cells, outputs concatenated.

    Both directions run in one scan (:func:`stacked_cells`): half the loop steps of two.
    """
    xp = ctx.xp
    (y_f, y_b), (s_f, s_b) = stacked_cells(
        params, [(f"{prefix}.fw", False), (f"{prefix}.bw", True)], kind, x, mask, ctx
    )
    state = tuple(xp.concat([a, b], axis=-1) for a, b in zip(s_f, s_b, strict=True))
    return xp.concat([y_f, y_b], axis=-1), state


def controller_scan(
    params: Params,
    x: Array,
    mask: Array,
    ctx: Context,
    memory: tuple[Any, ...],
    reads: Array,
    access: Callable[[Any, tuple[Any, ...]], tuple[tuple[Any, ...], Any]],
) -> Any:
    """Run an LSTM controller that reads a memory every step; return the output logits.

    The controller (``controller.w_x``, ``.w_h``, ``.b``) sees ``[x_t : reads_{t-1}]``;
    ``access(h_t, memory) -> (memory, reads_t)`` is the memory's step, and the output
    layer ``head.out`` sees ``[h_t : reads_t]``. ``memory`` is the initial memory state
    (a tuple of ``(B, ...)`` arrays) and ``reads`` the initial reads ``(B, n_reads)``.
    At a padded position every state is kept. This is the loop of the NTM and the DNC.
    """
    xp = ctx.xp
    w_x, w_h = params["controller.w_x"], params["controller.w_h"]
    d = x.shape[-1]
    gates_x = time_major(linear(x, w_x[:d, :], xp) + params["controller.b"], xp)
    w_read = w_x[d:, :]
    hidden = w_h.shape[0]
    carry = (batch_zeros(ctx, x, (hidden,)), batch_zeros(ctx, x, (hidden,)), memory, reads)

    def step(state, inputs):
        h, c, memory, reads = state
        gx, m_t = inputs
        h_new, c_new = lstm_cell(gx + xp.matmul(reads, w_read) + xp.matmul(h, w_h), c, xp)
        memory_new, reads_new = access(h_new, memory)
        kept = (
            keep_where(m_t, h_new, h, xp),
            keep_where(m_t, c_new, c, xp),
            tuple(keep_where(m_t, a, b, xp) for a, b in zip(memory_new, memory, strict=True)),
            keep_where(m_t, reads_new, reads, xp),
        )
        return kept, xp.concat([kept[0], kept[3]], axis=-1)

    _, ys = run_scan(ctx, step, carry, (gates_x, time_major(mask, xp)))
    return dense(params, "head.out", time_major(ys, xp), xp)
