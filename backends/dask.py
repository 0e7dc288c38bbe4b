"""Dask backend: chunked, lazy arrays that run out of core or on a cluster.

Everything stays lazy: namcore never calls ``compute`` on a Dask array (input checks
that need values are skipped, as under ``jax.jit``). The standard path works as-is on
arrays chunked along batch and heads and, for ``write``/``read`` and non-causal
attention, along the sequence too (the memory is a sum, so Dask reduces the matrix
product across sequence chunks). Causal attention, and attention with erase or decay,
have a fast path: each batch/head block runs NumPy's chunked loop through
``blockwise``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from namcore import _compat
from namcore._typing import Array, Device, Namespace

from ._base import Backend

__all__ = ["DaskBackend"]


class DaskBackend(Backend):
    """Dask through ``array_api_compat.dask.array``."""

    name = "dask"
    module = "dask"

    def namespace(self) -> Namespace:
        return _compat.dask_namespace()

    def devices(self) -> list[Device]:
        return ["cpu"]

    def from_numpy(
        self, a: np.ndarray, *, dtype: str | None = None, device: Device = None
    ) -> Array:
        import dask.array as da

        out = np.array(a, copy=True)
        if dtype is not None:
            out = out.astype(dtype)
        return da.from_array(out, chunks=out.shape or ())

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x.compute())

    def concrete_values(self, x: Array) -> np.ndarray | None:
        return None  # reading values would compute the whole graph

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
        # Fast path: causal attention is independent per batch/head block, so each
        # block runs NumPy's in-place chunked loop (see _per_block).
        def kernel(
            numpy: Backend,
            q_b: Array,
            k_b: Array,
            v_b: Array,
            s_b: Array,
            w: Array | None = None,
            pr: Array | None = None,
        ) -> tuple[Array, Array]:
            return numpy.attention_causal(q_b, k_b, v_b, w, pr, s_b, chunk_size, xp)

        return _per_block(kernel, qh, kh, v, state, {"w": w, "pr": pr})

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
        # Fast path: erase and decay run NumPy's chunk form per batch/head block.
        def kernel(
            numpy: Backend,
            q_b: Array,
            k_b: Array,
            v_b: Array,
            s_b: Array,
            w: Array | None = None,
            e: Array | None = None,
            log_decay: Array | None = None,
            reset: Array | None = None,
            pr: Array | None = None,
        ) -> tuple[Array, Array]:
            return numpy.attention_delta(
                q_b, k_b, v_b, w, e, log_decay, reset, pr, s_b, causal, chunk_size, xp
            )

        return _per_block(
            kernel,
            qh,
            kh,
            v,
            state,
            {"w": w, "e": e, "log_decay": log_decay, "reset": reset, "pr": pr},
        )


#: ``kernel(numpy_backend, q, k, v, state, **per_position) -> (y, memory)`` on NumPy blocks.
_BlockKernel = Callable[..., tuple[Array, Array]]


def _per_block(
    kernel: _BlockKernel,
    qh: Array,
    kh: Array,
    v: Array,
    state: Array,
    per_position: dict[str, Array | None],
) -> tuple[Array, Array]:
    """Run ``kernel(NumPyBackend, q, k, v, state, **per_position)`` on each batch block.

    Attention is independent per batch/head block. The sequence and feature axes are
    gathered into one chunk (a scan along the sequence cannot split it); the batch axes
    keep the chunks of the inputs. ``per_position`` maps keyword names to (..., L)
    arrays or ``None`` (left out). Returns ``(y (..., L, d_v), memory (..., d_v, d_k))``.
    """
    import dask.array as da

    from .numpy import NumPyBackend

    numpy = NumPyBackend()
    batch = state.shape[:-2]
    nb = len(batch)
    dtype = state.dtype
    qh, kh, v = (da.broadcast_to(a, (*batch, *a.shape[-2:])) for a in (qh, kh, v))
    length = qh.shape[-2]
    given = {
        name: da.broadcast_to(a, (*batch, length))
        for name, a in per_position.items()
        if a is not None
    }
    chunks = _batch_chunks((qh, kh, v, state), nb)

    def block(a: Array, vector: bool) -> Array:
        tail = (-1, -1) if vector else (-1,)
        return a.rechunk((*chunks, *tail))

    ins = [block(qh, True), block(kh, True), block(v, True), block(state, True)]
    ins += [block(a, False) for a in given.values()]
    names = tuple(given)

    def run(q_b: np.ndarray, k_b: np.ndarray, v_b: np.ndarray, s_b: np.ndarray, *rest: Any) -> Any:
        y, memory = kernel(numpy, q_b, k_b, v_b, s_b, **dict(zip(names, rest, strict=True)))
        flat = (*y.shape[:-2], -1)
        return np.concatenate([np.reshape(y, flat), np.reshape(memory, flat)], axis=-1)

    d_v, d_k = state.shape[-2], state.shape[-1]
    b = tuple(f"b{i}" for i in range(nb))
    indices = [(*b, "L", "K"), (*b, "L", "K"), (*b, "L", "V"), (*b, "V", "K")]
    indices += [(*b, "L")] * len(names)
    packed = da.blockwise(
        run,
        (*b, "z"),
        *[x for pair in zip(ins, indices, strict=True) for x in pair],
        new_axes={"z": length * d_v + d_v * d_k},
        dtype=dtype,
        concatenate=True,
        meta=np.empty((0,) * (nb + 1), dtype=dtype),
    )
    y = da.reshape(packed[..., : length * d_v], (*batch, length, d_v))
    memory = da.reshape(packed[..., length * d_v :], (*batch, d_v, d_k))
    return y, memory


def _batch_chunks(arrays: tuple[Array, ...], nb: int) -> tuple[tuple[int, ...], ...]:
    """The finest batch chunking among ``arrays`` (each axis taken from the array that
    splits it most), so no input is gathered into a bigger block than it had."""
    chunks = []
    for axis in range(nb):
        chunks.append(max((a.chunks[axis] for a in arrays), key=len))
    return tuple(chunks)
