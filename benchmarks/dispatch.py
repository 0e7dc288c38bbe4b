"""Dispatch overhead of ``namcore.write`` / ``namcore.read`` against hand-written code.

For every installed backend (NumPy, PyTorch, JAX eager, JAX under ``jax.jit``,
array-api-strict, and CuPy when it has a GPU) this script times the public namcore
call and the same computation written directly in that library, on small arrays where
the fixed per-call cost dominates:

- ``single``: one memory, ``d_v = d_k = 16``;
- ``batch``: 64 memories, ``d_v = d_k = 64``.

Each timing is the best of several repeats of a loop long enough to take about
0.1 s (``timeit``-style), divided by the number of loops; every call is timed to
completion (``block_until_ready`` for JAX, a stream synchronisation for CuPy). PyTorch
runs on one thread unless ``--torch-threads`` says otherwise: on arrays this small, more
threads add scheduling noise rather than speed. The Markdown table goes to stdout and,
atomically, to ``docs/benchmarks/dispatch.md``.

Usage::

    python benchmarks/dispatch.py            # full run (about a minute on 2 cores)
    python benchmarks/dispatch.py --quick    # fewer, shorter repeats
    python benchmarks/dispatch.py --out /tmp/dispatch.md --backends numpy,torch

This is a script, not a test: it asserts only that namcore and the hand-written code
compute the same numbers before it times them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.util
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import namcore

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks" / "dispatch.md"

#: name -> (d_v, d_k, batch shape)
CASES: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "single": (16, 16, ()),
    "batch": (64, 64, (64,)),
}

BACKENDS = ("numpy", "torch", "jax", "jax:jit", "array_api_strict", "cupy")

Thunk = Callable[[], Any]


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    namcore_us: float
    raw_us: float

    @property
    def overhead_us(self) -> float:
        return self.namcore_us - self.raw_us

    @property
    def ratio(self) -> float:
        return self.namcore_us / self.raw_us


def _loop_time(fn: Thunk, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return time.perf_counter() - start


def _calibrate(fn: Thunk, min_time: float) -> int:
    """Smallest loop count from 1, 2, 5, 10, 20, 50, ... whose loop takes ``min_time``."""
    loops = 1
    while True:
        for factor in (1, 2, 5):
            n = loops * factor
            if _loop_time(fn, n) >= min_time:
                return n
        loops *= 10


def compare(ours: Thunk, raw: Thunk, *, repeat: int, min_time: float) -> Timing:
    """Best-of-``repeat`` microseconds per call of ``ours`` and ``raw``.

    Both get the same loop count (calibrated on the slower of the two), and their
    repeats are interleaved so that drift of the machine affects both alike.
    """
    for _ in range(3):  # warm-up: lazy imports, caches, compilation
        ours()
        raw()
    loops = max(_calibrate(ours, min_time), _calibrate(raw, min_time))
    best_ours = best_raw = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, _loop_time(ours, loops))
        best_raw = min(best_raw, _loop_time(raw, loops))
    return Timing(best_ours / loops * 1e6, best_raw / loops * 1e6)


# ------------------------------------------------------------------- the workloads
@dataclass
class Workload:
    """Two (namcore, raw) pairs of thunks for one backend, mode and case."""

    write: tuple[Thunk, Thunk]
    read: tuple[Thunk, Thunk]
    check: Callable[[Any], np.ndarray]  # converts a result to NumPy for the sanity check


def _inputs(case: str, seed: int = 0) -> dict[str, np.ndarray]:
    d_v, d_k, batch = CASES[case]
    rng = np.random.default_rng(seed)
    return {
        "M": rng.standard_normal((*batch, d_v, d_k)).astype(np.float32),
        "k": rng.standard_normal((*batch, d_k)).astype(np.float32),
        "v": rng.standard_normal((*batch, d_v)).astype(np.float32),
        "q": rng.standard_normal((*batch, d_k)).astype(np.float32),
    }


def _numpy(case: str) -> Workload:
    a = _inputs(case)
    M, k, v, q = a["M"], a["k"], a["v"], a["q"]
    if M.ndim == 2:

        def raw_write():
            return M + np.multiply.outer(v, k / np.linalg.norm(k))

        def raw_read():
            return M @ (q / np.linalg.norm(q))
    else:

        def raw_write():
            kh = k / np.linalg.norm(k, axis=-1, keepdims=True)
            return M + v[..., :, None] * kh[..., None, :]

        def raw_read():
            qh = q / np.linalg.norm(q, axis=-1, keepdims=True)
            return (M @ qh[..., :, None])[..., 0]

    return Workload(
        write=(lambda: namcore.write(M, k, v), raw_write),
        read=(lambda: namcore.read(M, q), raw_read),
        check=np.asarray,
    )


def _array_api_strict(case: str) -> Workload:
    import array_api_strict as xp

    a = {name: xp.asarray(value) for name, value in _inputs(case).items()}
    M, k, v, q = a["M"], a["k"], a["v"], a["q"]

    def raw_write():
        kh = k / xp.linalg.vector_norm(k, axis=-1, keepdims=True)
        return M + v[..., :, None] * kh[..., None, :]

    def raw_read():
        qh = q / xp.linalg.vector_norm(q, axis=-1, keepdims=True)
        return xp.matmul(M, qh[..., :, None])[..., 0]

    return Workload(
        write=(lambda: namcore.write(M, k, v), raw_write),
        read=(lambda: namcore.read(M, q), raw_read),
        check=lambda x: np.asarray(x._array),
    )


def _torch(case: str) -> Workload:
    import torch

    a = {name: torch.from_numpy(value) for name, value in _inputs(case).items()}
    M, k, v, q = a["M"], a["k"], a["v"], a["q"]
    if M.ndim == 2:

        def raw_write():
            return M + torch.outer(v, k / torch.linalg.vector_norm(k))

        def raw_read():
            return M @ (q / torch.linalg.vector_norm(q))
    else:

        def raw_write():
            kh = k / torch.linalg.vector_norm(k, dim=-1, keepdim=True)
            return M + v.unsqueeze(-1) * kh.unsqueeze(-2)

        def raw_read():
            qh = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
            return (M @ qh.unsqueeze(-1)).squeeze(-1)

    return Workload(
        write=(lambda: namcore.write(M, k, v), raw_write),
        read=(lambda: namcore.read(M, q), raw_read),
        check=lambda x: x.numpy(),
    )


def _jax(case: str, *, jit: bool) -> Workload:
    import jax
    import jax.numpy as jnp

    a = {name: jnp.asarray(value) for name, value in _inputs(case).items()}
    M, k, v, q = a["M"], a["k"], a["v"], a["q"]

    def raw_write(M, k, v):
        kh = k / jnp.linalg.norm(k, axis=-1, keepdims=True)
        return M + v[..., :, None] * kh[..., None, :]

    def raw_read(M, q):
        qh = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
        return jnp.matmul(M, qh[..., :, None])[..., 0]

    ours_write, ours_read = namcore.write, namcore.read
    if jit:
        ours_write, ours_read = jax.jit(ours_write), jax.jit(ours_read)
        raw_write, raw_read = jax.jit(raw_write), jax.jit(raw_read)
    return Workload(
        write=(
            lambda: ours_write(M, k, v).block_until_ready(),
            lambda: raw_write(M, k, v).block_until_ready(),
        ),
        read=(
            lambda: ours_read(M, q).block_until_ready(),
            lambda: raw_read(M, q).block_until_ready(),
        ),
        check=np.asarray,
    )


def _cupy(case: str) -> Workload:
    import cupy as cp

    a = {name: cp.asarray(value) for name, value in _inputs(case).items()}
    M, k, v, q = a["M"], a["k"], a["v"], a["q"]

    def synced(fn: Thunk) -> Thunk:
        def call():
            out = fn()
            cp.cuda.get_current_stream().synchronize()
            return out

        return call

    def raw_write():
        kh = k / cp.linalg.norm(k, axis=-1, keepdims=True)
        return M + v[..., :, None] * kh[..., None, :]

    def raw_read():
        qh = q / cp.linalg.norm(q, axis=-1, keepdims=True)
        return cp.matmul(M, qh[..., :, None])[..., 0]

    return Workload(
        write=(synced(lambda: namcore.write(M, k, v)), synced(raw_write)),
        read=(synced(lambda: namcore.read(M, q)), synced(raw_read)),
        check=lambda x: x.get(),
    )


def _make(backend: str, case: str) -> Workload:
    if backend == "numpy":
        return _numpy(case)
    if backend == "torch":
        return _torch(case)
    if backend in ("jax", "jax:jit"):
        return _jax(case, jit=backend == "jax:jit")
    if backend == "array_api_strict":
        return _array_api_strict(case)
    if backend == "cupy":
        return _cupy(case)
    raise ValueError(f"unknown backend {backend!r}")


def _unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or ``None`` if it can."""
    module = backend.split(":", 1)[0]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    if module == "cupy":
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() == 0:
                return "cupy sees no GPU"
        except Exception as exc:
            return f"cupy has no usable GPU ({type(exc).__name__})"
    return None


