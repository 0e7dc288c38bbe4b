"""NumPy backend: the reference library, always installed.

Examples
--------
>>> import numpy as np
>>> from namcore import backends
>>> numpy = backends.get("numpy")
>>> numpy.devices(), numpy.jit_compiles
(['cpu'], False)
>>> numpy.from_numpy(np.arange(3), dtype="float32")
array([0., 1., 2.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from namcore import _compat
from namcore._agnostic import delta as _delta
from namcore._agnostic import memory as _memory
from namcore._typing import Array, Device, Namespace

from ._base import Backend

__all__ = ["NumPyBackend"]


class NumPyBackend(Backend):
    """NumPy through ``array_api_compat.numpy``."""

    name = "numpy"
    module = "numpy"

    def namespace(self) -> Namespace:
        return _compat.numpy_namespace()

    def devices(self) -> list[Device]:
        return ["cpu"]

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def concrete_values(self, x: Array) -> np.ndarray | None:
        return np.asarray(x)

    def unit(self, x: Array, axis: int, eps: float, xp: Namespace) -> Array:
        # Fast path: plain NumPy calls, skipping array-api-compat's generic clip wrapper
        # (most of the fixed cost of a small write).
        acc = x.astype(np.float32) if x.dtype.itemsize < 4 else x
        norm = np.sqrt(np.maximum(np.sum(acc * acc, axis=axis, keepdims=True), eps * eps))
        return (acc / norm).astype(x.dtype, copy=False)

    def read(
        self, M: Array, q: Array, p_read: Array | float, normalize: bool, eps: float, xp: Namespace
    ) -> Array:
        # Fast path: plain NumPy calls (and the NumPy unit above).
        qh = self.unit(q, -1, eps, xp) if normalize else q
        out = np.matmul(M, qh[..., None])[..., 0]
        return _memory.scale(p_read, out)

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
        # Fast path: the rank-1 update is formed in a fresh temporary and M is added
        # into it in place, saving one (…, d_v, d_k) allocation. Inputs are untouched.
        kh = self.unit(k, -1, eps, xp) if normalize else k
        u = _memory.update_direction(M, kh, v, p_write, p_erase, xp=xp)
        out = np.multiply(u[..., :, None], kh[..., None, :])
        if out.shape == np.broadcast_shapes(out.shape, M.shape) and out.dtype == np.result_type(
            out, M
        ):
            out += M
            return out
        return M + out

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
        # Fast path: walk the chunks in a Python loop and update the running memory in
        # place, the fastest form measured on CPUs (docs/attention.md, "Algorithms";
        # docs/benchmarks/attention.md).
        length, c = qh.shape[-2], max(1, min(chunk_size, qh.shape[-2]))
        memory = np.array(state, copy=True)
        out = np.empty((*memory.shape[:-2], length, v.shape[-1]), dtype=memory.dtype)
        kw = kh if w is None else kh * w[..., None]
        tril = np.tril(np.ones((c, c), dtype=memory.dtype))
        for start in range(0, length, c):
            stop = min(start + c, length)
            q_c, k_c, v_c = qh[..., start:stop, :], kw[..., start:stop, :], v[..., start:stop, :]
            scores = np.matmul(q_c, np.swapaxes(k_c, -1, -2))
            scores *= tril[: stop - start, : stop - start]
            y_c = np.matmul(scores, v_c)
            y_c += np.matmul(q_c, np.swapaxes(memory, -1, -2))
            out[..., start:stop, :] = y_c
            memory += np.matmul(np.swapaxes(v_c, -1, -2), k_c)
        if pr is not None:
            out *= pr[..., None]
        return out, memory

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
        # Fast path: the chunk-parallel part is the standard one; the pass over the
        # chunks is a Python loop that updates the memory in place and writes each
        # chunk's output straight into its slice of the result.
        chunks = _delta.prepare(
            qh,
            kh,
            v,
            w,
            e,
            log_decay,
            reset,
            causal=causal,
            chunk_size=chunk_size,
            xp=self.namespace(),
        )
        memory = np.array(state, copy=True)
        n, c = chunks.u.shape[-3], chunks.u.shape[-2]
        batch, d_v = memory.shape[:-2], memory.shape[-2]
        out = np.empty((*batch, n, c, d_v), dtype=memory.dtype) if causal else None
        q_chunks, y_chunks = chunks.q, chunks.y  # None unless causal
        update = np.empty_like(memory)
        u_buffer = np.empty((*batch, c, d_v), dtype=memory.dtype)
        for i in range(n):
            memory_t = np.swapaxes(memory, -1, -2)
            u = chunks.u[..., i, :, :]
            if chunks.w is not None:
                np.matmul(chunks.w[..., i, :, :], memory_t, out=u_buffer)
                u = np.subtract(u, u_buffer, out=u_buffer)
            if out is not None and q_chunks is not None and y_chunks is not None:
                y = out[..., i, :, :]
                np.matmul(q_chunks[..., i, :, :], memory_t, out=y)
                y += y_chunks[..., i, :, :]
            if chunks.carry is not None:
                memory *= chunks.carry[..., i, None, None]
            np.matmul(np.swapaxes(u, -1, -2), chunks.k[..., i, :, :], out=update)
            memory += update
        if out is not None:
            y = np.reshape(out, (*batch, n * c, d_v))[..., : qh.shape[-2], :]
        else:
            y = np.matmul(qh, np.swapaxes(memory, -1, -2))
        if pr is not None:
            y = y * pr[..., None]
        return y, memory
