"""The memory-saving scans for PyTorch: autograd Functions.

A step with a hand-derived backward (:class:`namcore.backends.ManualStep`) runs in
:class:`_ManualScan`: the forward pass keeps each step's writes and residuals (O(d))
and an exact copy of the memory every ``every`` steps; the backward pass walks from
the last step to the first, rebuilding ``M_t = M_{t+1} - u_t k̂_tᵀ`` (or taking the
copy), and calls the step's backward, with no autograd graph at all. Any other step
runs in :class:`_MemoryScan`, which recomputes segments:

Eager autograd keeps every step's graph, and with it every step's memory: O(L·d²).
Here the forward pass runs without a graph and keeps only the state (memory and
carry) at the start of every segment of ``every`` steps. The backward pass walks the
segments from the last to the first: it reruns one segment from its saved state with
a graph and differentiates it with a single ``torch.autograd.grad`` call, so at most
one segment's graph exists at once.

Rebuilding each step's memory from its write (as the JAX backend does) would need
one ``autograd.grad`` call per step, whose fixed cost in eager PyTorch outweighs the
arithmetic of the small steps; a segment amortises it.

See :meth:`namcore.backends.Backend.memory_scan` for the contract of ``step``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, overload

import torch

from ._steps import ManualStep, MemoryStep

__all__ = ["compiled", "manual_scan", "memory_scan"]


def _run(
    step: MemoryStep, params: Any, memory: Any, carry: Any, steps: list[Any], start: int, stop: int
) -> Any:
    ys = []
    for t in range(start, stop):
        memory, carry, y, _ = step(params, memory, carry, tuple(s[t] for s in steps))
        memory, carry = tuple(memory), tuple(carry)
        ys.append(y)
    return memory, carry, ys


class _MemoryScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, step: MemoryStep, every: int, sizes: tuple[int, ...], *flat: Any) -> Any:
        params, memory, carry, xs = split(flat, sizes)
        length = xs[0].shape[0]
        steps = [x.unbind(0) for x in xs]
        starts, ys = [], []
        for start in range(0, length, every):
            starts.append((memory, carry))
            memory, carry, segment = _run(
                step, params, memory, carry, steps, start, min(start + every, length)
            )
            ys += segment
        ctx.save_for_backward(*flat)
        ctx.step, ctx.every, ctx.sizes, ctx.starts = step, every, sizes, starts
        stacked = tuple(torch.stack(column) for column in zip(*ys, strict=True))
        return (*memory, *carry, *stacked)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        n_p, n_m, n_c, _ = ctx.sizes
        saved_params, _, _, xs = split(ctx.saved_tensors, ctx.sizes)
        need_params, _, _, x_needs = split(ctx.needs_input_grad[3:], ctx.sizes)
        params = tuple(
            p.detach().requires_grad_(need)
            for p, need in zip(saved_params, need_params, strict=True)
        )
        length = xs[0].shape[0]
        g_state = list(grads[: n_m + n_c])
        g_ys = grads[n_m + n_c :]
        g_params: list[Any] = [None] * n_p
        g_xs: list[list[Any]] = [[] for _ in xs]
        for i in range(len(ctx.starts) - 1, -1, -1):
            start, stop = i * ctx.every, min((i + 1) * ctx.every, length)
            memory, carry = ctx.starts[i]
            with torch.enable_grad():
                state_in = tuple(
                    a.detach().requires_grad_(a.is_floating_point()) for a in (*memory, *carry)
                )
                x_in = tuple(
                    x[start:stop].detach().requires_grad_(need)
                    for x, need in zip(xs, x_needs, strict=True)
                )
                steps = [x.unbind(0) for x in x_in]
                memory, carry, ys = _run(
                    ctx.step, params, state_in[:n_m], state_in[n_m:], steps, 0, stop - start
                )
                stacked = [torch.stack(column) for column in zip(*ys, strict=True)]
                outputs = (*memory, *carry, *stacked)
                cotangents = (*g_state, *(None if g is None else g[start:stop] for g in g_ys))
                pairs = [
                    (o, g)
                    for o, g in zip(outputs, cotangents, strict=True)
                    if g is not None and o.requires_grad
                ]
                inputs = [a for a in (*params, *state_in, *x_in) if a.requires_grad]
                found = (
                    torch.autograd.grad(
                        [o for o, _ in pairs], inputs, [g for _, g in pairs], allow_unused=True
                    )
                    if pairs and inputs
                    else [None] * len(inputs)
                )
            by_input = dict(zip(map(id, inputs), found, strict=True))
            for j, p in enumerate(params):
                g = by_input.get(id(p))
                if g is not None:
                    g_params[j] = g if g_params[j] is None else g_params[j] + g
            g_state = [_zeros_if_none(by_input.get(id(a)), a) for a in state_in]
            for column, a in zip(g_xs, x_in, strict=True):
                column.append(_zeros_if_none(by_input.get(id(a)), a))
        d_xs = [
            torch.cat(column[::-1]) if need else None
            for column, need in zip(g_xs, x_needs, strict=True)
        ]
        return input_grads(ctx.needs_input_grad, g_params, g_state, d_xs)


class _ManualScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, step: ManualStep, every: int, sizes: tuple[int, ...], *flat: Any) -> Any:
        # The steps run on detached tensors, so that what they are given never carries
        # a graph (torch.compile would read a traced leaf's .grad): once here instead
        # of at every call.
        params, memory, carry, xs = split(tuple(a.detach() for a in flat), sizes)
        steps = list(zip(*(x.unbind(0) for x in xs), strict=True))
        saved, writes, residuals, ys = {}, [], [], []
        for t, x in enumerate(steps):
            if t % every == 0:
                saved[t] = memory
            memory, carry, y, written, kept = step.forward(params, memory, carry, x)
            memory, carry = tuple(memory), tuple(carry)
            writes.append(written)
            residuals.append(kept)
            ys.append(y)
        ctx.save_for_backward(*params)
        ctx.step, ctx.every, ctx.sizes, ctx.steps, ctx.xs = step, every, sizes, steps, xs
        # The final memory is also an output; the context keeps a detached alias, since
        # an output held by its own node's context is a reference cycle (the output's
        # grad_fn is that node) that only Python's cyclic collector frees: every
        # step's residuals would stay alive until then.
        final = tuple(m.detach() for m in memory)
        ctx.saved, ctx.writes, ctx.residuals, ctx.final = saved, writes, residuals, final
        stacked = tuple(torch.stack(column) for column in zip(*ys, strict=True))
        return (*memory, *carry, *stacked)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        params = ctx.saved_tensors
        _, n_m, n_c, _ = ctx.sizes
        g_memory, g_carry = grads[:n_m], grads[n_m : n_m + n_c]
        g_ys = [g.unbind(0) for g in grads[n_m + n_c :]]
        summed = ctx.step.param_grads is not None  # the parameters' gradients after the loop
        g_params: list[Any] = [] if summed else [torch.zeros_like(p) for p in params]
        g_xs: list[Any] = [None] * len(ctx.steps)
        after = ctx.final
        for t in range(len(ctx.steps) - 1, -1, -1):
            before = ctx.saved.get(t)
            if before is None:
                before = tuple(
                    torch.addcmul(m, u.unsqueeze(-1), kh.unsqueeze(-2), value=-1.0)
                    for m, (u, kh) in zip(after, ctx.writes[t], strict=True)
                )
            d_params, g_memory, g_carry, g_xs[t] = ctx.step.backward(
                params,
                ctx.steps[t],
                before,
                after,
                ctx.residuals[t],
                tuple(g_memory),
                tuple(g_carry),
                tuple(g[t] for g in g_ys),
            )
            if not summed:
                for total, d in zip(g_params, d_params, strict=True):
                    total.add_(d)
            after = before
        columns = [
            torch.stack(column) if column[0] is not None else None
            for column in zip(*g_xs, strict=True)
        ]
        if summed:
            kept = _Columns(ctx.residuals)
            g_params = list(ctx.step.param_grads(params, ctx.xs, kept, tuple(columns)))
        return input_grads(ctx.needs_input_grad, g_params, (*g_memory, *g_carry), columns)


def split(flat: tuple[Any, ...], sizes: tuple[int, ...]) -> tuple[Any, Any, Any, Any]:
    """A scan Function's flat inputs as ``(params, memory, carry, xs)``."""
    n_p, n_m, n_c, _ = sizes
    bounds = (0, n_p, n_p + n_m, n_p + n_m + n_c, len(flat))
    params, memory, carry, xs = (flat[a:b] for a, b in itertools.pairwise(bounds))
    return params, memory, carry, xs


