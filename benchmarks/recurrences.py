"""Benchmark: LSAM and NAM-TM training steps, memory-saving backward against the standard one.

Three tables, every figure measured in this run:

1. **Ratios to an LSTM.** A full training step (forward, token cross-entropy,
   gradients, Adam update) of LSAM and NAM-TM (default configs; NAM-TM's tape has 32
   cells) on torch eager and ``jax.jit`` (optax Adam), at d_model 64, batch 32, length
   32, vocabulary 32, float32, divided by the same step of an embedding → one
   ``torch.nn.LSTM`` layer (hidden d_model) → linear head model with
   ``torch.optim.Adam``. Each model runs on each of ``memory_scan``'s paths:
   ``manual`` (the step's hand-derived backward on rebuilt memories, the
   default), ``saving`` (the generic memory-saving backward. JAX: reversible,
   differentiating each step with ``jax.vjp``; torch: segment recompute) and
   ``standard`` (the library's own autodiff).
2. **Time per 100 training steps at d_model 256** (the paper preset's width), each
   path, measured over ``--steps-256`` steps and scaled to 100.
3. **Memory of an LSAM training step at d_model 128** against the length L: on JAX the
   compiled step's temporary buffers (``memory_analysis().temp_size_in_bytes``); on
   torch the peak resident memory of a fresh process during one step above its
   resident memory before it (Linux: ``malloc_trim``, then the peak is reset through
   ``/proc/self/clear_refs`` and read from ``VmHWM``; the C allocator keeps its
   defaults there).

Cases are timed in interleaved rounds (best of all rounds). The process is pinned to
``--threads`` cores (default 1). Run ``python benchmarks/recurrences.py`` (``--quick``
for a short run); it writes ``docs/benchmarks/recurrences.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from namcore._io import atomic_write

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
BATCH, LENGTH, VOCAB = 32, 32, 32
#: The issue's goals: training step ÷ the LSTM model's, per (model, backend).
GOALS = {
    ("LSAM", "jax"): 3.0,
    ("NAMTM", "jax"): 8.0,
    ("LSAM", "torch"): 8.0,
    ("NAMTM", "torch"): 12.0,
}
PATHS = ("manual", "compiled", "saving", "standard")
#: ``compiled`` is ``manual`` with ``TorchBackend.compile_steps``, so torch only
#: (``jax.jit`` compiles every JAX path anyway); the memory table leaves it out.
UNCOMPILED = ("manual", "saving", "standard")
BACKEND_PATHS = {"torch": PATHS, "jax": UNCOMPILED}


@dataclass
class Case:
    """One training step to time, and its best time."""

    model: str
    backend: str
    path: str
    step: Callable[[], Any]
    times: list[float] = field(default_factory=list)
    first: float = math.nan  # seconds of the first (warm-up) call

    @property
    def best(self) -> float:
        return min(self.times)


@contextlib.contextmanager
def memory_path(path: str) -> Iterator[None]:
    """Make ``memory_scan`` take one path: ``manual``, ``compiled``, ``saving`` or ``standard``."""
    from namcore.backends._base import Backend
    from namcore.backends.jax import JAXBackend
    from namcore.backends.torch import TorchBackend

    values = {
        "memory_saving_bytes": math.inf if path == "standard" else 0,
        "manual_backward": path in ("manual", "compiled"),
    }
    settings = [(cls, values) for cls in (Backend, JAXBackend, TorchBackend)]
    settings.append((TorchBackend, {"compile_steps": path == "compiled"}))
    saved = [(cls, {k: cls.__dict__.get(k) for k in kv}) for cls, kv in settings]
    for cls, kv in settings:
        for k, v in kv.items():
            setattr(cls, k, v)
    try:
        yield
    finally:
        for cls, old in reversed(saved):
            for k, v in old.items():
                if v is None:
                    delattr(cls, k)
                else:
                    setattr(cls, k, v)


def configs(d: int, length: int = LENGTH) -> dict[str, Any]:
    from namcore.models import LSAMConfig, NAMTMConfig

    return {
        "LSAM": LSAMConfig(vocab_size=VOCAB, d_model=d),
        "NAMTM": NAMTMConfig(vocab_size=VOCAB, d_model=d, tape_length=length),
    }


def batch(rng: np.random.Generator, length: int = LENGTH) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, VOCAB, (BATCH, length)), rng.integers(0, VOCAB, (BATCH, length))


# ------------------------------------------------------------------------ steps
def torch_step(
    config: Any, tokens: np.ndarray, targets: np.ndarray, path: str
) -> Callable[[], Any]:
    """One eager training step of a namcore model with ``torch.optim.Adam``."""
    import torch
    import torch.nn.functional as F

    from namcore.models import entry_for
    from namcore.models import torch as tm

    model = getattr(tm, entry_for(config).class_name)(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(tokens), torch.from_numpy(targets)

    def step() -> None:
        with memory_path(path):
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
            opt.step()

    return step


def jax_step(config: Any, tokens: np.ndarray, targets: np.ndarray, path: str) -> Callable[[], Any]:
    """One jitted training step (value_and_grad + optax Adam), compiled under ``path``."""
    import jax
    import jax.numpy as jnp
    import optax

    from namcore.models import entry_for
    from namcore.models import jax as jm

    model = getattr(jm, entry_for(config).class_name)(config)
    opt = optax.adam(1e-3)
    x, y = jnp.asarray(tokens, dtype=jnp.int32), jnp.asarray(targets, dtype=jnp.int32)

    def loss(params: Any) -> Any:
        logits = model.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def update(params: Any, state: Any) -> Any:
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    params = model.init(seed=0)
    holder = [params, opt.init(params)]
    with memory_path(path):
        compiled = jax.jit(update).lower(*holder).compile()

    def step() -> None:
        params, state, value = compiled(*holder)
        holder[:] = [params, state]
        value.block_until_ready()

    return step


def lstm_step(d: int, tokens: np.ndarray, targets: np.ndarray) -> Callable[[], Any]:
    """The baseline: embedding → ``torch.nn.LSTM`` → linear head, Adam."""
    import torch
    import torch.nn.functional as F

    embed, lstm, head = (
        torch.nn.Embedding(VOCAB, d),
        torch.nn.LSTM(d, d, batch_first=True),
        torch.nn.Linear(d, VOCAB),
    )
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    x, y = torch.from_numpy(tokens), torch.from_numpy(targets)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        hidden, _ = lstm(embed(x))
        logits = head(hidden)
        F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1)).backward()
        opt.step()

    return step


def build(d: int, rng: np.random.Generator) -> list[Case]:
    tokens, targets = batch(rng)
    cases = [Case("torch.nn.LSTM", "torch", "—", lstm_step(d, tokens, targets))]
    makers = {"torch": torch_step, "jax": jax_step}
    for name, config in configs(d).items():
        for backend, paths in BACKEND_PATHS.items():
            for path in paths:
                step = makers[backend](config, tokens, targets, path)
                cases.append(Case(name, backend, path, step))
    return cases


def time_rounds(cases: list[Case], rounds: int, calls: int, desc: str) -> None:
    from tqdm import tqdm

    for case in cases:  # warm-up: the first call (torch.compile compiles here)
        start = time.perf_counter()
        case.step()
        case.first = time.perf_counter() - start
    for i in tqdm(range(rounds * len(cases)), desc=desc, unit="case"):
        case = cases[i % len(cases)]
        for _ in range(calls):
            start = time.perf_counter()
            case.step()
            case.times.append(time.perf_counter() - start)


# ----------------------------------------------------------------------- memory
def jax_temp_bytes(d: int, length: int, path: str) -> int:
    """Temporary buffers of the compiled LSAM gradient step (no optimizer) at ``length``."""
    import jax
    import jax.numpy as jnp
    import optax

    from namcore.models import jax as jm

    config = configs(d, length)["LSAM"]
    model = jm.LSAM(config)
    tokens, targets = batch(np.random.default_rng(0), length)
    x, y = jnp.asarray(tokens, dtype=jnp.int32), jnp.asarray(targets, dtype=jnp.int32)

    def loss(params: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, x), y).mean()

    with memory_path(path):
        exe = jax.jit(jax.grad(loss)).lower(model.init(seed=0)).compile()
    return int(exe.memory_analysis().temp_size_in_bytes)


def torch_peak_growth(d: int, length: int, path: str) -> int:
    """Bytes by which one LSAM training step raises a fresh process's resident memory."""
    out = subprocess.run(
        [sys.executable, __file__, "--torch-memory", str(d), str(length), path],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/self/status``, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _torch_memory_child(d: int, length: int, path: str) -> None:
    import ctypes

    import torch

    torch.set_num_threads(1)
    tokens, targets = batch(np.random.default_rng(0), length)
    step = torch_step(configs(d, length)["LSAM"], tokens, targets, path)
    # Return freed heap pages to the system, then reset the peak (VmHWM) to the current
    # resident size, so that the peak after the step is the step's own.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    step()
    print((_status_kib("VmHWM") - before) * 1024)


# ----------------------------------------------------------------------- report
def _ms(case: Case | None) -> str:
    return "—" if case is None else f"{case.best * 1e3:.2f}"


def ratio_table(cases: list[Case]) -> tuple[str, dict[tuple[str, str, str], float]]:
    base = next(c for c in cases if c.model == "torch.nn.LSTM").best
    ratios = {
        (c.model, c.backend, c.path): c.best / base for c in cases if c.model != "torch.nn.LSTM"
    }
    lines = [
        "| model | backend | "
        + " | ".join(f"ms / step, {p}" for p in PATHS)
        + " | "
        + " | ".join(f"{p} ÷ LSTM" for p in PATHS)
        + " | goal | met (fastest path) |",
        "|---|---|" + "---:|" * (2 * len(PATHS) + 1) + "---|",
        "| **LSTM model** | torch | "
        + " | ".join([f"{base * 1e3:.2f}", *[""] * (len(PATHS) - 1), "1.0x"])
        + " |" * len(PATHS)
        + " |",
    ]
    by = {(c.model, c.backend, c.path): c for c in cases}
    for (model, backend), goal in GOALS.items():
        row = [by.get((model, backend, p)) for p in PATHS]
        fastest = min((c for c in row if c is not None), key=lambda c: c.best)
        ratio = fastest.best / base
        met = "yes" if ratio <= goal else "**no**"
        shares = ["—" if c is None else f"{c.best / base:.1f}x" for c in row]
        lines.append(
            f"| {model} | {backend} | "
            + " | ".join(map(_ms, row))
            + " | "
            + " | ".join(shares)
            + f" | ≤ {goal:g}x | {met} ({ratio:.1f}x, {fastest.path}) |"
        )
    firsts = [c for c in cases if c.path == "compiled"]
    if firsts:
        lines.append(
            "\nFirst call of each compiled case (torch.compile traces and compiles the "
            "step here; inductor's on-disk cache from an earlier run shortens it): "
            + ", ".join(f"{c.model} {c.first:.1f} s" for c in firsts)
            + "."
        )
    return "\n".join(lines), ratios


def per_100_table(cases: list[Case], steps: int) -> str:
    lines = [
        "| model | backend | " + " | ".join(f"{p}, s / 100 steps" for p in PATHS) + " |",
        "|---|---|" + "---:|" * len(PATHS),
    ]
    by = {(c.model, c.backend, c.path): c for c in cases}
    for model in ("LSAM", "NAMTM"):
        for backend in ("torch", "jax"):
            row = [by.get((model, backend, p)) for p in PATHS]
            cells = ["—" if c is None else f"{100 * c.best:.1f}" for c in row]
            lines.append(f"| {model} | {backend} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n(best step of {steps} per case, times 100)"


def memory_table(memory: dict[str, dict[str, list[int]]], lengths: list[int]) -> str:
    mib = 2**20
    keys = [(k, p) for k in ("jax", "torch") for p in UNCOMPILED]
    names = {"jax": "JAX temp", "torch": "torch peak growth"}
    lines = [
        "| L | " + " | ".join(f"{names[k]}, {p} MiB" for k, p in keys) + " |",
        "|---:|" + "---:|" * len(keys),
    ]
    for i, length in enumerate(lengths):
        row = [memory[k][p][i] / mib for k, p in keys]
        lines.append(f"| {length:,} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    return "\n".join(lines)


def plot(
    ratios: dict[tuple[str, str, str], float],
    memory: dict[str, Any],
    lengths: list[int],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{m} ({b})" for m, b in GOALS]
    ys = np.arange(len(labels))
    height = 0.8 / len(PATHS)
    for j, p in enumerate(PATHS):
        values = [ratios.get((m, b, p), np.nan) for m, b in GOALS]
        left.barh(ys + height * j, values, height=height, label=p)
    left.scatter(
        list(GOALS.values()),
        ys + 0.4 - height / 2,
        marker="|",
        s=400,
        color="red",
        label="goal",
        zorder=3,
    )
    left.set_yticks(ys + 0.4 - height / 2, labels)
    left.invert_yaxis()
    left.set(
        xscale="log",
        xlabel="training step ÷ LSTM model's",
        title=f"Training step, d_model 64, batch {BATCH}, length {LENGTH}",
    )
    ticks = [
        t for t in (2, 3, 5, 8, 12, 20, 30, 50, 80, 120) if t <= max(ratios.values(), default=1)
    ]
    left.set_xticks(ticks, [f"{t}x" for t in ticks])
    left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.legend(fontsize=8)
    left.grid(True, axis="x", which="both", alpha=0.3)
    for key, style in (("jax", "-"), ("torch", "--")):
        for p, marker in zip(UNCOMPILED, "^so", strict=True):
            right.plot(
                lengths, np.array(memory[key][p]) / 2**20, style, marker=marker, label=f"{key}, {p}"
            )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length L",
        ylabel="MiB",
        title="LSAM training step memory, d_model 128",
    )
    right.set_xticks(lengths, [f"{n:,}" for n in lengths])
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


# ------------------------------------------------------------------------- main
def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--torch-memory":
        _torch_memory_child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, lengths up to 512")
    parser.add_argument("--threads", type=int, default=1, help="cores to pin the process to")
    parser.add_argument(
        "--steps-256", type=int, default=5, help="timed steps per case at d_model 256"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: ratios, 256, memory"
    )
    parser.add_argument(
        "--system-allocator",
        action="store_true",
        help="keep the C allocator's defaults (default: namcore.backends.allocator's "
        "reuse_freed_memory, as namcore's training commands do)",
    )
    parser.add_argument("--out", type=Path, default=DOCS / "recurrences.md")
    args = parser.parse_args()
    from namcore.backends.allocator import reuse_freed_memory

    reused = not args.system_allocator and reuse_freed_memory()
    skip = set(filter(None, args.skip.split(",")))
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    import jax
    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    rounds, calls = (3, 3) if args.quick else (5, 5)
    lengths = [128, 256, 512] if args.quick else [128, 256, 512, 1024, 2048]
    load = os.getloadavg()[0]
    sections = []
    ratios: dict[tuple[str, str, str], float] = {}
    if "ratios" not in skip:
        cases = build(64, np.random.default_rng(0))
        time_rounds(cases, rounds, calls, "d_model=64")
        table, ratios = ratio_table(cases)
        sections.append("## Training step ÷ the LSTM model, d_model 64\n\n" + table)
    if "256" not in skip:
        cases = [c for c in build(256, np.random.default_rng(1)) if c.model != "torch.nn.LSTM"]
        time_rounds(cases, 1, args.steps_256, "d_model=256")
        sections.append(
            "## Time per 100 training steps, d_model 256\n\n" + per_100_table(cases, args.steps_256)
        )
    memory: dict[str, dict[str, list[int]]] = {
        k: {p: [] for p in UNCOMPILED} for k in ("jax", "torch")
    }
    if "memory" not in skip:
        for length in tqdm(lengths, desc="memory", unit="length"):
            for p in UNCOMPILED:
                memory["jax"][p].append(jax_temp_bytes(128, length, p))
                memory["torch"][p].append(torch_peak_growth(128, length, p))
        sections.append(
            "## LSAM training step memory, d_model 128, batch 32\n\n"
            + memory_table(memory, lengths)
        )
    header = (
        f"# Recurrences benchmark\n\nMeasured {dt.date.today()} on {platform.machine()} "
        f"({os.cpu_count()} cores), Python {platform.python_version()}, torch {torch.__version__}, "
        f"jax {jax.__version__}; pinned to {args.threads} core(s); load average (1 min) "
        f"{load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; C allocator: "
        + ("freed memory reused (`reuse_freed_memory`)" if reused else "the system's defaults")
        + ".\n"
        f"Command: `python benchmarks/recurrences.py{' --quick' if args.quick else ''}"
        f"{' --system-allocator' if args.system_allocator else ''}`.\n"
    )
    text = header + "\n" + "\n\n".join(sections) + "\n"
    if ratios and "memory" not in skip:
        plot(ratios, memory, lengths, args.out.with_suffix(".png"))
        # relative to docs/recurrences.md, the page that includes this file
        text += f"\n![plot](benchmarks/{args.out.with_suffix('.png').name})\n"
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(text))
    print(text)


if __name__ == "__main__":
    main()
