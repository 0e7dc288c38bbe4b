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

from ._steps import ManualStep, MemoryStep

__all__ = ["manual_scan", "memory_scan"]


def _is_float(x: Any) -> bool:
    return bool(jnp.issubdtype(x.dtype, jnp.inexact))


def _rebuild(memory: tuple[Any, ...], writes: tuple[Any, ...]) -> tuple[Any, ...]:
    """``M - u k̂ᵀ`` for each memory: undo one step's rank-1 writes."""
    return tuple(
        m - u[..., :, None] * kh[..., None, :] for m, (u, kh) in zip(memory, writes, strict=True)
    )


def _checkpoint(saved: tuple[Any, ...], memory: tuple[Any, ...], t: Any, every: int) -> Any:
    """``saved`` with ``memory`` in slot ``t // every`` if ``t`` is a multiple of ``every``."""
    return lax.cond(
        t % every == 0,
        lambda: tuple(
            lax.dynamic_update_index_in_dim(s, m, t // every, 0)
            for s, m in zip(saved, memory, strict=True)
        ),
        lambda: saved,
    )


def _memory_before(
    saved: tuple[Any, ...], after: tuple[Any, ...], written: Any, t: Any, every: int
) -> Any:
    """The memory before step ``t``: the saved copy, or ``after`` with the step's writes undone."""
    return lax.cond(
        t % every == 0,
        lambda: tuple(lax.dynamic_index_in_dim(s, t // every, 0, keepdims=False) for s in saved),
        lambda: _rebuild(after, written),
    )


def _plain(step: MemoryStep) -> Any:
    """The scan of ``step`` without a custom backward: the primal of both ``custom_vjp``s."""

    def run(params: Any, memory: tuple[Any, ...], carry: Any, xs: tuple[Any, ...]) -> Any:
        def f(state: Any, x: Any) -> Any:
            memory, carry, y, _ = step(params, state[0], state[1], x)
            return (memory, carry), y

        (memory, carry), ys = lax.scan(f, (memory, carry), xs)
        return memory, carry, ys

    return run


def _slots(memory: tuple[Any, ...], length: int, every: int) -> tuple[Any, ...]:
    return tuple(jnp.zeros((-(-length // every), *m.shape), m.dtype) for m in memory)


def manual_scan(
    step: ManualStep,
    params: Any,
    memory: tuple[Any, ...],
    carry: Any,
    xs: tuple[Any, ...],
    every: int,
) -> tuple[Any, Any, Any]:
    """``(memory, carry, ys)`` of ``step``, differentiated with the step's own backward."""
    length = int(xs[0].shape[0])

    def forward(params: Any, memory: tuple[Any, ...], carry: Any, xs: tuple[Any, ...]) -> Any:
        def f(state: Any, inputs: Any) -> Any:
            memory, carry, saved = state
            t, x = inputs
            saved = _checkpoint(saved, memory, t, every)
            memory, carry, y, writes, kept = step.forward(params, memory, carry, x)
            return (tuple(memory), tuple(carry), saved), (y, writes, kept)

        state = (memory, carry, _slots(memory, length, every))
        (memory, carry, saved), (ys, writes, kept) = lax.scan(f, state, (jnp.arange(length), xs))
        return (memory, carry, ys), (params, xs, writes, kept, saved, memory)

    def backward(residuals: Any, cotangents: Any) -> Any:
        params, xs, writes, kept, saved, final = residuals
        g_memory, g_carry, g_ys = cotangents
        param_grads = step.param_grads  # the parameters' gradients after the loop, if any
        summed = param_grads is not None

        def b(state: Any, inputs: Any) -> Any:
            after, g_memory, g_carry, g_params = state
            t, x, written, kept, g_y = inputs
            memory = _memory_before(saved, after, written, t, every)
            d_params, g_memory, g_carry, d_x = step.backward(
                params, x, memory, after, kept, g_memory, g_carry, g_y
            )
            if not summed:
                g_params = jax.tree.map(jnp.add, g_params, tuple(d_params))
            return (memory, tuple(g_memory), tuple(g_carry), g_params), d_x

        zero_params = () if summed else jax.tree.map(jnp.zeros_like, params)
        (_, d_memory, d_carry, d_params), d_xs = lax.scan(
            b,
            (final, g_memory, g_carry, zero_params),
            (jnp.arange(length), xs, writes, kept, g_ys),
            reverse=True,
        )
        if param_grads is not None:
            d_params = tuple(param_grads(params, xs, kept, tuple(d_xs)))
        return d_params, d_memory, d_carry, tuple(d_xs)

    wrapped = jax.custom_vjp(_plain(step))
    wrapped.defvjp(forward, backward)
    return wrapped(params, memory, carry, xs)


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

    def forward(params: Any, memory: tuple[Any, ...], carry: Any, xs: tuple[Any, ...]) -> Any:
        saved = _slots(memory, length, every)

        def f(state: Any, inputs: Any) -> Any:
            memory, carry, saved = state
            t, x = inputs
            saved = _checkpoint(saved, memory, t, every)
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
            memory = _memory_before(saved, memory_next, written, t, every)
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
        d_all = tuple(next(it) if f else None for f in floats)
        return d_params, d_memory, d_carry, d_all

    wrapped = jax.custom_vjp(_plain(step))
    wrapped.defvjp(forward, backward)
    return wrapped(params, memory, carry, xs)
