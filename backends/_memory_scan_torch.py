"""The memory-saving scan for PyTorch: an autograd Function that recomputes segments.

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

from typing import Any

import torch

from ._base import MemoryStep

__all__ = ["memory_scan"]


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
        n_p, n_m, n_c, _ = sizes
        params = flat[:n_p]
        memory = flat[n_p : n_p + n_m]
        carry = flat[n_p + n_m : n_p + n_m + n_c]
        xs = flat[n_p + n_m + n_c :]
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
        flat = ctx.saved_tensors
        n_p, n_m, n_c, _ = ctx.sizes
        needs = ctx.needs_input_grad[3:]
        params = tuple(
            p.detach().requires_grad_(need) for p, need in zip(flat[:n_p], needs[:n_p], strict=True)
        )
        xs = flat[n_p + n_m + n_c :]
        x_needs = needs[n_p + n_m + n_c :]
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
        d_state = [
            g if need else None
            for g, need in zip(g_state, needs[n_p : n_p + n_m + n_c], strict=True)
        ]
        return (None, None, None, *g_params, *d_state, *d_xs)


def _zeros_if_none(g: Any, like: Any) -> Any:
    return torch.zeros_like(like) if g is None else g


def memory_scan(
    step: MemoryStep,
    params: Any,
    memory: tuple[Any, ...],
    carry: Any,
    xs: tuple[Any, ...],
    every: int,
) -> tuple[Any, Any, Any]:
    """``(memory, carry, ys)`` of ``step`` over axis 0 of ``xs``, saving memory for the backward."""
    params, memory, carry, xs = tuple(params), tuple(memory), tuple(carry), tuple(xs)
    sizes = (len(params), len(memory), len(carry), len(xs))
    out = _MemoryScan.apply(step, every, sizes, *params, *memory, *carry, *xs)
    n_m, n_c = sizes[1], sizes[2]
    return out[:n_m], out[n_m : n_m + n_c], out[n_m + n_c :]
