"""The step functions that :meth:`Backend.scan` and :meth:`Backend.memory_scan` run.

A step is a plain function of one position; :class:`ManualStep` is a step that also
carries a backward derived by hand, which the differentiating backends use instead
of their autodiff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ManualStep", "MemoryStep", "ScanStep"]

#: ``f(carry, x) -> (carry, y)``, the step function of :meth:`Backend.scan`.
ScanStep = Callable[[Any, Any], tuple[Any, Any]]
#: ``f(params, memory, carry, x) -> (memory, carry, y, writes)``, the step function of
#: :meth:`Backend.memory_scan`.
MemoryStep = Callable[[Any, Any, Any, Any], tuple[Any, Any, Any, Any]]


@dataclass(frozen=True)
class ManualStep:
    """A :data:`MemoryStep` with a backward derived by hand.

    ``forward(params, memory, carry, x) -> (memory, carry, y, writes, residuals)`` is
    the step plus ``residuals``, a tuple of the intermediate arrays its backward
    needs (O(d) each: not the memory). ``backward(params, x, memory, memory_after,
    residuals, g_memory, g_carry, g_y) -> (g_params, g_memory, g_carry, g_x)`` maps
    the gradients reaching the step's outputs to those of its inputs, given the
    memory before and after the step; ``g_x`` holds ``None`` for inputs that are not
    floating-point. Both are written against the array API standard. Called, it is
    the plain step, so any backend can run it; JAX and PyTorch differentiate
    :meth:`Backend.memory_scan` with ``backward`` instead of their autodiff.

    ``param_grads(params, xs, residuals, g_xs) -> g_params``, optional, gives the
    parameters' gradients summed over all steps in one go, from the inputs, the
    residuals and the inputs' gradients of every step (each stacked on a new axis 0;
    the residuals that are ``None`` stay ``None``). A step whose parameters enter
    only through such products (LSAM's ``h W_h``, whose gradient is
    ``Σ_t h_tᵀ ḡ_t``) then does one large product after the loop instead of one small
    one per step. With it, ``backward`` returns ``None`` for ``g_params``.
    """

    forward: Callable[..., tuple[Any, Any, Any, Any, Any]]
    backward: Callable[..., tuple[Any, Any, Any, Any]]
    param_grads: Callable[..., Any] | None = None

    def __call__(self, params: Any, memory: Any, carry: Any, x: Any) -> tuple[Any, Any, Any, Any]:
        memory, carry, y, writes, _ = self.forward(params, memory, carry, x)
        return memory, carry, y, writes
