"""GPU benchmark: NOA against torch SDPA, and the fused write against its bandwidth bound.

For every GPU library found (CuPy, torch on CUDA, JAX on GPU) it times, with CUDA
events or ``block_until_ready`` so that asynchronous launches are not mistaken for
finished work:

- ``namcore.attention`` causal and non-causal, batch x heads = 8, for L = 1K ... 64K,
  d = 64 and 128, float16/bfloat16 and float32, against torch
  ``scaled_dot_product_attention`` (which picks FlashAttention where it can), and
  prints the crossover length where causal NOA overtakes causal SDPA;
- ``namcore.write`` and ``namcore.read`` on a large batch of memories against the bare
  CuPy / torch expression, and the write's time against the memory-bandwidth bound
  (one read and one write of M at the device's measured copy bandwidth).

Without a GPU it prints why and exits with status 0, writing nothing. With one it
writes ``docs/benchmarks/gpu.md`` atomically. Run ``python benchmarks/gpu.py``
(``--quick`` for L up to 8K only).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import namcore
from namcore._io import atomic_write

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
HEADS = 8


def gpu_libraries() -> list[str]:
    """Names of the libraries that see a GPU here."""
    found = []
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            found.append("cupy")
    except Exception:  # not installed or no driver
        pass
    try:
        import torch

        if torch.cuda.is_available():
            found.append("torch")
    except ImportError:
        pass
    try:
        import jax

        if jax.devices("gpu"):
            found.append("jax")
    except Exception:  # not installed or no GPU platform
        pass
    return found


def synchronizer(library: str) -> Callable[[Any], None]:
    if library == "cupy":
        import cupy

        return lambda _: cupy.cuda.Device().synchronize()
    if library == "torch":
        import torch

        return lambda _: torch.cuda.synchronize()
    return lambda out: out.block_until_ready()


def best_ms(fn: Callable[[], Any], sync: Callable[[Any], None], repeats: int = 5) -> float:
    sync(fn())  # warm-up, compilation, autotuning
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def as_library(library: str, a: np.ndarray, dtype: str) -> Any:
    if library == "cupy":
        import cupy

        return cupy.asarray(a).astype(dtype)
    if library == "torch":
        import torch

        return torch.from_numpy(a).to("cuda", getattr(torch, dtype))
    import jax
    import jax.numpy as jnp

    return jax.device_put(jnp.asarray(a, dtype=dtype), jax.devices("gpu")[0])


def attention_rows(libraries: list[str], lengths: list[int]) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    for d in (64, 128):
        for dtype in ("float32", "bfloat16", "float16"):
            for length in lengths:
                qkv = [
                    rng.standard_normal((1, HEADS, length, d)).astype(np.float32) for _ in range(3)
                ]
                for library in libraries:
                    if library == "cupy" and dtype == "bfloat16":
                        continue  # CuPy has no bfloat16
                    q, k, v = (as_library(library, a, dtype) for a in qkv)
                    sync = synchronizer(library)
                    jitted = None
                    if library == "jax":
                        import jax

                        jitted = jax.jit(namcore.attention, static_argnames="causal")
                    for causal in (False, True):

                        def run(q=q, k=k, v=v, c=causal, f=jitted or namcore.attention):
                            return f(q, k, v, causal=c)

                        rows.append(
                            {
                                "d": d,
                                "dtype": dtype,
                                "L": length,
                                "causal": causal,
                                "method": f"NOA {library}",
                                "ms": best_ms(run, sync),
                            }
                        )
                if "torch" in libraries:
                    import torch.nn.functional as F

                    q, k, v = (as_library("torch", a, dtype) for a in qkv)
                    for causal in (False, True):
                        rows.append(
                            {
                                "d": d,
                                "dtype": dtype,
                                "L": length,
                                "causal": causal,
                                "method": "torch SDPA",
                                "ms": best_ms(
                                    lambda q=q, k=k, v=v, c=causal: F.scaled_dot_product_attention(
                                        q, k, v, is_causal=c
                                    ),
                                    synchronizer("torch"),
                                ),
                            }
                        )
    return rows


def write_rows(libraries: list[str]) -> list[dict[str, Any]]:
    """``write`` / ``read`` on 4,096 memories of 128 x 128 against the bare expression."""
    rows = []
    rng = np.random.default_rng(1)
    batch, d = 4096, 128
    m, k, v = (
        rng.standard_normal(s).astype(np.float32) for s in ((batch, d, d), (batch, d), (batch, d))
    )
    for library in (lib for lib in libraries if lib in ("cupy", "torch")):
        M, K, V = (as_library(library, a, "float32") for a in (m, k, v))
        sync = synchronizer(library)
        if library == "cupy":
            import cupy as xp

            def bare_write(M=M, K=K, V=V, xp=xp):
                kh = K / xp.linalg.norm(K, axis=-1, keepdims=True)
                return M + V[..., :, None] * kh[..., None, :]

            def bare_copy(M=M):
                return M.copy()
        else:
            import torch as xp

            def bare_write(M=M, K=K, V=V, xp=xp):
                kh = xp.nn.functional.normalize(K, dim=-1)
                return M + V[..., :, None] * kh[..., None, :]

            def bare_copy(M=M):
                return M.clone()

        ours = best_ms(lambda M=M, K=K, V=V: namcore.write(M, K, V), sync)
        bare = best_ms(bare_write, sync)
        copy = best_ms(bare_copy, sync)  # one read and one write of M: the bandwidth bound
        read = best_ms(lambda M=M, K=K: namcore.read(M, K), sync)
        rows.append(
            {
                "library": library,
                "write_ms": ours,
                "bare_write_ms": bare,
                "bound_ms": copy,
                "read_ms": read,
            }
        )
    return rows


def crossover(rows: list[dict[str, Any]], method: str, d: int, dtype: str) -> str:
    for length in sorted({r["L"] for r in rows}):
        pick = {
            r["method"]: r["ms"]
            for r in rows
            if r["L"] == length and r["causal"] and r["d"] == d and r["dtype"] == dtype
        }
        if method in pick and "torch SDPA" in pick and pick[method] < pick["torch SDPA"]:
            return f"L = {length}"
    return "not reached"


def render(att: list[dict[str, Any]], writes: list[dict[str, Any]], device: str) -> str:
    lines = [
        f"GPU benchmark on {device} (`python benchmarks/gpu.py`), milliseconds, "
        f"best of 5, batch x heads = {HEADS}.",
        "",
        "| d | dtype | L | causal | method | ms |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['d']} | {r['dtype']} | {r['L']} | {r['causal']} | {r['method']} | {r['ms']:.3f} |"
        for r in att
    ]
    methods = sorted({r["method"] for r in att if r["method"] != "torch SDPA"})
    lines += ["", "Crossover (causal NOA faster than causal SDPA from):", ""]
    lines += [
        f"- {m}, d {d}, {t}: {crossover(att, m, d, t)}"
        for m in methods
        for d in (64, 128)
        for t in ("float32", "bfloat16", "float16")
    ]
    lines += [
        "",
        "| library | write ms | bare write ms | bandwidth bound ms | write / bound | read ms |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['library']} | {r['write_ms']:.3f} | {r['bare_write_ms']:.3f} | "
        f"{r['bound_ms']:.3f} | {r['write_ms'] / r['bound_ms']:.2f}x | "
        f"{r['read_ms']:.3f} |"
        for r in writes
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L up to 8K only")
    args = parser.parse_args(argv)
    libraries = gpu_libraries()
    if not libraries:
        print(
            "benchmarks/gpu.py: no GPU visible to CuPy, torch or JAX; nothing measured, "
            "nothing written"
        )
        return 0
    lengths = [1024, 2048, 4096, 8192] + ([] if args.quick else [16384, 32768, 65536])
    device = "GPU"
    if "torch" in libraries:
        import torch

        device = torch.cuda.get_device_name(0)
    table = render(attention_rows(libraries, lengths), write_rows(libraries), device)
    print(table)
    atomic_write(DOCS / "gpu.md", table.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
