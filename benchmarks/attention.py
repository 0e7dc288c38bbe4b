"""Benchmark: normalized outer-product attention (NOA) against softmax attention.

For each installed backend (numpy, torch, jax) and each sequence length L, with
batch x heads = 8, d_k = d_v = 64, float32, it times:

- NOA non-causal and causal (``namcore.attention``);
- a hand-written chunked NumPy loop (the baseline for the NumPy causal target);
- the naive per-position cumulative-sum form (materialises an (L, d, d) state per
  head; small L only);
- softmax attention: torch ``scaled_dot_product_attention`` and a NumPy reference.

It reports milliseconds (best of N), useful GFLOP/s (4·L·d_k·d_v per head) and, for
NumPy, the peak memory traced by ``tracemalloc``; it writes a Markdown table and a
PNG plot, and prints the crossover length where causal NOA overtakes causal softmax.

Run ``python benchmarks/attention.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _timing import best_ms  # benchmarks/_timing.py, beside this script

import namcore
from namcore import backends
from namcore._io import atomic_write

HEADS, D = 8, 64
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def numpy_peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def hand_chunked(q: np.ndarray, k: np.ndarray, v: np.ndarray, c: int = 64) -> np.ndarray:
    """The plain NumPy chunk loop that the NumPy backend is measured against."""
    qh = q / np.linalg.norm(q, axis=-1, keepdims=True)
    kh = k / np.linalg.norm(k, axis=-1, keepdims=True)
    state = np.zeros((q.shape[0], v.shape[-1], k.shape[-1]), dtype=q.dtype)
    out = np.empty_like(v)
    tril = np.tril(np.ones((c, c), dtype=q.dtype))
    for s in range(0, q.shape[1], c):
        qc, kc, vc = qh[:, s : s + c], kh[:, s : s + c], v[:, s : s + c]
        n = qc.shape[1]
        out[:, s : s + c] = (qc @ kc.transpose(0, 2, 1) * tril[:n, :n]) @ vc
        out[:, s : s + c] += qc @ state.transpose(0, 2, 1)
        state += vc.transpose(0, 2, 1) @ kc
    return out


def naive_cumsum(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-position memories by cumulative sum of outer products: O(L·d²) memory."""
    qh = q / np.linalg.norm(q, axis=-1, keepdims=True)
    kh = k / np.linalg.norm(k, axis=-1, keepdims=True)
    states = np.cumsum(v[..., :, None] * kh[..., None, :], axis=1)
    return np.einsum("gtvk,gtk->gtv", states, qh)


def numpy_softmax(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool) -> np.ndarray:
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], dtype=bool)), scores, -np.inf)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (scores / scores.sum(axis=-1, keepdims=True)) @ v


def cases(lengths: list[int]) -> list[tuple[str, str, int]]:
    """(backend, method, L) triples that will run, in order."""
    out = []
    installed = backends.installed()
    for length in lengths:
        for name in ("numpy", "torch", "jax"):
            if name not in installed:
                continue
            out += [(name, "NOA non-causal", length), (name, "NOA causal", length)]
            if name == "numpy":
                out.append((name, "hand-written chunk loop", length))
                if length <= 2048:
                    out.append((name, "naive cumsum (causal)", length))
                if length <= 4096:
                    out += [(name, "softmax causal", length)]
            if name == "torch" and length <= 16384:
                out += [(name, "SDPA causal", length), (name, "SDPA non-causal", length)]
    return out


def make_runner(backend: str, method: str, arrays: tuple[np.ndarray, ...]) -> Callable[[], Any]:
    q, k, v = arrays
    if backend == "numpy":
        return {
            "NOA non-causal": lambda: namcore.attention(q, k, v),
            "NOA causal": lambda: namcore.attention(q, k, v, causal=True),
            "hand-written chunk loop": lambda: hand_chunked(q, k, v),
            "naive cumsum (causal)": lambda: naive_cumsum(q, k, v),
            "softmax causal": lambda: numpy_softmax(q, k, v, True),
        }[method]
    if backend == "torch":
        import torch

        tq, tk, tv = (torch.from_numpy(a) for a in arrays)
        sdpa = torch.nn.functional.scaled_dot_product_attention

        def no_grad(f: Callable[[], Any]) -> Callable[[], Any]:
            def run() -> Any:
                with torch.no_grad():
                    return f()

            return run

        return no_grad(
            {
                "NOA non-causal": lambda: namcore.attention(tq, tk, tv),
                "NOA causal": lambda: namcore.attention(tq, tk, tv, causal=True),
                "SDPA causal": lambda: sdpa(tq, tk, tv, is_causal=True),
                "SDPA non-causal": lambda: sdpa(tq, tk, tv),
            }[method]
        )
    import jax

    jq, jk, jv = (jax.numpy.asarray(a) for a in arrays)
    causal = method == "NOA causal"
    fn = jax.jit(lambda a, b, c: namcore.attention(a, b, c, causal=causal))
    return lambda: fn(jq, jk, jv).block_until_ready()


