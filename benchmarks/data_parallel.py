"""Benchmark: data-parallel training throughput, ``--nproc 2`` against ``--nproc 1``.

For each engine (torch: processes with gloo and DistributedDataParallel; JAX: rows
sharded over host devices) it trains one model on one task for ``--steps`` steps at
the ``quick`` preset's batch (64 rows) with ``nproc`` = 1 and 2, in fresh
interpreters, with evaluation off (one at the end), and reports the training time and
steps per second, and the ratio to one way. The final losses are shown too: they
agree, since the two runs take the same steps.

Run ``python benchmarks/data_parallel.py`` (``--steps``, ``--model``, ``--task``).
Two ways on a 2-core machine can at most double throughput, and only when one way
leaves a core idle: torch and XLA already use both cores for one process, so expect
little, and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap

RUN = """
import json, sys, time
from namcore.training import train

if __name__ == "__main__":
    backend, model, task, steps, nproc, out = sys.argv[1:7]
    start = time.perf_counter()
    lines = train(task, model, backend, out, preset="quick", steps=int(steps),
                  eval_every=int(steps), progress=False, nproc=int(nproc))
    print(json.dumps({"seconds": time.perf_counter() - start, "loss": lines[-1]["loss"]}))
"""


def timed(
    backend: str, model: str, task: str, steps: int, nproc: int, threads: int | None, folder: str
) -> dict:
    script = os.path.join(folder, "run.py")
    with open(script, "w") as handle:
        handle.write(textwrap.dedent(RUN))
    env = dict(os.environ)
    if backend == "jax":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={nproc}"
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads
    out = os.path.join(folder, f"{backend}-{nproc}-{threads}")
    args = [backend, model, task, str(steps), str(nproc), out]
    result = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--task", default="reduce")
    args = parser.parse_args()
    from tqdm import tqdm

    rows = []
    # torch: one process with its default threads (all cores) and with one thread, then
    # two ranks (namcore gives each rank cores // ranks threads, here one).
    cases = [("torch", 1, None), ("torch", 1, 1), ("torch", 2, None), ("jax", 1, None)]
    cases.append(("jax", 2, None))
    with tempfile.TemporaryDirectory() as folder:
        for backend, nproc, threads in tqdm(cases, desc="data-parallel runs", unit="run"):
            result = timed(backend, args.model, args.task, args.steps, nproc, threads, folder)
            rows.append((backend, nproc, threads, result))
    load = os.getloadavg()[0]
    print(
        f"{args.model} on {args.task}, quick preset (batch 64), {args.steps} steps, "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"load average {load:.1f} at the end; includes start-up and compilation\n"
    )
    print("| engine | ways | torch threads per way | time (s) | steps/s | speed-up | final loss |")
    print("|---|---|---|---|---|---|---|")
    for backend, nproc, threads, result in rows:
        one = next(r for b, n, t, r in rows if b == backend and n == 1 and t is None)
        rate = args.steps / result["seconds"]
        speed = one["seconds"] / result["seconds"]
        per_way = (
            "—" if backend == "jax" else str(threads or max(1, (os.cpu_count() or 1) // nproc))
        )
        print(
            f"| {backend} | {nproc} | {per_way} | {result['seconds']:.1f} | {rate:.1f} | "
            f"{speed:.2f}x | {result['loss']:.4f} |"
        )


if __name__ == "__main__":
    main()
