"""CuPy backend, imported only when CuPy arrays are seen; never imports torch."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from namcore import _compat
from namcore._agnostic import memory as _memory
from namcore._typing import Array, Device, Namespace

from ._base import Backend, device_mismatch

__all__ = ["CuPyBackend"]

_FLOATS = ("float16", "float32", "float64")


@functools.cache
def _fused_update() -> Any:
    """``out = m + u * k`` as one CuPy kernel: a single pass over the memory ``m``.

    Broadcasting ``u[..., :, None]`` against ``k[..., None, :]`` inside the kernel means
    the rank-1 term ``u k̂ᵀ`` is never stored: the standard path writes it to a
    temporary as large as ``M`` and then reads it back.
    """
    import cupy

    return cupy.ElementwiseKernel("T m, T u, T k", "T out", "out = m + u * k", "namcore_nam_write")


class CuPyBackend(Backend):
    """CuPy through ``array_api_compat.cupy``."""

    name = "cupy"
    module = "cupy"

    def namespace(self) -> Namespace:
        return _compat.cupy_namespace()

    def devices(self) -> list[Device]:
        try:
            import cupy

            return [cupy.cuda.Device(i) for i in range(cupy.cuda.runtime.getDeviceCount())]
        except Exception:  # CuPy installed, but no driver or no GPU
            return []

    def testing_device(self, *, gpu: bool = False) -> Device:
        # CuPy runs on GPUs only: its tests always take GPU 0, whatever ``gpu`` says.
        import cupy

        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            raise LookupError(f"cupy has no usable GPU ({type(exc).__name__})") from None
        if count == 0:
            raise LookupError("cupy sees no GPU")
        return cupy.cuda.Device(0)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.get()

    def concrete_values(self, x: Array) -> np.ndarray | None:
        # Reading values would synchronise the GPU on every call: skip value checks.
        return None

    def check_same_device(self, func: str, arrays: dict[str, Array]) -> None:
        device_mismatch(func, {name: x.device.id for name, x in arrays.items()})

    def write(
        self,
        M: Array,
        k: Array,
        v: Array,
        p_write: Array | float,
        p_erase: Array | float,
        normalize: bool,
        eps: float,
        xp: Namespace,
    ) -> Array:
        # Fast path: the erase read M k̂ is one matmul (cuBLAS); the update M + u k̂ᵀ is
        # one fused elementwise kernel. Mixed dtypes fall back to the standard path.
        kh = _memory.unit(k, axis=-1, eps=eps, xp=xp) if normalize else k
        u = _memory.update_direction(M, kh, v, p_write, p_erase, xp=xp)
        if not (M.dtype == u.dtype == kh.dtype and M.dtype.name in _FLOATS):
            return _memory.add_rank1(M, u, kh)
        return _fused_update()(M, u[..., :, None], kh[..., None, :])
