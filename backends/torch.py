"""PyTorch backend (CPU and CUDA), imported only when torch arrays are seen."""

from __future__ import annotations

from typing import Any

import numpy as np

from namcore._agnostic import memory as _memory

from ._base import Backend, device_mismatch

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """PyTorch through ``array_api_compat.torch``."""

    name = "torch"
    module = "torch"

    def namespace(self) -> Any:
        import array_api_compat.torch as xp

        return xp

    def devices(self) -> list[Any]:
        import torch

        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return found

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        import torch

        out = torch.from_numpy(np.array(a, copy=True))
        if dtype is not None:
            out = out.to(self.dtype(dtype))
        return out if device is None else out.to(device)

    def to_numpy(self, x: Any) -> np.ndarray:
        import torch

        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.to(torch.float32)
        return x.cpu().numpy()

    def concrete_values(self, x: Any) -> np.ndarray | None:
        import torch

        if torch.compiler.is_compiling() or x.device.type != "cpu":
            return None
        try:  # fails inside torch.func transforms (vmap, grad): no values to check
            return x.detach().numpy()
        except (RuntimeError, TypeError):
            return None

    def check_same_device(self, func, arrays):
        # Zero-dimensional CPU tensors mix with CUDA tensors in PyTorch: leave them out.
        devices = {name: x.device for name, x in arrays.items()
                   if x.ndim or x.device.type != "cpu"}
        device_mismatch(func, devices)

    def write(self, M, k, v, p_write, p_erase, normalize, eps, xp):
        # Fast path: one fused multiply-add (addcmul) forms M + u k̂ᵀ.
        import torch

        kh = _memory.unit(k, axis=-1, eps=eps, xp=xp) if normalize else k
        u = _memory.update_direction(M, kh, v, p_write, p_erase, xp=xp)
        return torch.addcmul(M, u.unsqueeze(-1), kh.unsqueeze(-2))
