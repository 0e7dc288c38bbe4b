"""Probe: what one operation costs inside a JAX ``lax.scan`` on XLA's CPU backend.

Two questions behind the JAX LSAM and NAM-TM training steps (see the recurrences
page of the docs), each answered by a jitted 32-step scan, one pinned core:

1. **Stacked outputs.** Every per-step array a scan stacks is copied into place by
   an operation of its own. The probe times a scan whose step returns 0, 1, 4, 8
   and 11 small arrays (``(2, 32, 32)`` float32) to stack: distinct arrays, each
   computed for the purpose, and one array (the step's new carry) returned that many
   times.
2. **Custom kernels.** Would a hand-written kernel beat XLA's fusions on LSAM's
   memory-sized operations? The probe builds a small C++ XLA FFI library (with the
   system's ``g++``, against ``jax.ffi.include_dir()``) for the rank-1 update
   ``M + a bᵀ`` and the product ``M x`` on ``(32, 4, 16, 16)`` float32 memories (LSAM's
   at ``d_model`` 64), and times them in a scan against the same operations as the
   model steps write them in ``jax.numpy``. Without ``g++`` this part is skipped.

Times are microseconds per step: the best of ``--rounds`` interleaved rounds.
Run ``python benchmarks/xla_cpu_probe.py``; it writes ``docs/benchmarks/xla_cpu_probe.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from namcore._io import atomic_write

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
STEPS = 32

# The kernels: float32 only, leading axes flattened into one batch axis.
KERNELS = r"""
#include <cstdint>
#include "xla/ffi/api/ffi.h"
namespace ffi = xla::ffi;
using F32 = ffi::Buffer<ffi::F32>;

static void matrix_shape(const F32& m, int64_t& batch, int64_t& rows, int64_t& cols) {
  auto dims = m.dimensions();
  rows = dims[dims.size() - 2];
  cols = dims[dims.size() - 1];
  batch = rows * cols == 0 ? 0 : m.element_count() / (rows * cols);
}

// out = m + a b^T for every matrix of the batch
static ffi::Error AddOuter(F32 m, F32 a, F32 b, ffi::ResultBuffer<ffi::F32> out) {
  int64_t batch, rows, cols;
  matrix_shape(m, batch, rows, cols);
  const float *pm = m.typed_data(), *pa = a.typed_data(), *pb = b.typed_data();
  float* po = out->typed_data();
  for (int64_t s = 0; s < batch; ++s)
    for (int64_t i = 0; i < rows; ++i) {
      const float ai = pa[s * rows + i];
      const float* row = pm + (s * rows + i) * cols;
      float* dst = po + (s * rows + i) * cols;
      for (int64_t j = 0; j < cols; ++j) dst[j] = row[j] + ai * pb[s * cols + j];
    }
  return ffi::Error::Success();
}

