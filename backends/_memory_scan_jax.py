"""The memory-saving scan for JAX: a ``jax.custom_vjp`` that rebuilds the memory.

Differentiating a plain ``lax.scan`` stores every step's residuals, which include the
memory matrices: O(L·d²) for a sequence of length L. Here the forward pass keeps, per
step, only what the step wrote (``u`` and ``k̂`` of ``M' = M + u k̂ᵀ``, O(d)) and the
small carry, plus one exact copy of the memory every ``every`` steps. The backward
scan runs from the last step to the first, rebuilding ``M_t = M_{t+1} - u_t k̂_tᵀ``
(or taking the copy at a checkpointed step, so rounding drift spans at most
``every`` steps) and differentiating one step at a time with ``jax.vjp``.

See :meth:`namcore.backends.Backend.memory_scan` for the contract of ``step``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._base import MemoryStep

__all__ = ["memory_scan"]


def _is_float(x: Any) -> bool:
    return bool(jnp.issubdtype(x.dtype, jnp.inexact))


def _rebuild(memory: tuple[Any, ...], writes: tuple[Any, ...]) -> tuple[Any, ...]:
    """``M - u k̂ᵀ`` for each memory: undo one step's rank-1 writes."""
    return tuple(
        m - u[..., :, None] * kh[..., None, :] for m, (u, kh) in zip(memory, writes, strict=True)
    )


def memory_scan(
    step: MemoryStep,
    params: Any,
    memory: tuple[Any, ...],
    carry: Any,
    xs: tuple[Any, ...],
    every: int,
) -> tuple[Any, Any, Any]:
    """``(memory, carry, ys)`` of ``step`` scanned over axis 0 of ``xs``, reversible backward."""
    length = int(xs[0].shape[0])
    floats = tuple(_is_float(x) for x in xs)

    def run(params: Any, memory: tuple[Any, ...], carry: Any, xs: tuple[Any, ...]) -> Any:
        def f(state: Any, x: Any) -> Any:
            memory, carry, y, _ = step(params, state[0], state[1], x)
            return (memory, carry), y

        (memory, carry), ys = lax.scan(f, (memory, carry), xs)
        return memory, carry, ys

    def forward(params: Any, memory: tuple[Any, ...], carry: Any, xs: tuple[Any, ...]) -> Any:
        slots = -(-length // every)
        saved = tuple(jnp.zeros((slots, *m.shape), m.dtype) for m in memory)

        def f(state: Any, inputs: Any) -> Any:
            memory, carry, saved = state
            t, x = inputs
            saved = lax.cond(
                t % every == 0,
                lambda: tuple(
                    lax.dynamic_update_index_in_dim(s, m, t // every, 0)
                    for s, m in zip(saved, memory, strict=True)
                ),
                lambda: saved,
            )
            new_memory, new_carry, y, writes = step(params, memory, carry, x)
            return (new_memory, new_carry, saved), (y, carry, writes)

        steps = jnp.arange(length)
        (memory, carry, saved), (ys, carries, writes) = lax.scan(
            f, (memory, carry, saved), (steps, xs)
        )
        return (memory, carry, ys), (params, xs, carries, writes, saved, memory)

    def backward(residuals: Any, cotangents: Any) -> Any:
        params, xs, carries, writes, saved, final = residuals
        g_memory, g_carry, g_ys = cotangents
        fixed = tuple(None if f else x for f, x in zip(floats, xs, strict=True))

        def local(
            params: Any, memory: Any, carry: Any, x_float: tuple[Any, ...], x_all: Any
        ) -> Any:
            it = iter(x_float)
            x = tuple(next(it) if f else a for f, a in zip(floats, x_all, strict=True))
            memory, carry, y, _ = step(params, memory, carry, x)
            return memory, carry, y

        def b(state: Any, inputs: Any) -> Any:
            memory_next, g_memory, g_carry, g_params = state
            t, x, carry, written, g_y = inputs
            memory = lax.cond(
                t % every == 0,
                lambda: tuple(
                    lax.dynamic_index_in_dim(s, t // every, 0, keepdims=False) for s in saved
                ),
                lambda: _rebuild(memory_next, written),
            )
            x_float = tuple(a for f, a in zip(floats, x, strict=True) if f)
            _, vjp = jax.vjp(
                lambda p, m, c, xf: local(p, m, c, xf, x), params, memory, carry, x_float
            )
            d_params, d_memory, d_carry, d_x = vjp((g_memory, g_carry, g_y))
            g_params = jax.tree.map(jnp.add, g_params, d_params)
            return (memory, d_memory, d_carry, g_params), d_x

        zero_params = jax.tree.map(jnp.zeros_like, params)
        steps = jnp.arange(length)
        (_, d_memory, d_carry, d_params), d_xs = lax.scan(
            b,
            (final, g_memory, g_carry, zero_params),
            (steps, xs, carries, writes, g_ys),
            reverse=True,
        )
        it = iter(d_xs)
        d_all = tuple(next(it) if f else None for f, _ in zip(floats, fixed, strict=True))
        return d_params, d_memory, d_carry, d_all

    wrapped = jax.custom_vjp(run)
    wrapped.defvjp(forward, backward)
    return wrapped(params, memory, carry, xs)
