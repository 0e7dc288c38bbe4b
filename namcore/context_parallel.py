r"""Context-parallel causal attention: one sequence sharded over devices or processes.

Causal :func:`namcore.attention` is a scan of the memory over the sequence, and every
token's effect on the memory is affine: :math:`M_t = \gamma_t M_{t-1}(I - p^e_t
\hat k_t \hat k_t^\top) + p^w_t v_t \hat k_t^\top`. So a shard of consecutive tokens
maps the memory it receives to the memory it passes on by

.. math:: M_{out} = M_{in} A + C,

where :math:`C` is the memory the shard alone writes (from zero) and :math:`A`
(``d_k x d_k``) is the product of its transitions, the identity without erase and
decay, :math:`(\prod \gamma) I` with decay alone. Each shard computes its ``(A, C)``,
gathers everyone's, folds those of the shards before it (an exclusive prefix) into
its incoming memory, then runs ordinary causal attention from that state. The result
equals the unsharded attention up to rounding, for plain, ``decay`` and erase
(``p_erase``) alike. A shard of ``n`` shards costs two or three local attention passes
and ``n`` products of ``d x d`` matrices; only ``A`` and ``C`` travel.

:func:`attention` is the shard's computation, written once against the array API and
given a ``gather`` function; :func:`jax_attention` runs it under ``jax.shard_map``
over a mesh axis and :func:`torch_attention` in each process of a
``torch.distributed`` group (autograd flows through both).

Examples
--------
Four shards simulated in one process: each gathers the transitions of all.

>>> import numpy as np, namcore
>>> from namcore import context_parallel as cp
>>> rng = np.random.default_rng(0)
>>> q, k, v = (rng.standard_normal((2, 12, 4)) for _ in range(3))
>>> decay = rng.uniform(0.8, 1.0, (2, 12))
>>> parts = [slice(3 * i, 3 * i + 3) for i in range(4)]
>>> moves = [cp.transition(q[:, s], k[:, s], v[:, s], decay=decay[:, s]) for s in parts]
>>> A = np.stack([a for a, _ in moves]); C = np.stack([c for _, c in moves])
>>> y = np.concatenate([
...     namcore.attention(q[:, s], k[:, s], v[:, s], causal=True, decay=decay[:, s],
...                       state=cp.incoming_state(A, C, i))
...     for i, s in enumerate(parts)], axis=1)
>>> bool(np.allclose(y, namcore.attention(q, k, v, causal=True, decay=decay)))
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from namcore import _validation as _v
from namcore._typing import Array
from namcore.attention import attention as _attention

__all__ = [
    "attention",
    "incoming_state",
    "jax_attention",
    "torch_attention",
    "torch_gather",
    "transition",
]

Gather = Callable[[Array], Array]


def _needs_transition(p_erase: Any, decay: Any) -> bool:
    constant_decay = isinstance(decay, int | float) and not isinstance(decay, bool) and decay == 1
    return p_erase is not None or (decay is not None and not constant_decay)


def transition(
    q: Array,
    k: Array,
    v: Array,
    *,
    p_write: Array | float | None = None,
    p_erase: Array | float | None = None,
    decay: Array | float | None = None,
    mask: Array | None = None,
) -> tuple[Array | None, Array]:
    """The shard's affine map of the memory, ``M -> M A + C``: returns ``(A, C)``.

    Arguments are those of :func:`namcore.attention` for the shard's tokens. ``C``
    ``(..., d_v, d_k)`` is the memory the shard writes from zero; ``A``
    ``(..., d_k, d_k)`` is ``None`` (the identity) without erase and decay.
    """
    options: dict[str, Any] = {"p_write": p_write, "p_erase": p_erase, "decay": decay, "mask": mask}
    _, written = _attention(q, k, v, causal=True, return_state=True, **options)
    if not _needs_transition(p_erase, decay):
        return None, written
    xp = _v.namespace("namcore.context_parallel.transition", q=q, k=k, v=v)
    d_k = k.shape[-1]
    eye = xp.eye(d_k, dtype=written.dtype, device=_v.device_of(written))
    # With zero values a token only transforms what it receives: M -> gamma M (I - p_e k k^T).
    _, product = _attention(
        q, k, xp.zeros_like(k), causal=True, state=eye, return_state=True, **options
    )
    return product, written


def incoming_state(
    products: Array | None, written: Array, index: Any, state: Array | None = None
) -> Array:
    """The memory shard ``index`` receives: the maps of the shards before it, folded.

    ``products`` ``(n, ..., d_k, d_k)`` (or ``None``, all identities) and ``written``
    ``(n, ..., d_v, d_k)`` stack every shard's :func:`transition`; ``state`` is the
    memory before the first shard (default zeros). ``index`` may be a traced integer
    (``jax.lax.axis_index``); ``index = n`` gives the memory after the last shard.
    """
    xp = _v.namespace("namcore.context_parallel.incoming_state", written=written)
    memory = (
        xp.zeros_like(written[0, ...]) if state is None else state + xp.zeros_like(written[0, ...])
    )
    for j in range(written.shape[0]):
        moved = memory if products is None else xp.matmul(memory, products[j, ...])
        moved = moved + written[j, ...]
        if isinstance(index, int):
            memory = moved if j < index else memory
        else:
            memory = xp.where(j < index, moved, memory)
    return memory


def attention(
    q: Array,
    k: Array,
    v: Array,
    *,
    gather: Gather,
    index: Any,
    p_write: Array | float | None = None,
    p_erase: Array | float | None = None,
    p_read: Array | float | None = None,
    decay: Array | float | None = None,
    mask: Array | None = None,
    state: Array | None = None,
    return_state: bool = False,
) -> Any:
    """Causal attention of one shard of a sequence split into consecutive shards.

    Parameters
    ----------
    q, k, v, p_write, p_erase, p_read, decay, mask
        This shard's part of each argument of :func:`namcore.attention` (the sequence
        axis is the one before last of ``q``, ``k``, ``v``, the last of per-token
        arrays); floats apply to every token.
    gather : callable
        ``gather(x)`` returns every shard's ``x`` stacked on a new first axis, in shard
        order (``jax.lax.all_gather``, :func:`torch_gather`). It is called once: on
        ``C`` ``(..., d_v, d_k)`` alone without erase and decay, else on ``C`` and ``A``
        concatenated, ``(..., d_v + d_k, d_k)``.
    index : int or integer scalar
        This shard's position in the sequence, ``0 .. n - 1``. An integer array keeps
        every shard's gathered entry in the graph (selected by ``where``), so that the
        gather's backward runs on every shard, as a collective's must.
    state : array (..., d_v, d_k), optional
        The memory before the first shard (the same on every shard).
    return_state : bool
        Also return the memory after the *last* shard (the same on every shard), to
        continue a stream.

    Returns
    -------
    y : array (..., L_shard, d_v)
        Equal, up to rounding, to this shard's rows of the unsharded causal attention.
    """
    options: dict[str, Any] = {"p_write": p_write, "p_erase": p_erase, "decay": decay, "mask": mask}
    products, written = transition(q, k, v, **options)
    if products is None:
        all_written, all_products = gather(written), None
    else:  # one collective: C (d_v rows) over A (d_k rows)
        xp = _v.namespace("namcore.context_parallel.attention", q=q, k=k, v=v)
        both = gather(xp.concat([written, products], axis=-2))
        d_v = written.shape[-2]
        all_written, all_products = both[..., :d_v, :], both[..., d_v:, :]
    before = incoming_state(all_products, all_written, index, state)
    y = _attention(q, k, v, causal=True, p_read=p_read, state=before, **options)
    if return_state:
        return y, incoming_state(all_products, all_written, all_written.shape[0], state)
    return y


def jax_attention(
    q: Array,
    k: Array,
    v: Array,
    *,
    mesh: Any,
    axis: str,
    state: Array | None = None,
    **options: Any,
) -> Any:
    """Causal attention with the sequence sharded over the mesh axis ``axis`` (``jax.shard_map``).

    ``q``, ``k``, ``v`` are whole ``(..., L, d)`` JAX arrays; ``options`` are those of
    :func:`attention` (``p_write``, ``p_erase``, ``p_read``, ``decay``, ``mask``), per-token
    arrays ``(..., L)`` or floats; ``L`` must divide evenly by the axis size. Returns
    ``y`` sharded the same way along the sequence. Works under ``jax.jit`` and
    ``jax.grad``.
    """
    import jax
    from jax.sharding import PartitionSpec

    def spec(x: Array, sequence_axis: int) -> PartitionSpec:
        names: list[str | None] = [None] * x.ndim
        names[x.ndim + sequence_axis] = axis
        return PartitionSpec(*names)

    per_token = {n: x for n, x in options.items() if x is not None and hasattr(x, "ndim")}
    constants = {n: x for n, x in options.items() if n not in per_token}
    arrays = {"q": q, "k": k, "v": v, **per_token}
    specs = {name: spec(x, -2 if name in "qkv" else -1) for name, x in arrays.items()}
    replicated = {} if state is None else {"state": state}

    def local(sharded: dict[str, Any], whole: dict[str, Any]) -> Any:
        rest = {name: x for name, x in sharded.items() if name not in ("q", "k", "v")}
        return attention(
            sharded["q"],
            sharded["k"],
            sharded["v"],
            gather=lambda x: jax.lax.all_gather(x, axis),
            index=jax.lax.axis_index(axis),
            state=whole.get("state"),
            **rest,
            **constants,
        )

    mapped = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(specs, {name: PartitionSpec() for name in replicated}),
        out_specs=spec(v, -2),
        check_vma=False,
    )
    return mapped(arrays, replicated)


def torch_attention(q: Array, k: Array, v: Array, *, group: Any = None, **options: Any) -> Any:
    """This process's shard of a causal attention over a ``torch.distributed`` group.

    Every process of ``group`` (default: the whole world) passes its consecutive shard
    of the sequence, in rank order; ``options`` are those of :func:`attention` except
    ``gather`` and ``index``. Gradients flow back to every rank's inputs: the gather
    is an all-gather whose backward all-reduces the gathered gradient and keeps this
    rank's part (see :func:`torch_gather`). Each call gathers once, so its backward is
    one collective: every rank must run the backward of every call, in the same order
    (as with any ``torch.distributed`` collective).
    """
    import torch
    import torch.distributed as dist

    group = group or dist.group.WORLD
    # a tensor index keeps every rank's entry in the graph: rank 0 folds nothing in,
    # yet its backward must still join the all-reduce
    index = torch.tensor(dist.get_rank(group), device=q.device)
    return attention(q, k, v, gather=lambda x: torch_gather(x, group), index=index, **options)


def torch_gather(x: Any, group: Any = None) -> Any:
    """Every rank's ``x`` stacked on a new first axis, differentiable (``torch.distributed``).

    The backward sums the gradient of the stack over the ranks (one ``all_reduce``,
    which every backend supports, gloo included) and returns this rank's entry.

    Examples
    --------
    >>> import tempfile, torch, torch.distributed as dist
    >>> from namcore.context_parallel import torch_gather
    >>> store = f"file://{tempfile.mkdtemp()}/store"
    >>> dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    >>> x = torch.ones(2, requires_grad=True)
    >>> y = torch_gather(x)
    >>> y.shape, (3 * y).sum().backward(), x.grad.tolist()
    (torch.Size([1, 2]), None, [3.0, 3.0])
    >>> dist.destroy_process_group()
    """
    import torch.distributed as dist

    return _torch_gather_function().apply(x, group or dist.group.WORLD)


@functools.cache
def _torch_gather_function() -> Any:
    import torch
    import torch.distributed as dist

    class Gather(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, group: Any) -> Any:
            ctx.group = group
            x = x.contiguous()
            parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
            dist.all_gather(parts, x, group=group)
            return torch.stack(parts)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            g = g.clone(memory_format=torch.contiguous_format)  # all_reduce writes in place
            dist.all_reduce(g, group=ctx.group)
            return g[dist.get_rank(ctx.group)], None

    return Gather
