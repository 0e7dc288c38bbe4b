"""The test matrix: which array libraries (and modes) the ``xp`` fixture runs on."""

from __future__ import annotations

import enum
import os
from typing import Any

import numpy as np

from namcore import backends as _backends
from namcore._typing import Device, Namespace

__all__ = ["ENV_VAR", "ReadOnlyNumPy", "XPBackend", "selected_backends", "setup_backend"]

#: Comma-separated XPBackend values that narrow the matrix, e.g. ``numpy,torch``.
ENV_VAR = "NAMCORE_TEST_BACKENDS"


class XPBackend(enum.Enum):
    """One column of the test matrix: a library, possibly with a mode or device.

    The ``:tag`` suffixes keep members that share a library distinct.
    """

    NUMPY = "numpy"
    NUMPY_READONLY = "numpy:readonly"
    ARRAY_API_STRICT = "array_api_strict"
    TORCH = "torch"
    JAX = "jax"
    JAX_JIT = "jax:jit"
    CUPY = "cupy"
    NDONNX = "ndonnx"
    DASK = "dask"
    TORCH_GPU = "torch:gpu"
    JAX_GPU = "jax:gpu"

    @property
    def library(self) -> str:
        """The importable library behind this member."""
        return self.value.split(":", 1)[0]

    @property
    def backend_name(self) -> str:
        """The matching :mod:`namcore.backends` name."""
        return self.library

    @property
    def on_gpu(self) -> bool:
        """Whether this member runs its library on a GPU rather than the CPU."""
        return self.value.endswith(":gpu")

    @property
    def is_jit(self) -> bool:
        """Whether tests on this member run the functions under ``jax.jit``."""
        return self in (XPBackend.JAX_JIT, XPBackend.JAX_GPU)


def selected_backends() -> list[XPBackend]:
    """All members, or those named in ``$NAMCORE_TEST_BACKENDS``."""
    wanted = os.environ.get(ENV_VAR, "").strip()
    if not wanted:
        return list(XPBackend)
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    known = {b.value: b for b in XPBackend}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{ENV_VAR} names unknown backends {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


class ReadOnlyNumPy:
    """The NumPy namespace, except that ``asarray`` returns read-only arrays.

    Any in-place write to an input then raises, which catches mutation without JAX.

    Examples
    --------
    >>> from namcore import backends
    >>> xp = ReadOnlyNumPy(backends.get("numpy").namespace())
    >>> x = xp.asarray([1.0, 2.0])
    >>> x += 1
    Traceback (most recent call last):
    ...
    ValueError: output array is read-only
    """

    def __init__(self, xp: Namespace) -> None:
        self._xp = xp
        self.__name__ = xp.__name__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def asarray(self, obj: Any, /, **kwargs: Any) -> np.ndarray:
        out = np.array(self._xp.asarray(obj, **kwargs), copy=True)
        out.flags.writeable = False
        return out


def setup_backend(member: XPBackend) -> tuple[Namespace, Device]:
    """Import and configure a member's library; return ``(namespace, device)``.

    The library's backend does the work (:meth:`namcore.backends.Backend.setup_for_testing`:
    float64 on, the CPU or the member's GPU); ``numpy:readonly`` then wraps the
    namespace in :class:`ReadOnlyNumPy`. Raises ``LookupError`` with a human reason
    when the member cannot run here (not installed, or no GPU); the fixture turns that
    into a visible skip.

    Examples
    --------
    >>> from namcore.testing import XPBackend, setup_backend
    >>> xp, device = setup_backend(XPBackend.NUMPY)
    >>> xp.asarray([1.0, 2.0], device=device).shape
    (2,)
    """
    backend = _backends.get(member.backend_name)
    xp, device = backend.setup_for_testing(gpu=member.on_gpu)
    if member is XPBackend.NUMPY_READONLY:
        xp = ReadOnlyNumPy(xp)
    return xp, device
