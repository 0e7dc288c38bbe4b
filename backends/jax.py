"""JAX backend, imported only when JAX arrays are seen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from namcore._typing import Array, Device, Namespace

from ._base import Backend
from ._steps import ManualStep, MemoryStep, ScanStep

__all__ = ["JAXBackend"]


class JAXBackend(Backend):
    """JAX through ``jax.numpy`` (itself an array-API namespace)."""

    name = "jax"
    module = "jax"

    def namespace(self) -> Namespace:
        import jax.numpy as jnp

        return jnp

    def devices(self) -> list[Device]:
        import jax

        return list(jax.devices())

    def supports_dtype(self, name: str) -> bool:
        import jax

        dtype = getattr(self.namespace(), name, None)
        # without x64, float64 (int64, complex128) arrays come out in 32 bits
        return dtype is not None and jax.dtypes.canonicalize_dtype(dtype) == np.dtype(dtype)

    def enable_float64(self) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)

    def testing_device(self, *, gpu: bool = False) -> Device:
        import jax

        try:
            return jax.devices("gpu" if gpu else "cpu")[0]
        except RuntimeError:
            raise LookupError(f"jax sees no {'GPU' if gpu else 'CPU'}") from None

    def from_numpy(
        self, a: np.ndarray, *, dtype: str | None = None, device: Device = None
    ) -> Array:
        import jax
        import jax.numpy as jnp

        out = jnp.asarray(a, dtype=None if dtype is None else self.dtype(dtype))
        return out if device is None else jax.device_put(out, device)

    def to_numpy(self, x: Array) -> np.ndarray:
        out = np.asarray(x)
        return out.astype(np.float32) if out.dtype.itemsize < 4 and out.dtype.kind == "V" else out

    def concrete_values(self, x: Array) -> np.ndarray | None:
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
        if any(d.platform != "cpu" for d in x.devices()):
            return None
        return np.asarray(x)

    #: XLA's small batched products favour chunks of 32 for erase/decay on CPUs
    #: (forward + backward at L = 1K-4K, d = 64: 16-35% faster than 16 or 64).
    delta_chunk_size = 32

    jit_compiles = True

    def jit(
        self, f: Callable[..., Any], *, static_argnums: Sequence[int] = ()
    ) -> Callable[..., Any]:
        import jax

        return jax.jit(f, static_argnums=tuple(static_argnums))

    def scan(
        self, f: ScanStep, init: Any, xs: Any, *, length: int | None = None
    ) -> tuple[Any, Any]:
        import jax

        return jax.lax.scan(f, init, xs, length=length)

    def sigmoid(self, x: Array, xp: Namespace) -> Array:
        # Fast path: XLA's logistic, one operation forwards and backwards.
        import jax

        return jax.nn.sigmoid(x)

    def linear(self, x: Array, w: Array, xp: Namespace) -> Array:
        # Fast path: one (rows, n) @ (n, m) product; XLA's CPU backend takes about
        # twice as long over the gradient of a product with several leading axes.
        if x.ndim <= 2:
            return xp.matmul(x, w)
        flat = xp.matmul(xp.reshape(x, (-1, x.shape[-1])), w)
        return xp.reshape(flat, (*x.shape[:-1], w.shape[-1]))

    #: The reversible backward is as fast as the plain one or faster once the stored
    #: memories reach a few MiB (NAM-TM at d_model 64: 1.4x; LSAM at 64: 0.9x).
    memory_saving_bytes = 8 * 2**20

    def memory_scan(
        self,
        step: MemoryStep,
        params: Any,
        memory: tuple[Any, ...],
        carry: Any,
        xs: tuple[Any, ...],
    ) -> tuple[Any, Any, Any]:
        # A custom_vjp whose backward rebuilds the memory, and runs the step's own
        # backward where it has one.
        if isinstance(step, ManualStep) and self.manual_backward:
            from ._memory_scan_jax import manual_scan

            return manual_scan(
                step, params, tuple(memory), tuple(carry), tuple(xs), self.memory_checkpoint_every
            )
        if not self.saves_memory(memory, xs):
            return super().memory_scan(step, params, memory, carry, xs)
        from ._memory_scan_jax import memory_scan

        return memory_scan(
            step, params, tuple(memory), carry, tuple(xs), self.memory_checkpoint_every
        )
