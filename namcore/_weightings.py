"""Validation shared by :mod:`namcore.ntm` and :mod:`namcore.dnc`, and their shared access.

A :class:`Call` holds what one public call has found out about its arguments (name,
namespace, backend, dtype) and checks shapes and concrete values against it; the
validated content addressing, read and write serve both families.
"""

from __future__ import annotations

from typing import Any

from namcore import _validation as _v
from namcore import backends as _backends
from namcore._agnostic import ntm as _ntm
from namcore._typing import Array, Namespace

__all__ = [
    "INF",
    "Call",
    "check_memory",
    "check_scalar_type",
    "check_shift_weights",
    "check_weighting",
    "check_weights_1d",
    "content",
    "read",
    "write",
]

INF = float("inf")


class Call:
    """The validation state of one call: function name, namespace, backend, dtype."""

    def __init__(self, func: str, arrays: dict[str, Any]) -> None:
        self.func = func
        present = _v.array_arguments(**arrays)
        self.xp: Namespace = _v.namespace(func, **present)
        for name, x in present.items():
            _v.check_float(func, name, x, self.xp)
        self.backend = _backends.for_namespace(self.xp)
        self.backend.check_same_device(func, present)
        self.dtype = self.xp.result_type(*present.values())

    def array(self, name: str, x: Array, ndim: int, layout: str) -> None:
        """``x`` has at least ``ndim`` axes (``layout`` describes them)."""
        _v.check_min_ndim(self.func, name, x, ndim, layout)

    def axis(
        self,
        name: str,
        x: Array,
        axis: int,
        expected: int | None,
        meaning: str,
        other: str,
        other_shape: Any,
    ) -> None:
        """``x.shape[axis] == expected`` (unknown sizes pass)."""
        got = x.shape[axis]
        if got is not None and expected is not None and got != expected:
            raise ValueError(
                f"{self.func}: `{name}` has {meaning} = {got} (shape {tuple(x.shape)}), but "
                f"`{other}` of shape {tuple(other_shape)} expects {expected}"
            )

    def values_in(self, name: str, x: Array, low: float, high: float) -> None:
        """Concrete values of the array ``x`` lie in ``[low, high]``."""
        _v.values_in(self.func, name, x, low, high, self.backend)

    def scalar(
        self, name: str, p: Array | float, batch: _v.Shape, low: float, high: float
    ) -> Array | float:
        """A per-memory parameter: a Python number or an array broadcasting to ``batch``."""
        per = "probability" if (low, high) == (0.0, 1.0) else "value"
        return _v.bounded(
            self.func,
            name,
            p,
            xp=self.xp,
            batch=batch,
            dtype=self.dtype,
            backend=self.backend,
            low=low,
            high=high,
            per=per,
        )

    def batch(self, **shapes: Any) -> _v.Shape:
        """The broadcast batch shape of the named leading shapes."""
        return _v.broadcast_shapes(self.func, **{k: tuple(s) for k, s in shapes.items()})


def check_scalar_type(func: str, name: str, p: object) -> None:
    """Python numbers and arrays only (a list or a bool gets a clear ``TypeError``)."""
    if isinstance(p, bool) or isinstance(p, list | tuple):
        raise TypeError(
            f"{func}: `{name}` must be a Python float or an array of the batch shape, "
            f"got {type(p).__name__}"
        )


def check_memory(call: Call, memory: Array) -> None:
    call.array("memory", memory, 2, "(..., N, W)")


def check_weighting(call: Call, name: str, w: Array, memory_like: Array, other: str) -> None:
    """``w (..., N)`` in [0, 1] with ``N`` the cells of ``memory_like (..., N, *)``."""
    call.array(name, w, 1, "(..., N)")
    call.axis(name, w, -1, memory_like.shape[-2], "N (cells)", other, memory_like.shape)
    call.values_in(name, w, 0.0, 1.0)


def check_shift_weights(call: Call, s: Array) -> None:
    call.array("shift", s, 1, "(..., 3)")
    if s.shape[-1] is not None and s.shape[-1] != 3:
        raise ValueError(
            f"{call.func}: `shift` must have 3 entries on its last axis (the weights of "
            f"the shifts -1, 0, +1), got shape {tuple(s.shape)}"
        )
    call.values_in("shift", s, 0.0, 1.0)


def check_weights_1d(call: Call, name: str, w: Array) -> None:
    call.array(name, w, 1, "(..., N)")
    call.values_in(name, w, 0.0, 1.0)


def content(call: Call, memory: Array, key: Array, strength: Array | float, eps: float) -> Array:
    check_memory(call, memory)
    call.array("key", key, 1, "(..., W)")
    call.axis("key", key, -1, memory.shape[-1], "W (cell width)", "memory", memory.shape)
    batch = call.batch(memory=memory.shape[:-2], key=key.shape[:-1])
    beta = call.scalar("strength", strength, batch, 0.0, INF)
    eps = _v.check_eps(call.func, eps)
    return _ntm.content_address(memory, key, beta, eps=eps, xp=call.xp)


def read(call: Call, memory: Array, w: Array) -> Array:
    check_memory(call, memory)
    check_weighting(call, "w", w, memory, "memory")
    call.batch(memory=memory.shape[:-2], w=w.shape[:-1])
    return _ntm.read(memory, w, xp=call.xp)


def write(call: Call, memory: Array, w: Array, erase: Array, add: Array) -> Array:
    check_memory(call, memory)
    check_weighting(call, "w", w, memory, "memory")
    for name, x in (("erase", erase), ("add", add)):
        call.array(name, x, 1, "(..., W)")
        call.axis(name, x, -1, memory.shape[-1], "W (cell width)", "memory", memory.shape)
    call.values_in("erase", erase, 0.0, 1.0)
    call.batch(memory=memory.shape[:-2], w=w.shape[:-1], erase=erase.shape[:-1], add=add.shape[:-1])
    return _ntm.write(memory, w, erase, add)