# ------------------------------------------------------------------------- report
def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    models = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    name = models[0] if models else platform.machine()
    return f"{name}, {len(models) or os.cpu_count()} logical cores"


def _versions(backends: list[str]) -> list[str]:
    mods = ["namcore", "numpy", "array_api_compat"]
    extra = {
        "torch": ["torch"],
        "jax": ["jax", "jaxlib"],
        "jax:jit": ["jax", "jaxlib"],
        "array_api_strict": ["array_api_strict"],
        "cupy": ["cupy"],
    }
    for b in backends:
        mods += [m for m in extra.get(b, []) if m not in mods]
    found = []
    for m in mods:
        try:
            found.append(f"{m} {importlib.import_module(m).__version__}")
        except Exception:  # missing or without __version__: leave it out
            continue
    return found


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # not available on this platform
        return "n/a"


def render(
    rows: list[tuple[str, str, str, Timing]],
    *,
    skipped: list[str],
    ran: list[str],
    command: str,
    repeat: int,
    min_time: float,
    load_before: str,
) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    threads = ""
    if "torch" in ran:
        import torch

        threads = f"; torch set to {torch.get_num_threads()} thread(s)"
    lines = [
        "<!-- Generated by benchmarks/dispatch.py; do not edit by hand. -->",
        "",
        f"- Date: {now}",
        f"- Command: `{command}`",
        f"- Machine: {_cpu_model()}, {platform.system()} {platform.release()}{threads}",
        f"- Python {platform.python_version()}; " + ", ".join(_versions(ran)),
        f"- Timing: best of {repeat} repeats of a loop of at least {min_time:g} s, "
        "float32 inputs, each call run to completion",
        f"- 1-minute load average: {load_before} before the run, {_load()} after it",
    ]
    if skipped:
        lines.append("- Skipped: " + "; ".join(skipped))
    lines += [
        "",
        "| backend | case | function | namcore (µs) | raw (µs) | overhead (µs) | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for backend, case, function, t in rows:
        lines.append(
            f"| {backend} | {case} | {function} | {t.namcore_us:.1f} | {t.raw_us:.1f} | "
            f"{t.overhead_us:+.1f} | {t.ratio:.2f} |"
        )
    lines += [
        "",
        "Cases: `single` is one memory with d_v = d_k = 16; `batch` is 64 memories with "
        "d_v = d_k = 64. *raw* is the same computation written by hand in the backend's "
        "own library; *overhead* is namcore minus raw, *ratio* is namcore / raw.",
        "",
    ]
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)  # mkstemp creates the file 0600; give it the usual mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 repeats of 0.02 s loops instead of 5 of 0.1 s"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"Markdown file to write (default: {DEFAULT_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated subset of {', '.join(BACKENDS)}",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch.set_num_threads for the run (default: 1; on small "
        "arrays more threads add scheduling noise, not speed)",
    )
    args = parser.parse_args(argv)
    load_before = _load()

    from tqdm import tqdm

    repeat, min_time = (3, 0.02) if args.quick else (5, 0.1)
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in wanted if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(BACKENDS)}")

    ran, skipped = [], []
    for backend in wanted:
        reason = _unavailable(backend)
        if reason is None:
            ran.append(backend)
            if backend == "torch":
                import torch

                torch.set_num_threads(args.torch_threads)
        else:
            skipped.append(f"{backend} ({reason})")
            print(f"note: skipping {backend}: {reason}", file=sys.stderr)

    jobs = [(b, c, f) for b in ran for c in CASES for f in ("write", "read")]
    rows: list[tuple[str, str, str, Timing]] = []
    workloads: dict[tuple[str, str], Workload] = {}
    for backend, case, function in tqdm(jobs, desc="dispatch", unit="timing"):
        work = workloads.get((backend, case))
        if work is None:
            work = workloads[(backend, case)] = _make(backend, case)
        ours, raw = getattr(work, function)
        np.testing.assert_allclose(
            work.check(ours()),
            work.check(raw()),
            rtol=1e-4,
            atol=1e-5,
            err_msg=f"{backend} {case} {function}",
        )
        rows.append((backend, case, function, compare(ours, raw, repeat=repeat, min_time=min_time)))

    command = "python benchmarks/dispatch.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    text = render(
        rows,
        skipped=skipped,
        ran=ran,
        command=command,
        repeat=repeat,
        min_time=min_time,
        load_before=load_before,
    )
    print(text)
    write_atomically(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
