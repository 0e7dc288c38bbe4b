"""Benchmark: the delta-rule family (erase, decay) in its chunk form.

In one run, float32, on the CPU, it measures:

- NumPy, 8 heads, d = 64, L = 4,096: erase (``p_write = p_erase = β``), erase + decay
  and decay alone, against the plain causal NOA and the position-by-position
  recurrence that ``namcore.attention`` ran before the chunk form;
- torch, 4 heads, d = 64: forward and forward + backward of erase and erase + decay
  against fla's pure-torch chunk references (``delta_rule_chunkwise``,
  ``naive_chunk_gated_delta_rule``) on the same inputs, when fla is installed
  (``pip install fla-core``, in the ``bench`` and ``test`` extras);
- JAX (``jax.jit``), 4 heads, d = 64: forward and forward + backward against the
  sequential scan;
- forward + backward at L = 65,536 in torch and JAX;
- peak memory against L up to 64K: NumPy (``tracemalloc``) and JAX (XLA's compiled
  temporary buffers), which should grow linearly.

It writes a Markdown table and a PNG plot (``docs/benchmarks/delta.md``/``.png``).
Run ``python benchmarks/delta.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from _timing import best_ms  # benchmarks/_timing.py, beside this script

import namcore
from namcore import backends
from namcore._agnostic import attention as _noa
from namcore._io import atomic_write

D = 64
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def inputs(heads: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal((3, 1, heads, length, D), dtype=np.float32)
    beta = rng.uniform(size=(1, heads, length)).astype(np.float32)
    decay = rng.uniform(0.9, 1.0, size=(1, heads, length)).astype(np.float32)
    return {"q": q, "k": k, "v": v, "beta": beta, "decay": decay}


def numpy_rows(repeats: int) -> list[dict[str, Any]]:
    a = inputs(8, 4096)
    q, k, v, beta, decay = a["q"], a["k"], a["v"], a["beta"], a["decay"]
    xp = backends.get("numpy").namespace()

    def sequential() -> Any:
        qh, kh = namcore.unit(q), namcore.unit(k)
        state = np.zeros((1, 8, D, D), dtype=np.float32)
        return _noa.recurrent(
            qh, kh, v, beta, beta, None, state, causal=True, xp=xp, scan=backends.get("numpy").scan
        )

    runs = {
        "plain causal NOA": lambda: namcore.attention(q, k, v, causal=True),
        "erase": lambda: namcore.attention(q, k, v, causal=True, p_write=beta, p_erase=beta),
        "erase + decay": lambda: namcore.attention(
            q, k, v, causal=True, p_write=beta, p_erase=beta, decay=decay
        ),
        "decay": lambda: namcore.attention(q, k, v, causal=True, decay=decay),
        "erase, position by position": sequential,
    }
    # interleaved rounds (every case once per round, best per case), so that a slow
    # spell of a noisy machine does not fall on one case only
    for fn in runs.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(3 * repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    times = {name: min(values) for name, values in samples.items()}
    base = times["plain causal NOA"]
    goals = {"erase": "≤ 2×", "erase + decay": "≤ 2.5×"}
    return [
        {"case": name, "ms": ms, "ratio": ms / base, "goal": goals.get(name, "")}
        for name, ms in times.items()
    ]


def load_fla(name: str) -> Any | None:
    """fla's ``ops/<name>/naive.py`` loaded from its file, or ``None`` without fla."""
    spec = importlib.util.find_spec("fla")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "ops" / name / "naive.py"
    module_spec = importlib.util.spec_from_file_location(f"_fla_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def torch_rows(lengths: list[int], repeats: int) -> list[dict[str, Any]]:
    import torch

    delta_rule, gated = load_fla("delta_rule"), load_fla("gated_delta_rule")
    rows = []
    for length in lengths:
        a = {n: torch.from_numpy(x) for n, x in inputs(4, length).items()}
        q, k, v, beta, decay = a["q"], a["k"], a["v"], a["beta"], a["decay"]
        log_decay = decay.log()

        def unit(x):  # fla expects unit keys; it scales q by 1/sqrt(d), hence q̂·√d
            return x / x.norm(dim=-1, keepdim=True)

        def ours(erase_only: bool, q=q, k=k, v=v, beta=beta, decay=decay) -> Any:
            return namcore.attention(
                q,
                k,
                v,
                causal=True,
                p_write=beta,
                p_erase=beta,
                decay=None if erase_only else decay,
            )

        cases = {
            ("erase", "namcore"): lambda: ours(True),
            ("erase + decay", "namcore"): lambda: ours(False),
        }
        if delta_rule is not None:
            cases[("erase", "fla")] = lambda q=q, k=k, v=v, beta=beta: (
                delta_rule.delta_rule_chunkwise(unit(q) * D**0.5, unit(k), v, beta, chunk_size=32)[
                    0
                ]
            )
            cases[("erase + decay", "fla")] = lambda q=q, k=k, v=v, beta=beta, g=log_decay: (
                gated.naive_chunk_gated_delta_rule(
                    unit(q).transpose(1, 2),
                    unit(k).transpose(1, 2),
                    v.transpose(1, 2),
                    g.transpose(1, 2),
                    beta.transpose(1, 2),
                    scale=1.0,
                )[0]
            )
        # gradients with respect to every input: q, k, v and β (namcore's and fla's
        # normalised copies are taken from the same leaves)
        leaves = [q, k, v, beta]
        for (case, who), fn in cases.items():
            with torch.no_grad():
                forward = best_ms(fn, repeats)

            def both(fn=fn, leaves=leaves) -> None:
                for leaf in leaves:
                    leaf.grad = None
                fn().sum().backward()

            for leaf in leaves:
                leaf.requires_grad_(True)
            backward = best_ms(both, repeats)
            for leaf in leaves:
                leaf.requires_grad_(False)
            rows.append(
                {
                    "backend": "torch",
                    "case": case,
                    "who": who,
                    "L": length,
                    "forward": forward,
                    "forward+backward": backward,
                }
            )
    return rows


def jax_rows(lengths: list[int], repeats: int) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    xp = backends.get("jax").namespace()
    scan = backends.get("jax").scan
    rows = []
    for length in lengths:
        a = {n: jnp.asarray(x) for n, x in inputs(4, length).items()}

        def chunked(q, k, v, beta):
            return namcore.attention(q, k, v, causal=True, p_write=beta, p_erase=beta)

        def sequential(q, k, v, beta):
            qh, kh = namcore.unit(q), namcore.unit(k)
            state = jnp.zeros((1, 4, D, D), dtype=q.dtype)
            return _noa.recurrent(
                qh, kh, v, beta, beta, None, state, causal=True, xp=xp, scan=scan
            )[0]

        for who, fn in (("namcore chunk form", chunked), ("sequential scan", sequential)):
            args = (a["q"], a["k"], a["v"], a["beta"])
            forward = jax.jit(fn)
            grad = jax.jit(jax.grad(lambda *x, fn=fn: jnp.sum(fn(*x)), argnums=(0, 1, 2, 3)))
            rows.append(
                {
                    "backend": "jax",
                    "case": "erase",
                    "who": who,
                    "L": length,
                    "forward": best_ms(
                        lambda f=forward, a=args: f(*a).block_until_ready(), repeats
                    ),
                    "forward+backward": best_ms(
                        lambda g=grad, a=args: jax.block_until_ready(g(*a)), repeats
                    ),
                }
            )
    return rows


def long_rows(length: int) -> list[dict[str, Any]]:
    """Forward + backward of erase at one long length, torch against JAX."""
    rows = []
    a = inputs(4, length)
    if backends.get("torch").is_installed():
        import torch

        t = {n: torch.from_numpy(x) for n, x in a.items()}
        t["v"].requires_grad_(True)
        t["q"].requires_grad_(True)

        def run_torch() -> None:
            namcore.attention(
                t["q"],
                t["k"],
                t["v"],
                causal=True,
                p_write=t["beta"],
                p_erase=t["beta"],
                decay=t["decay"],
            ).sum().backward()

        rows.append({"backend": "torch", "L": length, "ms": best_ms(run_torch, 1)})
    if backends.get("jax").is_installed():
        import jax
        import jax.numpy as jnp

        j = {n: jnp.asarray(x) for n, x in a.items()}

        def loss(q, v):
            return jnp.sum(
                namcore.attention(
                    q,
                    j["k"],
                    v,
                    causal=True,
                    p_write=j["beta"],
                    p_erase=j["beta"],
                    decay=j["decay"],
                )
            )

        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        rows.append(
            {
                "backend": "jax",
                "L": length,
                "ms": best_ms(lambda: jax.block_until_ready(grad(j["q"], j["v"])), 1),
            }
        )
    return rows


def memory_rows(lengths: list[int]) -> list[dict[str, Any]]:
    rows = []
    for length in lengths:
        a = inputs(4, length)
        tracemalloc.start()
        try:
            namcore.attention(
                a["q"],
                a["k"],
                a["v"],
                causal=True,
                p_write=a["beta"],
                p_erase=a["beta"],
                decay=a["decay"],
            )
            numpy_peak = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        row = {"L": length, "numpy": numpy_peak, "jax": None, "jax_grad": None}
        if backends.get("jax").is_installed():
            import jax
            import jax.numpy as jnp

            j = {n: jnp.asarray(x) for n, x in a.items()}

            def fn(q, k, v, beta, decay):
                return namcore.attention(
                    q, k, v, causal=True, p_write=beta, p_erase=beta, decay=decay
                )

            def loss(q, k, v, beta, decay):
                return jnp.sum(fn(q, k, v, beta, decay))

            args = (j["q"], j["k"], j["v"], j["beta"], j["decay"])
            for key, f in (("jax", fn), ("jax_grad", jax.grad(loss, argnums=(0, 1, 2)))):
                analysis = jax.jit(f).lower(*args).compile().memory_analysis()
                row[key] = analysis.temp_size_in_bytes / 2**20
        rows.append(row)
    return rows


def render(numpy_table, timing, long, memory, header) -> str:
    out = [
        header,
        "",
        "#### NumPy, 8 heads, d = 64, L = 4,096",
        "",
        "| case | ms | ratio to plain causal NOA | goal |",
        "|---|---:|---:|---|",
    ]
    out += [
        f"| {r['case']} | {r['ms']:.1f} | {r['ratio']:.2f}× | {r['goal']} |" for r in numpy_table
    ]
    out += [
        "",
        "#### torch and JAX, 4 heads, d = 64",
        "",
        "Ratios are to fla's reference (torch) or to the sequential scan (JAX) at the "
        "same length, in the same run.",
        "",
        "| backend | case | implementation | L | forward ms | ratio | fwd+bwd ms | ratio |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    base = {
        (r["backend"], r["case"], r["L"]): r
        for r in timing
        if r["who"] in ("fla", "sequential scan")
    }
    for r in timing:
        ref = base.get((r["backend"], r["case"], r["L"]))
        f_ratio = f"{r['forward'] / ref['forward']:.2f}×" if ref else "—"
        b_ratio = f"{r['forward+backward'] / ref['forward+backward']:.2f}×" if ref else "—"
        out.append(
            f"| {r['backend']} | {r['case']} | {r['who']} | {r['L']:,} | "
            f"{r['forward']:.1f} | {f_ratio} | {r['forward+backward']:.1f} | {b_ratio} |"
        )
    if long:
        out += [
            "",
            f"#### Forward + backward at L = {long[0]['L']:,} (erase + decay)",
            "",
            "| backend | s |",
            "|---|---:|",
        ]
        out += [f"| {r['backend']} | {r['ms'] / 1e3:.2f} |" for r in long]
    out += [
        "",
        "#### Peak memory (erase + decay, 4 heads, d = 64)",
        "",
        "| L | NumPy traced peak MiB | JAX forward temp MiB | JAX gradient temp MiB |",
        "|---:|---:|---:|---:|",
    ]
    for r in memory:
        cells = [
            f"{r[key]:.0f}" if r[key] is not None else "—" for key in ("numpy", "jax", "jax_grad")
        ]
        out.append(f"| {r['L']:,} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def plot(timing, memory, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    series: dict[str, list[tuple[int, float]]] = {}
    for r in timing:
        label = f"{r['backend']} {r['case']}: {r['who']}"
        series.setdefault(label, []).append((r["L"], r["forward+backward"]))
    for label, points in sorted(series.items()):
        xs, ys = zip(*sorted(points), strict=True)
        style = "--" if "fla" in label or "sequential" in label else "-"
        left.plot(xs, ys, style, marker="o", label=label)
    left.set(
        xscale="log",
        yscale="log",
        xlabel="L",
        ylabel="forward + backward, ms",
        title="Delta rule, 4 heads, d = 64, float32",
    )
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    for key, label in (
        ("numpy", "NumPy traced peak"),
        ("jax", "JAX forward temp"),
        ("jax_grad", "JAX gradient temp"),
    ):
        points = [(r["L"], r[key]) for r in memory if r[key] is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            right.plot(xs, ys, marker="o", label=label)
    right.set(
        xscale="log",
        yscale="log",
        xlabel="L",
        ylabel="MiB",
        title="Peak memory grows linearly in L",
    )
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter lengths, fewer repeats")
    parser.add_argument("--out", type=Path, default=DOCS / "delta.md")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    lengths = [1024, 4096] if args.quick else [1024, 2048, 4096, 8192]
    memory_lengths = [1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536]
    installed = backends.installed()
    steps = ["numpy", "torch", "jax", "long", "memory"]
    from tqdm import tqdm

    numpy_table, timing, long, memory = [], [], [], []
    for step in (bar := tqdm(steps, unit="part")):
        bar.set_description(step)
        if step == "numpy":
            numpy_table = numpy_rows(repeats)
        elif step == "torch" and "torch" in installed:
            timing += torch_rows(lengths, repeats)
        elif step == "jax" and "jax" in installed:
            timing += jax_rows(lengths, repeats)
        elif step == "long":
            long = long_rows(16384 if args.quick else 65536)
        elif step == "memory":
            memory = memory_rows(memory_lengths)
    versions = ", ".join(
        f"{n} {backends.get(n).version()}" for n in installed if n in ("numpy", "torch", "jax")
    )
    cpu = platform.processor() or platform.machine()
    header = (
        f"Measured {dt.date.today()} on {cpu} ({os.cpu_count()} cores), Python "
        f"{platform.python_version()}, {versions}; float32, best of {repeats}.\n"
        f"Command: `python benchmarks/delta.py{' --quick' if args.quick else ''}`."
    )
    text = render(numpy_table, timing, long, memory, header)
    atomic_write(args.out, text.encode())
    plot(timing, memory, args.out.with_suffix(".png"))
    print(text)


if __name__ == "__main__":
    main()
