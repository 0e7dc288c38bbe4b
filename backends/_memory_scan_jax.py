"""The memory-saving scan for JAX: a ``jax.custom_vjp`` that rebuilds the memory.

Differentiating a plain ``lax.scan`` stores every step's residuals, which include the
memory matrices: O(L·d²) for a sequence of length L. Here the forward pass keeps, per
step, only what the step wrote (``u`` and ``k̂`` of ``M' = M + u k̂ᵀ``, O(d)) and the
small carry, plus an exact copy of the memory at the start of every segment of
``every`` steps. The backward scan runs from the last step to the first, rebuilding
``M_t = M_{t+1} - u_t k̂_tᵀ`` and differentiating one step at a time (with
``jax.vjp``, or with the step's own backward); each segment starts from the exact
memory at its end, so rounding drift spans at most ``every`` steps. The segments are
nested scans, so the per-step loop holds no checkpoint test.

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


def _segments(tree: Any, length: int, every: int) -> tuple[Any, Any]:
    """``tree``'s arrays split on axis 0 into whole segments ``(n, every, ...)`` and the rest."""
    whole = length // every * every
    return (
        jax.tree.map(lambda a: jnp.reshape(a[:whole], (-1, every, *a.shape[1:])), tree),
        jax.tree.map(lambda a: a[whole:], tree),
    )


def _joined(whole: Any, rest: Any) -> Any:
    """Undo :func:`_segments`: whole segments and the rest (or ``None``) back on one axis."""
    whole = jax.tree.map(lambda a: jnp.reshape(a, (-1, *a.shape[2:])), whole)
    if rest is None:
        return whole
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), whole, rest)


def _forward(f: Any, state: Any, xs: Any, length: int, every: int) -> tuple[Any, Any, Any]:
    """``lax.scan(f, state, xs)`` run as segments of ``every`` steps.

    ``state`` starts with the memory tuple. Returns the final state, the stacked
    outputs, and the memory at the start of each segment, stacked: the exact copies
    the backward restarts from. Nested scans keep the per-step loop free of the
    conditional copy that a checkpoint test at every step costs.
    """
    if length <= every:  # one segment: no nesting, and one loop to compile
        end, ys = lax.scan(f, state, xs)
        return end, ys, ()  # the backward starts from the final memory
    whole, rest = _segments(xs, length, every)

    def segment(state: Any, xs: Any) -> Any:
        end, ys = lax.scan(f, state, xs)
        return end, (ys, state[0])

    state, (ys, saved) = lax.scan(segment, state, whole)
    ys_rest = None
    if length % every:
        start = state[0]
        state, ys_rest = lax.scan(f, state, rest)
        saved = jax.tree.map(lambda s, m: jnp.concatenate([s, m[None]]), saved, start)
    return state, _joined(ys, ys_rest), saved


def _backward(
    b: Any, final: Any, saved: Any, grads: Any, inputs: Any, length: int, every: int
) -> tuple[Any, Any]:
    """The reverse scan of ``b((after, grads), x) -> ((before, grads), d)``, segment by segment.

    Each segment starts from the exact memory at its end (the next segment's saved
    copy, or ``final``) and ``b`` rebuilds the memory before each step from the one
    after it, so rounding drift spans at most ``every`` steps. Returns the gradients
    carried past the first step and the stacked per-step outputs ``d``.
    """
    if length <= every:
        (_, grads), d = lax.scan(b, (final, grads), inputs, reverse=True)
        return grads, d
    whole, rest = _segments(inputs, length, every)
    d_rest = None
    if length % every:
        (_, grads), d_rest = lax.scan(b, (final, grads), rest, reverse=True)

    def segment(grads: Any, xs: Any) -> Any:
        end, xs = xs
        (_, grads), d = lax.scan(b, (end, grads), xs, reverse=True)
        return grads, d

    # the memory at the end of whole segment s: the start of the next segment, or final
    n = length // every
    ends = jax.tree.map(lambda s, m: jnp.concatenate([s[1:], m[None]])[:n], saved, final)
    grads, d_whole = lax.scan(segment, grads, (ends, whole), reverse=True)
    return grads, _joined(d_whole, d_rest)