// out = m x for every matrix of the batch
static ffi::Error MatVec(F32 m, F32 x, ffi::ResultBuffer<ffi::F32> out) {
  int64_t batch, rows, cols;
  matrix_shape(m, batch, rows, cols);
  const float *pm = m.typed_data(), *px = x.typed_data();
  float* po = out->typed_data();
  for (int64_t s = 0; s < batch; ++s)
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = pm + (s * rows + i) * cols;
      float total = 0.0f;
      for (int64_t j = 0; j < cols; ++j) total += row[j] * px[s * cols + j];
      po[s * rows + i] = total;
    }
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(ProbeAddOuter, AddOuter,
    ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Arg<F32>().Ret<F32>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(ProbeMatVec, MatVec,
    ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<F32>());
"""


def best_us(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, float]:
    """Best per-step time of each function (µs), over interleaved rounds."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls / STEPS * 1e6)
    return best


def stacked_outputs(rounds: int, calls: int) -> list[tuple[int, float, float]]:
    """Per-step time of a scan that stacks 0 to 11 distinct outputs, and 0 to 11 times one."""
    import jax
    import jax.numpy as jnp

    def scan(n: int, same: bool) -> Callable[[], Any]:
        def step(c: Any, x: Any) -> Any:
            new = jnp.tanh(c + x)
            if same:
                return new, (new,) * n
            return new, tuple(c * (i + 1.0) + x for i in range(n))

        run = jax.jit(lambda c, xs: jax.lax.scan(step, c, xs))
        c, xs = jnp.ones((2, 32, 32), jnp.float32), jnp.ones((STEPS, 2, 32, 32), jnp.float32)
        return lambda: jax.block_until_ready(run(c, xs))

    counts = (0, 1, 4, 8, 11)
    fns = {f"{n} {same}": scan(n, same) for n in counts for same in (False, True)}
    best = best_us(fns, rounds, calls)
    return [(n, best[f"{n} False"], best[f"{n} True"]) for n in counts]


def build_kernels(folder: Path) -> ctypes.CDLL | None:
    """Compile :data:`KERNELS` into ``folder``; ``None`` without ``g++``."""
    import jax

    compiler = shutil.which("g++")
    if compiler is None:
        return None
    source, library = folder / "probe.cc", folder / "libprobe.so"
    source.write_text(KERNELS)
    flags = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c++17", "-w"]
    command = [compiler, *flags, f"-I{jax.ffi.include_dir()}", str(source), "-o", str(library)]
    subprocess.run(command, check=True)
    return ctypes.CDLL(str(library))


def custom_kernels(library: ctypes.CDLL, rounds: int, calls: int) -> list[tuple[str, float, float]]:
    """(operation, XLA µs/step, custom call µs/step) for the rank-1 update and ``M x``."""
    import jax
    import jax.numpy as jnp

    from namcore.models.step_grads import matvec as library_matvec  # as the model steps do

    for name in ("ProbeAddOuter", "ProbeMatVec"):
        capsule = jax.ffi.pycapsule(getattr(library, name))
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")

    def add_outer(m: Any, a: Any, b: Any, alias: bool = False) -> Any:
        aliases = {0: 0} if alias else {}
        out = jax.ShapeDtypeStruct(m.shape, m.dtype)
        call = jax.ffi.ffi_call(
            "ProbeAddOuter", out, vmap_method="broadcast_all", input_output_aliases=aliases
        )
        return call(m, a, b)

    def matvec(m: Any, x: Any) -> Any:
        out = jax.ShapeDtypeStruct(m.shape[:-1], m.dtype)
        return jax.ffi.ffi_call("ProbeMatVec", out, vmap_method="broadcast_all")(m, x)

    rng = np.random.default_rng(0)
    memory = jnp.asarray(rng.normal(size=(32, 4, 16, 16)) * 0.1, jnp.float32)
    xs = jnp.asarray(rng.normal(size=(2, STEPS, 32, 4, 16)) * 0.1, jnp.float32)

    def scan(step: Callable[[Any, Any], Any]) -> Callable[[], Any]:
        run = jax.jit(lambda m, xs: jax.lax.scan(step, m, (xs[0], xs[1])))
        return lambda: jax.block_until_ready(run(memory, xs))

    cases = {
        "rank-1 update": (
            lambda m, x: (m + x[0][..., :, None] * x[1][..., None, :], None),
            lambda m, x: (add_outer(m, x[0], x[1]), None),
        ),
        "rank-1 update, output aliased to M": (
            lambda m, x: (m + x[0][..., :, None] * x[1][..., None, :], None),
            lambda m, x: (add_outer(m, x[0], x[1], alias=True), None),
        ),
        "M x": (
            lambda m, x: (m, library_matvec(m, x[0], jnp)),
            lambda m, x: (m, matvec(m, x[0])),
        ),
    }
    fns = {}
    for name, (xla, custom) in cases.items():
        fns[f"{name}|xla"], fns[f"{name}|ffi"] = scan(xla), scan(custom)
        first = [np.asarray(leaf) for leaf in jax.tree.leaves(fns[f"{name}|xla"]())]
        other = [np.asarray(leaf) for leaf in jax.tree.leaves(fns[f"{name}|ffi"]())]
        for a, b in zip(first, other, strict=True):  # the kernels compute the same thing
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=name)
    best = best_us(fns, rounds, calls)
    return [(name, best[f"{name}|xla"], best[f"{name}|ffi"]) for name in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (best kept)")
    parser.add_argument("--calls", type=int, default=100, help="calls per round")
    parser.add_argument("--out", type=Path, default=DOCS / "xla_cpu_probe.md")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import jax

    lines = [
        "# XLA CPU probe",
        "",
        f"jax {jax.__version__}, one pinned core, a {STEPS}-step `lax.scan`, "
        f"best of {args.rounds} rounds; µs per step.",
        "Command: `python benchmarks/xla_cpu_probe.py`.",
        "",
        "## Stacked outputs ((2, 32, 32) float32 each)",
        "",
        "| outputs stacked | distinct, µs / step | one array n times, µs / step |",
        "|---:|---:|---:|",
    ]
    for n, distinct, same in stacked_outputs(args.rounds, args.calls):
        lines.append(f"| {n} | {distinct:.1f} | {same:.1f} |")
    lines += ["", "## Custom call against XLA ((32, 4, 16, 16) float32 memory)", ""]
    with tempfile.TemporaryDirectory() as folder:
        library = build_kernels(Path(folder))
        if library is None:
            lines.append("Skipped: no `g++` on this machine.")
        else:
            lines += ["| operation | XLA µs / step | custom call µs / step |", "|---|---:|---:|"]
            for name, xla, ffi in custom_kernels(library, args.rounds, args.calls):
                lines.append(f"| {name} | {xla:.1f} | {ffi:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write(args.out, text.encode())


if __name__ == "__main__":
    main()