def crossover(rows: list[dict[str, Any]], backend: str, ours: str, theirs: str) -> str:
    by_len: dict[int, dict[str, float]] = {}
    for r in rows:
        if (r["backend"], r["method"]) in ((backend, ours), ("torch", theirs), ("numpy", theirs)):
            by_len.setdefault(r["L"], {})[r["method"]] = r["ms"]
    wins = [
        n for n, m in sorted(by_len.items()) if ours in m and theirs in m and m[ours] < m[theirs]
    ]
    if not wins:
        return "not reached in the measured range"
    if wins[0] == min(by_len):
        return f"at or below L = {wins[0]:,} (the shortest length measured)"
    return f"L = {wins[0]:,}"


def render(rows: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        "| backend | method | L | ms | GFLOP/s | peak MiB (NumPy) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        peak = f"{r['peak']:.0f}" if r["peak"] is not None else "—"
        lines.append(
            f"| {r['backend']} | {r['method']} | {r['L']:,} | {r['ms']:.1f} | "
            f"{r['gflops']:.1f} | {peak} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        series.setdefault(f"{r['backend']}: {r['method']}", []).append((r["L"], r["ms"]))
    for label, points in sorted(series.items()):
        xs, ys = zip(*sorted(points), strict=True)
        style = "--" if "softmax" in label or "SDPA" in label else "-"
        ax.plot(xs, ys, style, marker="o", label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length L",
        ylabel="ms (best of N)",
        title=f"NOA vs softmax attention, {HEADS} heads, d = {D}, float32, CPU",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="L up to 4,096, fewer repeats")
    parser.add_argument("--out", type=Path, default=DOCS / "attention.md")
    args = parser.parse_args()
    lengths = [512, 1024, 2048, 4096] if args.quick else [512, 1024, 2048, 4096, 8192, 16384, 32768]
    repeats = 3 if args.quick else 5
    from tqdm import tqdm

    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    data: dict[int, tuple[np.ndarray, ...]] = {}
    todo = cases(lengths)
    for backend, method, length in (bar := tqdm(todo, unit="case")):
        bar.set_description(f"{backend} {method} L={length}")
        if length not in data:
            data = {length: tuple(rng.standard_normal((3, HEADS, length, D), dtype=np.float32))}
        runner = make_runner(backend, method, data[length])
        ms = best_ms(runner, repeats)
        peak = numpy_peak_mib(runner) if backend == "numpy" else None
        rows.append(
            {
                "backend": backend,
                "method": method,
                "L": length,
                "ms": ms,
                "gflops": 4 * length * D * D * HEADS / (ms * 1e-3) / 1e9,
                "peak": peak,
            }
        )
    versions = ", ".join(
        f"{n} {backends.get(n).version()}"
        for n in backends.installed()
        if n in ("numpy", "torch", "jax")
    )
    cpu = platform.processor() or platform.machine()
    header = (
        f"# Attention benchmark\n\nMeasured {dt.date.today()} on {cpu} "
        f"({os.cpu_count()} cores), Python {platform.python_version()}, {versions}. "
        f"batch x heads = {HEADS}, d_k = d_v = {D}, float32; best of {repeats}.\n"
        f"Command: `python benchmarks/attention.py{' --quick' if args.quick else ''}`."
    )
    summary = ["", "## Summary", ""]
    by = {(r["backend"], r["method"], r["L"]): r["ms"] for r in rows}
    if ("numpy", "NOA causal", 4096) in by:
        ratio = by[("numpy", "NOA causal", 4096)] / by[("numpy", "hand-written chunk loop", 4096)]
        summary.append(
            f"- NumPy causal NOA / hand-written chunk loop at L = 4,096: {ratio:.2f}x "
            "(target: at most 1.3x)"
        )
        if ("torch", "SDPA causal", 4096) in by:
            speed = by[("torch", "SDPA causal", 4096)] / by[("numpy", "NOA causal", 4096)]
            summary.append(
                f"- torch causal SDPA / NumPy causal NOA at L = 4,096: {speed:.1f}x "
                "(target: at least 5x)"
            )
    for backend in ("numpy", "torch", "jax"):
        theirs = "SDPA causal" if backends.get("torch").is_installed() else "softmax causal"
        summary.append(
            f"- crossover, {backend} causal NOA faster than {theirs}: "
            f"{crossover(rows, backend, 'NOA causal', theirs)}"
        )
    text = render(rows, header) + "\n".join(summary) + "\n\n![plot](benchmarks/attention.png)\n"
    atomic_write(args.out, text.encode())
    plot(rows, args.out.with_suffix(".png"))
    print(text)


if __name__ == "__main__":
    main()
