"""CuPy backend, imported only when CuPy arrays are seen; never imports torch."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Backend

__all__ = ["CuPyBackend"]


class CuPyBackend(Backend):
    """CuPy through ``array_api_compat.cupy``."""

    name = "cupy"
    module = "cupy"

    def namespace(self) -> Any:
        import array_api_compat.cupy as xp

        return xp

    def devices(self) -> list[Any]:
        try:
            import cupy

            return [cupy.cuda.Device(i) for i in range(cupy.cuda.runtime.getDeviceCount())]
        except Exception:  # CuPy installed, but no driver or no GPU
            return []

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.get()

    def concrete_values(self, x: Any) -> np.ndarray | None:
        # Reading values would synchronise the GPU on every call: skip value checks.
        return None
