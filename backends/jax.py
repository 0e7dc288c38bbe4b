"""JAX backend, imported only when JAX arrays are seen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._base import Backend

__all__ = ["JAXBackend"]


class JAXBackend(Backend):
    """JAX through ``jax.numpy`` (itself an array-API namespace)."""

    name = "jax"
    module = "jax"

    def namespace(self) -> Any:
        import jax.numpy as jnp

        return jnp

    def devices(self) -> list[Any]:
        import jax

        return list(jax.devices())

    def supports_dtype(self, name: str) -> bool:
        import jax

        if name in ("float64", "int64", "complex128"):
            return bool(jax.config.jax_enable_x64)
        return hasattr(self.namespace(), name)

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        import jax
        import jax.numpy as jnp

        out = jnp.asarray(a, dtype=None if dtype is None else self.dtype(dtype))
        return out if device is None else jax.device_put(out, device)

    def to_numpy(self, x: Any) -> np.ndarray:
        out = np.asarray(x)
        return out.astype(np.float32) if out.dtype.itemsize < 4 and out.dtype.kind == "V" else out

    def concrete_values(self, x: Any) -> np.ndarray | None:
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
        if any(d.platform != "cpu" for d in x.devices()):
            return None
        return np.asarray(x)

    #: XLA's small batched products favour chunks of 32 for erase/decay on CPUs
    #: (forward + backward at L = 1K-4K, d = 64: 16-35% faster than 16 or 64).
    delta_chunk_size = 32

    def jit(self, f: Callable[..., Any]) -> Callable[..., Any]:
        import jax

        return jax.jit(f)

    def scan(
        self,
        f: Callable[[Any, Any], tuple[Any, Any]],
        init: Any,
        xs: Any,
        *,
        length: int | None = None,
    ) -> tuple[Any, Any]:
        import jax

        return jax.lax.scan(f, init, xs, length=length)
