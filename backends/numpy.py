"""NumPy backend: the reference library, always installed."""

from __future__ import annotations

from typing import Any

import numpy as np

from namcore._agnostic import memory as _memory

from ._base import Backend

__all__ = ["NumPyBackend"]


class NumPyBackend(Backend):
    """NumPy through ``array_api_compat.numpy``."""

    name = "numpy"
    module = "numpy"

    def namespace(self) -> Any:
        import array_api_compat.numpy as xp

        return xp

    def devices(self) -> list[Any]:
        return ["cpu"]

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def concrete_values(self, x: Any) -> np.ndarray | None:
        return np.asarray(x)

    def write(self, M, k, v, p_write, p_erase, normalize, eps, xp):
        # Fast path: the rank-1 update is formed in a fresh temporary and M is added
        # into it in place, saving one (…, d_v, d_k) allocation. Inputs are untouched.
        kh = _memory.unit(k, axis=-1, eps=eps, xp=xp) if normalize else k
        u = _memory.update_direction(M, kh, v, p_write, p_erase, xp=xp)
        out = np.multiply(u[..., :, None], kh[..., None, :])
        if out.shape == np.broadcast_shapes(out.shape, M.shape) and out.dtype == np.result_type(
            out, M
        ):
            out += M
            return out
        return M + out
