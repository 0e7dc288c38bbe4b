"""The test matrix: which array libraries (and modes) the ``xp`` fixture runs on."""

from __future__ import annotations

import enum
import importlib.util
import os
from typing import Any

import numpy as np

__all__ = ["ENV_VAR", "XPBackend", "selected_backends", "setup_backend"]

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


class _ReadOnlyNumPy:
    """The NumPy namespace, except that ``asarray`` returns read-only arrays.

    Any in-place write to an input then raises, which catches mutation without JAX.
    """

    def __init__(self, xp: Any) -> None:
        self._xp = xp
        self.__name__ = xp.__name__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def asarray(self, obj: Any, /, **kwargs: Any) -> Any:
        out = np.array(self._xp.asarray(obj, **kwargs), copy=True)
        out.flags.writeable = False
        return out


def setup_backend(member: XPBackend) -> tuple[Any, Any]:
    """Import and configure a member's library; return ``(namespace, device)``.

    Raises ``LookupError`` with a human reason when the member cannot run here (not
    installed, or no GPU); the fixture turns that into a visible skip.
    """
    if importlib.util.find_spec(member.library) is None:
        raise LookupError(f"{member.library} is not installed")
    if member in (XPBackend.NUMPY, XPBackend.NUMPY_READONLY):
        import array_api_compat.numpy as xp

        return (xp if member is XPBackend.NUMPY else _ReadOnlyNumPy(xp)), "cpu"
    if member is XPBackend.ARRAY_API_STRICT:
        import array_api_strict as xp

        return xp, xp.Device("CPU_DEVICE")
    if member in (XPBackend.TORCH, XPBackend.TORCH_GPU):
        import array_api_compat.torch as xp
        import torch

        if member is XPBackend.TORCH_GPU:
            if not torch.cuda.is_available():
                raise LookupError("torch sees no CUDA device")
            return xp, torch.device("cuda")
        return xp, torch.device("cpu")
    if member in (XPBackend.JAX, XPBackend.JAX_JIT, XPBackend.JAX_GPU):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)  # float64 oracles need it
        if member is XPBackend.JAX_GPU:
            try:
                return jnp, jax.devices("gpu")[0]
            except RuntimeError:
                raise LookupError("jax sees no GPU") from None
        return jnp, jax.devices("cpu")[0]
    if member is XPBackend.CUPY:
        import array_api_compat.cupy as xp
        import cupy

        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            raise LookupError(f"cupy has no usable GPU ({type(exc).__name__})") from None
        if count == 0:
            raise LookupError("cupy sees no GPU")
        return xp, cupy.cuda.Device(0)
    if member is XPBackend.NDONNX:
        import ndonnx as xp

        return xp, xp.__array_namespace_info__().default_device()
    if member is XPBackend.DASK:
        import array_api_compat.dask.array as xp

        return xp, "cpu"
    raise LookupError(f"no setup for {member}")  # pragma: no cover