def input_grads(needs: tuple[bool, ...], g_params: Any, g_state: Any, g_xs: Any) -> tuple[Any, ...]:
    """A scan Function's ``backward`` result: its three leading arguments (the step,
    ``every``, the sizes) get none, and every input that needs no gradient ``None``."""
    found = (*g_params, *g_state, *g_xs)
    return (
        None,
        None,
        None,
        *(g if need else None for g, need in zip(found, needs[3:], strict=True)),
    )


class _Columns(Sequence[Any]):
    """Per-step tuples read by column, each column stacked over the steps when first
    read: a step's ``param_grads`` may need one residual of many."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._columns = list(zip(*rows, strict=True))
        self._stacked: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._columns)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(len(self))[index])
        index = range(len(self))[index]  # negative indices; IndexError past the end
        if index not in self._stacked:
            column = self._columns[index]
            self._stacked[index] = None if column[0] is None else torch.stack(column)
        return self._stacked[index]


def _zeros_if_none(g: Any, like: Any) -> Any:
    return torch.zeros_like(like) if g is None else g


def compiled(step: ManualStep) -> ManualStep:
    """``step`` with its forward and backward through ``torch.compile``.

    The steps are closures made anew at every model call; ``torch.compile`` keeps
    what it compiled with the functions' code and guards on what they close over, so
    a later call with the same shapes reuses it instead of compiling again.
    :class:`_ManualScan` gives the steps detached tensors only: tracing a tensor
    that has a graph makes the compiler read its ``.grad`` (a warning).
    """
    forward = torch.compile(step.forward, dynamic=False)
    backward = torch.compile(step.backward, dynamic=False)
    return ManualStep(forward, backward, step.param_grads)


def manual_scan(
    step: ManualStep,
    params: Any,
    memory: tuple[Any, ...],
    carry: Any,
    xs: tuple[Any, ...],
    every: int,
) -> tuple[Any, Any, Any]:
    """``(memory, carry, ys)`` of ``step``, differentiated with the step's own backward."""
    return _apply(_ManualScan, step, params, memory, carry, xs, every)


def memory_scan(
    step: MemoryStep,
    params: Any,
    memory: tuple[Any, ...],
    carry: Any,
    xs: tuple[Any, ...],
    every: int,
) -> tuple[Any, Any, Any]:
    """``(memory, carry, ys)`` of ``step`` over axis 0 of ``xs``, saving memory for the backward."""
    return _apply(_MemoryScan, step, params, memory, carry, xs, every)


def _apply(
    function: Any, step: Any, params: Any, memory: Any, carry: Any, xs: Any, every: int
) -> tuple[Any, Any, Any]:
    params, memory, carry, xs = tuple(params), tuple(memory), tuple(carry), tuple(xs)
    sizes = (len(params), len(memory), len(carry), len(xs))
    out = function.apply(step, every, sizes, *params, *memory, *carry, *xs)
    n_m, n_c = sizes[1], sizes[2]
    return out[:n_m], out[n_m : n_m + n_c], out[n_m + n_c :]
