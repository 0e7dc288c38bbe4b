"""Building blocks shared by the models, written once against the array API standard.

Every function takes a flat parameter mapping (see :mod:`namcore.models.params`), a
prefix naming the layer inside it, and arrays of one library; ``xp`` is that
library's array-API namespace. Sequences are batch-major ``(B, L, ...)``; the scans
run time-major with the backend's ``scan`` (``jax.lax.scan`` on JAX, so ``jit`` does
not unroll the loop). The recurrent cells built on them are in :mod:`.cells`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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
    "dense",
    "embed",
    "gelu",
    "layer_norm",
    "namespace_of",
    "sigmoid",
    "softmax",
    "softplus",
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
    if tokens.shape[1] == 0:
        raise ValueError(
            f"{func}: tokens must hold at least one position per sequence, got shape "
            f"{tuple(tokens.shape)}"
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


def unstack(x: Array, axis: int, xp: Namespace) -> list[Any]:
    """``x`` split along ``axis`` into its slices (``unstack`` where the namespace has it).

    Under autograd, one ``unstack`` differentiates as one ``stack``; a selection per
    slice would differentiate as one zero-filled array of ``x``'s shape per slice.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore.models import layers
    >>> [a.tolist() for a in layers.unstack(np.arange(6).reshape(2, 3), 1, np)]
    [[0, 3], [1, 4], [2, 5]]
    """
    if hasattr(xp, "unstack"):
        return list(xp.unstack(x, axis=axis))
    indices = [(*(slice(None),) * axis, i, Ellipsis) for i in range(x.shape[axis])]
    return [x[index] for index in indices]


def keep_where(m: Array, new: Array, old: Array, xp: Namespace) -> Any:
    """``new`` where the flag ``m`` (B,) (or (D, B)) is True, else ``old`` (carry a pad)."""
    if m.ndim == 1:
        flag = xp.reshape(m, (-1,) + (1,) * (new.ndim - 1))
    else:
        flag = m[(Ellipsis,) + (None,) * (new.ndim - m.ndim)]
    return xp.where(flag, new, old)


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
