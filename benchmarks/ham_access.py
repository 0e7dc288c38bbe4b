"""Benchmark: cost of one memory access against memory size n, HAM vs soft attention vs NAM.

For n = 2^6 ... 2^20 cells of width d = 32 (float32, NumPy, one query at a time), it
times one access of:

- HAM hard access (``namcore.ham.hard_access``, greedy): log2 n SEARCH calls;
- HAM write (``namcore.ham.write(..., inplace=True)``): one leaf and its log2 n
  ancestors rejoined;
- soft attention over the n cells: ``softmax(K q) · V``, which reads every cell;
- a NAM read (``namcore.read``) of a d x d memory, whose size does not depend on n.

It reports microseconds per access (median of repeated timings), the slope of
log(time) against log(n) fitted over the upper half of the sizes (1: linear, 0:
constant), writes a Markdown table and a log-log plot.

Run ``python benchmarks/ham_access.py`` (``--quick`` stops at 2^14).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import namcore
from namcore import ham
from namcore._io import atomic_write

D = 32
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
METHODS = ("HAM hard access", "HAM write", "soft attention", "NAM read")


def median_us(fn: Callable[[], Any], budget_s: float = 0.5) -> float:
    """Median time of ``fn`` in microseconds, over as many calls as fit in the budget."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2000:
            break
    return statistics.median(times) * 1e6


def networks(rng: np.random.Generator) -> tuple[Callable, Callable]:
    """A one-layer JOIN and SEARCH, as in the paper's small MLPs."""
    w_join = (rng.standard_normal((2 * D, D)) / np.sqrt(2 * D)).astype(np.float32)
    w_search = (rng.standard_normal(2 * D) / np.sqrt(2 * D)).astype(np.float32)

    def join(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return np.tanh(np.concatenate([left, right], axis=-1) @ w_join)

    def search(h: np.ndarray, c: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(h @ w_search[:D] + c @ w_search[D:])))

    return join, search


def measure(n: int, rng: np.random.Generator) -> dict[str, float]:
    join, search = networks(rng)
    leaves = rng.standard_normal((n, D)).astype(np.float32)
    tree = ham.build(leaves, join)
    c = rng.standard_normal(D).astype(np.float32)
    keys, values = leaves, rng.standard_normal((n, D)).astype(np.float32)
    memory = rng.standard_normal((D, D)).astype(np.float32)
    leaf, value = np.array(n // 3), rng.standard_normal(D).astype(np.float32)

    def soft() -> np.ndarray:
        scores = keys @ c
        e = np.exp(scores - scores.max())
        return (e / e.sum()) @ values

    return {
        "HAM hard access": median_us(lambda: ham.hard_access(tree, c, search)),
        "HAM write": median_us(lambda: ham.write(tree, leaf, value, join, inplace=True)),
        "soft attention": median_us(soft),
        "NAM read": median_us(lambda: namcore.read(memory, c)),
    }


def slope(sizes: list[int], times: list[float]) -> float:
    """Least-squares slope of log(time) against log(n) over the upper half of the sizes."""
    half = len(sizes) // 2
    x, y = np.log(sizes[half:]), np.log(times[half:])
    return float(np.polyfit(x, y, 1)[0])


def per_doubling(sizes: list[int], times: list[float]) -> float:
    """Slope ``b`` of the least-squares fit ``time = a + b log2 n``: µs added per doubling."""
    return float(np.polyfit(np.log2(sizes), times, 1)[0])


def crossover(sizes: list[int], rows: dict[str, list[float]]) -> str:
    """The smallest n from which HAM hard access stays faster than soft attention."""
    ham_t, soft_t = rows["HAM hard access"], rows["soft attention"]
    for i, n in enumerate(sizes):
        if all(h < s for h, s in zip(ham_t[i:], soft_t[i:], strict=True)):
            return f"2^{n.bit_length() - 1} = {n:,}"
    return "not reached"


def plot(sizes: list[int], rows: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in METHODS:
        ax.loglog(sizes, rows[method], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("memory size n (cells)")
    ax.set_ylabel("µs per access (median)")
    ax.set_title(f"One access against memory size (NumPy, d = {D}, float32)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def render(sizes: list[int], rows: dict[str, list[float]], header: str) -> str:
    lines = [header, "", "| n | " + " | ".join(METHODS) + " |", "|---:|" + "---:|" * len(METHODS)]
    for i, n in enumerate(sizes):
        cells = " | ".join(f"{rows[m][i]:,.1f}" for m in METHODS)
        lines.append(f"| 2^{n.bit_length() - 1} = {n:,} | {cells} |")
    slopes = " | ".join(f"{slope(sizes, rows[m]):.2f}" for m in METHODS)
    lines.append(f"| **log-log slope** (upper half) | {slopes} |")
    doubling = " | ".join(f"{per_doubling(sizes, rows[m]):+,.1f}" for m in METHODS)
    lines.append(f"| **µs per doubling of n** (fit a + b log2 n) | {doubling} |")
    lines += [
        "",
        f"HAM hard access is faster than soft attention from n = {crossover(sizes, rows)} on.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 2^14 only")
    parser.add_argument("--out", type=Path, default=DOCS / "ham_access.md")
    args = parser.parse_args()
    from tqdm import tqdm

    top = 14 if args.quick else 20
    sizes = [2**k for k in range(6, top + 1)]
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {m: [] for m in METHODS}
    started = time.perf_counter()
    for n in tqdm(sizes, desc="memory sizes", unit="size"):
        for method, value in measure(n, rng).items():
            rows[method].append(value)
    elapsed = time.perf_counter() - started
    command = "python benchmarks/ham_access.py" + (" --quick" if args.quick else "")
    header = "\n".join(
        [
            "<!-- Generated by benchmarks/ham_access.py; do not edit by hand. -->",
            "",
            "# Memory access cost against memory size",
            "",
            f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            f"- Command: `{command}` ({elapsed / 60:.1f} min)",
            f"- Machine: {platform.platform()}, {os.cpu_count()} logical cores; Python "
            f"{platform.python_version()}, NumPy {np.__version__}, namcore {namcore.__version__}",
            f"- One query at a time, d = {D}, float32; microseconds per access, median of "
            "repeated calls; the slope is fitted to log(time) against log(n) over the upper "
            "half of the sizes (1 = linear in n, 0 = independent of n, and also 0 for a "
            "cost that grows like log n); a cost that grows like log n shows as a constant "
            "number of µs per doubling of n. The machine is shared, so single sizes can "
            "show bursts; the fits use every size.",
        ]
    )
    text = render(sizes, rows, header)
    print(text)
    if args.out is not None:
        atomic_write(args.out, text.encode())
        plot(sizes, rows, args.out.with_suffix(".png"))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
