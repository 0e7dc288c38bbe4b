"""Whole scans of a :class:`ManualStep` as single compiled PyTorch programs.

:func:`namcore.backends._memory_scan_torch.compiled` compiles a step, and the scan
still calls it once per position from Python: each call pays the compiled
function's guards and Python's own overhead (about 20 to 30 µs a call at d_model
64 on a CPU core), which is most of a small step's time. Here the loop over the
positions is itself compiled: :func:`programs` traces one segment of the forward scan
(and one of the backward scan, rebuilding each step's memory from its write) with
``torch._higher_order_ops.scan`` into one ``torch.compile`` program whose wrapper
is C++ (inductor's ``cpp_wrapper``), so a segment of ``every`` steps is one Python
call.

The results are those of the per-step path within rounding: the same step
functions, the same exact copy of the memory at the start of every segment.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from . import _memory_scan_torch
from ._memory_scan_torch import input_grads, split
from ._steps import ManualStep

__all__ = ["available", "compiled_scan", "configure", "programs"]

#: Inductor options of the whole-scan programs: the loop runs in a C++ wrapper.
_OPTIONS = {"cpp_wrapper": True}
#: Compiled versions kept per program code (dynamo's ``recompile_limit``).
_ENTRIES = 64


@functools.cache
def available() -> bool:
    """Whether this PyTorch has the ``scan`` operator the whole-scan programs need."""
    try:
        from torch._higher_order_ops.scan import scan  # noqa: F401
    except ImportError:
        return False
    return True


def _map(f: Callable[[Any], Any], tree: Any) -> Any:
    """``f`` on every tensor of nested tuples and lists (``None`` stays ``None``)."""
    if isinstance(tree, (tuple, list)):
        return tuple(_map(f, a) for a in tree)
    return None if tree is None else f(tree)


def _fresh(tree: Any) -> Any:
    # The scan operator refuses tensors that share memory among its inputs, its
    # per-step outputs, or one with the other (a residual that is the incoming carry,
    # a write that is a view of a residual): copies, which inductor folds into the
    # kernels that compute them.
    return _map(torch.clone, tree)


def _scan(body: Callable[[Any, Any], Any], init: Any, xs: Any, reverse: bool = False) -> Any:
    """``scan(body, init, xs)`` for nested tuples that may hold ``None``.

    With ``reverse``, the steps run from the last to the first, and the stacked
    outputs are in that order: the last step's first.

    The ``scan`` operator takes and stacks tensors only. The ``None`` of ``xs`` are
    left out and put back for the body; to learn where the body's per-step outputs
    hold ``None``, it is traced once more on the first step (that copy computes
    nothing that is used, so the compiler drops it), and the scan runs a body that
    leaves those out; they come back as ``None`` in the stacked outputs.
    """
    from torch._higher_order_ops.scan import scan

    x_leaves, x_spec = _flatten(xs)
    x_kept = [i for i, a in enumerate(x_leaves) if a is not None]

    def step_inputs(found: list[Any]) -> Any:
        full: list[Any] = [None] * len(x_leaves)
        for i, a in zip(x_kept, found, strict=True):
            full[i] = a
        return tree_unflatten(full, x_spec)

    _, probe = body(init, _map(lambda a: a[-1 if reverse else 0], xs))
    y_leaves, y_spec = _flatten(probe)
    y_kept = [i for i, a in enumerate(y_leaves) if a is not None]

    def dense(state: Any, x: list[Any]) -> Any:
        state, out = body(state, step_inputs(x))
        found = _flatten(out)[0]
        return state, [found[i] for i in y_kept]

    # The operator refuses inputs that share memory (views of one tensor): copies.
    # Backwards, the inputs are flipped here, and the outputs are left in the order
    # of the steps taken: the operator's own ``reverse`` (or any kernel after the
    # loop) miscompiles under inductor's C++ wrapper (torch 2.13: a buffer declared
    # twice).
    dense_xs = [x_leaves[i] for i in x_kept]
    dense_xs = [torch.flip(a, (0,)) for a in dense_xs] if reverse else _fresh(dense_xs)
    state, stacked = scan(dense, _fresh(init), dense_xs)
    full: list[Any] = [None] * len(y_leaves)
    for i, a in zip(y_kept, stacked, strict=True):
        full[i] = a
    return state, tree_unflatten(full, y_spec)


def _flatten(tree: Any) -> tuple[list[Any], Any]:
    return tree_flatten(tree, is_leaf=lambda a: a is None)


def _forward_segment(
    forward: Callable[..., Any], params: Any, memory: Any, carry: Any, xs: Any
) -> Any:
    """The forward scan over one segment: its final state, and every step's outputs,
    writes and residuals stacked."""

    def body(state: Any, x: Any) -> Any:
        memory, carry = state
        memory, carry, y, writes, kept = forward(params, memory, carry, x)
        return _fresh((memory, carry)), _fresh((y, writes, kept))

    (memory, carry), (ys, writes, kept) = _scan(body, (memory, carry), xs)
    return memory, carry, ys, writes, kept


def _backward_segment(
    backward: Callable[..., Any],
    params: Any,
    after: Any,
    start: Any,
    g_memory: Any,
    g_carry: Any,
    steps: Any,
) -> Any:
    """The backward scan over one segment, from its last step to its first: the
    memory at its start, the state's gradients there, and every step's input and
    parameter gradients stacked (the last step's first)."""

    def body(state: Any, step: Any) -> Any:
        after, g_memory, g_carry = state
        x, writes, kept, g_y, first = step
        # M_t = M_{t+1} - u_t k̂_tᵀ, or the exact copy at the segment's start
        before = tuple(
            torch.where(first, s, torch.addcmul(m, u[..., None], k[..., None, :], value=-1.0))
            for s, m, (u, k) in zip(start, after, writes, strict=True)
        )
        d_params, g_memory, g_carry, g_x = backward(
            params, x, before, after, kept, g_memory, g_carry, g_y
        )
        return _fresh((before, g_memory, g_carry)), _fresh((g_x, d_params))

    state = (after, g_memory, g_carry)
    start = _fresh(start)  # read by every step: it may not share memory with the state
    (before, g_memory, g_carry), (g_xs, d_params) = _scan(body, state, steps, reverse=True)
    return before, g_memory, g_carry, g_xs, d_params


@functools.cache
def programs() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The forward and backward segment programs through ``torch.compile``.

    Made once. A step's functions are arguments, which dynamo guards on by their
    code and what they close over: the steps made anew at every model call reuse
    what was compiled for the same code and shapes. (A ``torch.compile`` wrapper
    with options costs about 0.7 ms to make.)
    """
    compile_ = functools.partial(torch.compile, dynamic=False, options=_OPTIONS)
    return compile_(_forward_segment), compile_(_backward_segment)


def run(program: Callable[..., Any], *args: Any) -> Any:
    """Call a whole-scan program, with :func:`configure` done."""
    configure()
    return program(*args)


def configure() -> None:
    """Set the two ``torch._dynamo.config`` values the whole-scan programs need, for
    the rest of the process.

    The ``scan`` operator's lowering reads the loop index as a scalar, which dynamo
    traces only with ``capture_scalar_outputs``. Every model's scans share the
    programs' code, so each step kind, shape and segment length is one entry of its
    cache: more than dynamo's default limit of 8 entries per code (raised to
    :data:`_ENTRIES`, never lowered). Set once rather than around each call: dynamo
    hashes its whole configuration again at the next compiled call after any change
    (about 0.7 ms each time).
    """
    config = torch._dynamo.config
    if not config.capture_scalar_outputs:
        config.capture_scalar_outputs = True
    if config.recompile_limit < _ENTRIES:
        config.recompile_limit = _ENTRIES


def _dynamic_length(tree: Any) -> None:
    """Compile for any number of steps: one program serves every sequence length."""
    _map(lambda a: torch._dynamo.maybe_mark_dynamic(a, 0), tree)


def _cat(pieces: list[Any]) -> Any:
    """Per-segment stacked outputs joined along the steps (``None`` stays ``None``)."""
    if len(pieces) == 1:
        return pieces[0]
    if pieces[0] is None:
        return None
    if isinstance(pieces[0], (tuple, list)):
        return tuple(_cat(list(column)) for column in zip(*pieces, strict=True))
    return torch.cat(pieces)


class _CompiledScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, step: ManualStep, every: int, sizes: tuple[int, ...], *flat: Any) -> Any:
        params, memory, carry, xs = split(tuple(a.detach() for a in flat), sizes)
        length = xs[0].shape[0]
        starts, pieces = [], []
        for start in range(0, length, every):
            starts.append(memory)
            part = tuple(x[start : start + every] for x in xs)
            _dynamic_length(part)
            memory, carry, *outputs = run(programs()[0], step.forward, params, memory, carry, part)
            pieces.append(outputs)
        ys, writes, kept = _cat(pieces)
        ctx.save_for_backward(*params)
        ctx.step, ctx.every, ctx.sizes, ctx.xs = step, every, sizes, xs
        ctx.starts, ctx.writes, ctx.kept = starts, writes, kept
        ctx.final = tuple(m.detach() for m in memory)  # no cycle through the output
        return (*memory, *carry, *ys)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        params = ctx.saved_tensors
        _, n_m, n_c, _ = ctx.sizes
        g_memory, g_carry = tuple(grads[:n_m]), tuple(grads[n_m : n_m + n_c])
        g_ys = tuple(grads[n_m + n_c :])
        step, every = ctx.step, ctx.every
        summed = step.param_grads is not None
        g_params: Any = None
        pieces = []
        after = ctx.final
        for i in range(len(ctx.starts) - 1, -1, -1):
            part = slice(i * every, (i + 1) * every)
            steps = _map(operator.itemgetter(part), (ctx.xs, ctx.writes, ctx.kept, g_ys))
            first = torch.zeros(steps[0][0].shape[0], dtype=torch.bool)
            first[0] = True  # the step whose memory is the saved copy
            _dynamic_length((*steps, first))
            state = (after, ctx.starts[i], g_memory, g_carry)
            after, g_memory, g_carry, g_xs, d_params = run(
                programs()[1], step.backward, params, *state, (*steps, first)
            )
            pieces.append(g_xs)  # from the segment's last step to its first
            if not summed:
                d = tuple(p.sum(0) for p in d_params)
                g_params = d if g_params is None else tuple(map(torch.add, g_params, d))
        g_xs = _map(lambda a: torch.flip(a, (0,)), _cat(pieces))
        if summed:
            g_params = step.param_grads(params, ctx.xs, ctx.kept, tuple(g_xs))
        return input_grads(ctx.needs_input_grad, g_params, (*g_memory, *g_carry), g_xs)


def compiled_scan(
    step: ManualStep, params: Any, memory: Any, carry: Any, xs: Any, every: int
) -> tuple[Any, Any, Any]:
    """``(memory, carry, ys)`` of ``step``, its forward and backward segments compiled whole."""
    return _memory_scan_torch._apply(_CompiledScan, step, params, memory, carry, xs, every)
