"""Dask backend: chunked, lazy arrays that run out of core or on a cluster.

Everything stays lazy: namcore never calls ``compute`` on a Dask array (input checks
that need values are skipped, as under ``jax.jit``). The standard path works as-is on
arrays chunked along batch and heads and, for ``write``/``read`` and non-causal
attention, along the sequence too (the memory is a sum, so Dask reduces the matrix
product across sequence chunks). Causal attention has a fast path: each batch/head
block runs NumPy's chunked loop through ``map_blocks``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Backend

__all__ = ["DaskBackend"]


class DaskBackend(Backend):
    """Dask through ``array_api_compat.dask.array``."""

    name = "dask"
    module = "dask"

    def namespace(self) -> Any:
        import array_api_compat.dask.array as xp

        return xp

    def devices(self) -> list[Any]:
        return ["cpu"]

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        import dask.array as da

        out = np.array(a, copy=True)
        if dtype is not None:
            out = out.astype(dtype)
        return da.from_array(out, chunks=out.shape or ())

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.compute())

    def concrete_values(self, x: Any) -> np.ndarray | None:
        return None  # reading values would compute the whole graph

    def attention_causal(self, qh, kh, v, w, pr, state, chunk_size, xp):
        # Fast path: causal attention is independent per batch/head block, so each
        # block runs NumPy's in-place chunked loop. The sequence and feature axes are
        # gathered into one chunk (a causal scan cannot split the sequence); the batch
        # axes keep the chunks of the inputs.
        import dask.array as da

        from .numpy import NumPyBackend

        kernel = NumPyBackend()
        batch = state.shape[:-2]
        nb = len(batch)
        dtype = state.dtype
        qh, kh, v = (da.broadcast_to(a, (*batch, *a.shape[-2:])) for a in (qh, kh, v))
        length = qh.shape[-2]
        w = None if w is None else da.broadcast_to(w, (*batch, length))
        pr = None if pr is None else da.broadcast_to(pr, (*batch, length))
        chunks = _batch_chunks((qh, kh, v, state), nb)

        def block(a: Any, vector: bool) -> Any:
            tail = (-1, -1) if vector else (-1,)
            return a.rechunk((*chunks, *tail))

        ins = [block(qh, True), block(kh, True), block(v, True), block(state, True)]
        ins += [block(a, False) for a in (w, pr) if a is not None]
        has_w, has_pr = w is not None, pr is not None

        def run(q_b, k_b, v_b, s_b, *rest):
            rest = list(rest)
            w_b = rest.pop(0) if has_w else None
            p_b = rest.pop(0) if has_pr else None
            y, memory = kernel.attention_causal(q_b, k_b, v_b, w_b, p_b, s_b, chunk_size, xp)
            flat = (*y.shape[:-2], -1)
            return np.concatenate([np.reshape(y, flat), np.reshape(memory, flat)], axis=-1)

        d_v, d_k = state.shape[-2], state.shape[-1]
        b = tuple(f"b{i}" for i in range(nb))
        indices = [(*b, "L", "K"), (*b, "L", "K"), (*b, "L", "V"), (*b, "V", "K")]
        indices += [(*b, "L")] * (has_w + has_pr)
        packed = da.blockwise(
            run, (*b, "z"), *[x for pair in zip(ins, indices, strict=True) for x in pair],
            new_axes={"z": length * d_v + d_v * d_k}, dtype=dtype, concatenate=True,
            meta=np.empty((0,) * (nb + 1), dtype=dtype),
        )
        y = da.reshape(packed[..., :length * d_v], (*batch, length, d_v))
        memory = da.reshape(packed[..., length * d_v:], (*batch, d_v, d_k))
        return y, memory


def _batch_chunks(arrays: tuple[Any, ...], nb: int) -> tuple[Any, ...]:
    """The finest batch chunking among ``arrays`` (each axis taken from the array that
    splits it most), so no input is gathered into a bigger block than it had."""
    chunks = []
    for axis in range(nb):
        chunks.append(max((a.chunks[axis] for a in arrays), key=len))
    return tuple(chunks)
