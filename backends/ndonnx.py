"""ndonnx backend: the same functions, called on ndonnx arrays, build an ONNX graph.

ndonnx arrays are either *constants* (built from values with ``ndonnx.asarray``; every
operation on them also computes the value, so they behave like eager arrays) or
*arguments* (``ndonnx.argument``: symbolic graph inputs, possibly with dynamic
dimensions). Calling namcore on arguments records the computation; ``ndonnx.build``
turns it into an ONNX model that onnxruntime runs. See :mod:`namcore.export`.
"""

from __future__ import annotations

import numpy as np

from namcore._agnostic import attention as _attention
from namcore._agnostic import delta as _delta
from namcore._typing import Array, Device, Namespace

from ._base import Backend

__all__ = ["NdonnxBackend"]


class NdonnxBackend(Backend):
    """ndonnx (itself an array-API namespace; no ``linalg`` extension)."""

    name = "ndonnx"
    module = "ndonnx"
    integer_index_assignment = False

    def namespace(self) -> Namespace:
        import ndonnx

        return ndonnx

    def supports_dtype(self, name: str) -> bool:
        # ndonnx names bfloat16 nowhere; float16 exists but onnxruntime's CPU kernels
        # lack MatMul for it in some versions, so it is supported as storage only.
        return name in ("float32", "float64", "float16")

    def from_numpy(
        self, a: np.ndarray, *, dtype: str | None = None, device: Device = None
    ) -> Array:
        import ndonnx

        out = ndonnx.asarray(np.array(a, copy=True))
        if dtype is not None:
            out = ndonnx.astype(out, self.dtype(dtype))
        return out

    def to_numpy(self, x: Array) -> np.ndarray:
        """The value of a constant array; ``ValueError`` for a symbolic (argument) one."""
        try:
            return np.asarray(x.unwrap_numpy())
        except ValueError:
            raise ValueError(
                "this ndonnx array is symbolic (built from ndonnx.argument) and "
                "has no value; build the graph with ndonnx.build and run it in "
                "onnxruntime to get one"
            ) from None

    def concrete_values(self, x: Array) -> np.ndarray | None:
        try:
            return self.to_numpy(x)
        except ValueError:  # a symbolic graph input: nothing to check
            return None

    def attention_causal(
        self,
        qh: Array,
        kh: Array,
        v: Array,
        w: Array | None,
        pr: Array | None,
        state: Array,
        chunk_size: int,
        xp: Namespace,
    ) -> tuple[Array, Array]:
        # ONNX graphs here have no loops (ndonnx has no control flow), and the chunked
        # scan needs concrete sizes. The parallel form needs neither: it is O(L²) for a
        # whole sequence, and exact and cheapest for a streaming step (L = 1).
        return _attention.causal_parallel(qh, kh, v, w, pr, state, xp=xp)

    def attention_delta(
        self,
        qh: Array,
        kh: Array,
        v: Array,
        w: Array | None,
        e: Array | None,
        log_decay: Array | None,
        reset: Array | None,
        pr: Array | None,
        state: Array,
        causal: bool,
        chunk_size: int,
        xp: Namespace,
    ) -> tuple[Array, Array]:
        # The whole sequence as one chunk: no loop in the graph (ndonnx has no control
        # flow), O(L²) like the parallel form above, and the cheapest streaming step.
        return _delta.chunked(
            qh,
            kh,
            v,
            w,
            e,
            log_decay,
            reset,
            pr,
            state,
            causal=causal,
            chunk_size=max(1, qh.shape[-2]),
            xp=xp,
            scan=self.scan,
        )