class _Stacks:
    """A step's per-step outputs, each distinct array stacked once.

    A hand-derived step often returns one array in several places (LSAM's ``u`` is
    both a write and a residual) or returns its incoming carry as a residual (LSAM's
    ``h``, which is the previous step's output). XLA's CPU backend copies every
    stacked output of a ``lax.scan`` into place as a separate operation and does not
    merge identical ones (see ``benchmarks/xla_cpu_probe.py``).

    :meth:`outputs` (inside the scan's step) returns the arrays to stack: each
    distinct one once, without the step's inputs, and without an incoming carry
    whose outgoing value is stacked anyway. :meth:`restore` (after the scan) puts
    every output back in its place. Its plan has one entry per output:
    ``("own", i)`` is the ``i``-th stacked array, ``("x", i)`` the ``i``-th input of
    the scan, and ``("in", i)`` the incoming value of the ``i``-th carry: the
    initial carry, then the stacked outgoing values ``self.sources[i]`` of every step
    but the last. The plan of the last trace of the step is used, so every trace
    must return the same arrays in the same places (as a step function does).
    """

    def __init__(self) -> None:
        self.plan: list[tuple[str, int]] = []
        self.sources: dict[int, int] = {}  # carry leaf -> stacked index of its outgoing value
        self.tree: Any = None

    def outputs(self, x: Any, carry_in: Any, carry_out: Any, tree: Any) -> list[Any]:
        """The arrays to stack for the outputs ``tree`` of one step."""
        inputs, before, after = (jax.tree.leaves(t) for t in (x, carry_in, carry_out))
        leaves, self.tree = jax.tree.flatten(tree)
        kept: list[Any] = []

        def find(leaf: Any, among: list[Any]) -> int | None:
            return next((i for i, a in enumerate(among) if a is leaf), None)

        def keep(leaf: Any) -> int:
            index = find(leaf, kept)
            if index is None:
                kept.append(leaf)
                index = len(kept) - 1
            return index

        places = [(find(leaf, inputs), find(leaf, before)) for leaf in leaves]
        for leaf, (given, carried) in zip(leaves, places, strict=True):
            if given is None and carried is None:  # first the arrays stacked as they are
                keep(leaf)
        self.plan, self.sources = [], {}
        for leaf, (given, carried) in zip(leaves, places, strict=True):
            source = None if carried is None else find(after[carried], kept)
            if given is not None:
                self.plan.append(("x", given))
            elif carried is not None and source is not None:
                self.plan.append(("in", carried))
                self.sources[carried] = source
            else:  # an incoming carry whose outgoing value is not stacked: stack it
                self.plan.append(("own", keep(leaf)))
        return kept

    def restore(self, stacked: list[Any], xs: Any, carry: Any) -> Any:
        """The outputs stacked over the steps, from the stacked arrays, the inputs and
        the initial carry."""
        xs, carry = jax.tree.leaves(xs), jax.tree.leaves(carry)
        leaves = []
        for kind, i in self.plan:
            if kind == "own":
                leaves.append(stacked[i])
            elif kind == "x":
                leaves.append(xs[i])
            else:
                after = stacked[self.sources[i]]
                first = jnp.asarray(carry[i])[None]
                leaves.append(jnp.concatenate([first, after])[: after.shape[0]])
        return jax.tree.unflatten(self.tree, leaves)


def _plain(step: MemoryStep) -> Any:
    """The scan of ``step`` without a custom backward: the primal of both ``custom_vjp``s."""

    def run(params: Any, memory: tuple[Any, ...], carry: Any, xs: tuple[Any, ...]) -> Any:
        def f(state: Any, x: Any) -> Any:
            memory, carry, y, _ = step(params, state[0], state[1], x)
            return (memory, carry), y

        (memory, carry), ys = lax.scan(f, (memory, carry), xs)
        return memory, carry, ys

    return run


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
        stacks = _Stacks()

        def f(state: Any, x: Any) -> Any:
            memory, new_carry, y, writes, kept = step.forward(params, *state, x)
            return (tuple(memory), tuple(new_carry)), stacks.outputs(
                x, state[1], tuple(new_carry), (y, writes, kept)
            )

        (memory, carry_end), out, saved = _forward(f, (memory, carry), xs, length, every)
        ys, writes, kept = stacks.restore(out, xs, carry)
        return (memory, carry_end, ys), (params, xs, writes, kept, saved, memory)

    def backward(residuals: Any, cotangents: Any) -> Any:
        params, xs, writes, kept, saved, final = residuals
        g_memory, g_carry, g_ys = cotangents
        param_grads = step.param_grads  # the parameters' gradients after the loop, if any
        summed = param_grads is not None

        def b(state: Any, inputs: Any) -> Any:
            after, (g_memory, g_carry, g_params) = state
            x, written, kept, g_y = inputs
            memory = _rebuild(after, written)
            d_params, g_memory, g_carry, d_x = step.backward(
                params, x, memory, after, kept, g_memory, g_carry, g_y
            )
            if not summed:
                g_params = jax.tree.map(jnp.add, g_params, tuple(d_params))
            return (memory, (tuple(g_memory), tuple(g_carry), g_params)), d_x

        zero_params = () if summed else jax.tree.map(jnp.zeros_like, params)
        (d_memory, d_carry, d_params), d_xs = _backward(
            b,
            final,
            saved,
            (g_memory, g_carry, zero_params),
            (xs, writes, kept, g_ys),
            length,
            every,
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
        stacks = _Stacks()

        def f(state: Any, x: Any) -> Any:
            memory, carry = state
            new_memory, new_carry, y, writes = step(params, memory, carry, x)
            return (tuple(new_memory), new_carry), stacks.outputs(
                x, carry, new_carry, (y, carry, writes)
            )

        (memory, carry_end), out, saved = _forward(f, (memory, carry), xs, length, every)
        ys, carries, writes = stacks.restore(out, xs, carry)
        return (memory, carry_end, ys), (params, xs, carries, writes, saved, memory)

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
            memory_next, (g_memory, g_carry, g_params) = state
            x, carry, written, g_y = inputs
            memory = _rebuild(memory_next, written)
            x_float = tuple(a for f, a in zip(floats, x, strict=True) if f)
            _, vjp = jax.vjp(
                lambda p, m, c, xf: local(p, m, c, xf, x), params, memory, carry, x_float
            )
            d_params, d_memory, d_carry, d_x = vjp((g_memory, g_carry, g_y))
            g_params = jax.tree.map(jnp.add, g_params, d_params)
            return (memory, (d_memory, d_carry, g_params)), d_x

        zero_params = jax.tree.map(jnp.zeros_like, params)
        (d_memory, d_carry, d_params), d_xs = _backward(
            b,
            final,
            saved,
            (g_memory, g_carry, zero_params),
            (xs, carries, writes, g_ys),
            length,
            every,
        )
        it = iter(d_xs)
        d_all = tuple(next(it) if f else None for f in floats)
        return d_params, d_memory, d_carry, d_all

    wrapped = jax.custom_vjp(_plain(step))
    wrapped.defvjp(forward, backward)
    return wrapped(params, memory, carry, xs)
