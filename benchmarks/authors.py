"""Benchmark: namcore's LSAM and NAM-TM against the NAM authors' own PyTorch models.

The issue that asked for fast recurrences set goals against the authors' code
(``github.com/hwnam831/neuralattentionmemory``): a training step in at most 0.5x
their time on PyTorch and 0.33x on JAX. That repository has no license, so no part
of it is in namcore; this script reads its model file from a clone you make::

    git clone https://github.com/hwnam831/neuralattentionmemory /tmp/nam
    python benchmarks/authors.py --repo /tmp/nam

LSAM comes from commit ``972108f`` (the last one with it, ``NAM.LSAMAE``), NAM-TM
from ``2cc4586`` (``NAM.NAMTMAE``); ``git show`` copies each ``NAM.py`` into a
temporary folder, which is deleted afterwards. The matched configurations, at each
``--d-models`` width d:

- LSAM: ``LSAMConfig(d_model=d, n_heads=4, d_ff=2048)`` against ``LSAMAE(d, 4)``
  (their feed-forward block is 2,048 wide at every width);
- NAM-TM: ``NAMTMConfig(d_model=d, n_tapes=4, tape_length=32, n_layers=1,
  controller="lstm", separate_erase=True)`` (jump table and normalised heads on, the
  defaults) against ``NAMTMAE(d, vocab, nhead=4, mem_size=d // 4)``.

A training step is forward, token cross-entropy, gradients and an Adam update, at
batch 32, length 32, vocabulary 32, float32, on ``--threads`` pinned cores (default
1); the authors' models run in train mode (their dropout on), as in training.
namcore's run on PyTorch eager, on PyTorch with ``TorchBackend.compile_steps``, and
under ``jax.jit`` (optax Adam), each with its hand-derived backward (the default).
Cases are timed in interleaved rounds, best of all rounds. Writes
``docs/benchmarks/authors.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import recurrences as R  # benchmarks/recurrences.py, beside this script

from namcore._io import atomic_write

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
#: The authors' commits: (model, commit holding it, class in its NAM.py).
SOURCES = {"LSAM": ("972108f", "LSAMAE"), "NAMTM": ("2cc4586", "NAMTMAE")}
#: The issue's goals: namcore's step time ÷ the authors', per framework.
GOALS = {"torch": 0.5, "jax": 0.33}
PATHS = (("torch", "manual", "PyTorch"), ("torch", "compiled", "PyTorch, `compile_steps`"),
         ("jax", "manual", "JAX"))  # fmt: skip


def load_authors(repo: Path, folder: Path) -> dict[str, Any]:
    """The authors' ``NAM`` module of each model, read from its commit with ``git show``."""
    modules = {}
    for model, (commit, _) in SOURCES.items():
        try:
            source = subprocess.run(
                ["git", "-C", str(repo), "show", f"{commit}:NAM.py"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            sys.exit(f"authors.py: --repo {repo}: cannot read NAM.py at {commit}: {detail.strip()}")
        path = folder / f"nam_{commit}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"authors_nam_{commit}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[model] = module
    return modules


def authors_step(module: Any, model: str, d: int, tokens: np.ndarray, targets: np.ndarray) -> Any:
    """One training step of the authors' ``model`` at width ``d``, Adam, train mode."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    cls = getattr(module, SOURCES[model][1])
    if model == "LSAM":
        net = cls(d, 4, vocab_size=R.VOCAB)
    else:
        net = cls(d, R.VOCAB, nhead=4, mem_size=d // 4)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.from_numpy(tokens), torch.from_numpy(targets)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()  # their logits are (batch, vocab, length)
        opt.step()

    return step


def namcore_configs(d: int) -> dict[str, Any]:
    from namcore.models import LSAMConfig, NAMTMConfig

    return {
        "LSAM": LSAMConfig(vocab_size=R.VOCAB, d_model=d, n_heads=4, d_ff=2048),
        "NAMTM": NAMTMConfig(
            vocab_size=R.VOCAB,
            d_model=d,
            n_tapes=4,
            tape_length=R.LENGTH,
            n_layers=1,
            controller="lstm",
            separate_erase=True,
        ),
    }


def cases(modules: dict[str, Any], d: int) -> list[R.Case]:
    """Every step to time at width ``d``, as the recurrences benchmark's cases: ``model``
    is LSAM or NAMTM, ``backend`` the label of the run (``authors`` or one of ``PATHS``)."""
    tokens, targets = R.batch(np.random.default_rng(d))
    out = []
    for model, config in namcore_configs(d).items():
        step = authors_step(modules[model], model, d, tokens, targets)
        out.append(R.Case(model, "authors", "eager", step))
        for framework, path, label in PATHS:
            make = R.jax_step if framework == "jax" else R.torch_step
            out.append(R.Case(model, label, path, make(config, tokens, targets, path)))
    return out


def best_times(steps: list[R.Case], rounds: int, calls: int, desc: str) -> dict[Any, float]:
    """Best seconds per step of each case, ``(model, label) -> s``, over interleaved rounds."""
    R.time_rounds(steps, rounds, calls, desc)
    return {(case.model, case.backend): case.best for case in steps}


def table(results: dict[int, dict[tuple[str, str], float]]) -> str:
    widths = sorted(results)
    head = "| model | run | " + " | ".join(f"d {d}: ms | d {d}: × theirs" for d in widths)
    lines = [head + " | goal | met |", "|" + "---|" * (2 * len(widths) + 4)]
    for model in SOURCES:
        for framework, label in [("", "authors")] + [(f, lab) for f, _, lab in PATHS]:
            row = f"| {model} | {label} |"
            ratios = []
            for d in widths:
                ms = results[d][(model, label)] * 1e3
                ratio = results[d][(model, label)] / results[d][(model, "authors")]
                ratios.append(ratio)
                row += f" {ms:.1f} | {ratio:.2f}× |"
            goal = GOALS.get(framework)
            met = "—" if goal is None else ("yes" if max(ratios) <= goal else "no")
            lines.append(row + (" — |" if goal is None else f" ≤ {goal}× |") + f" {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="a git clone of the authors' code")
    parser.add_argument("--d-models", default="64,256", help="comma-separated widths")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per width")
    parser.add_argument("--calls", type=int, default=5, help="timed steps per case and round")
    parser.add_argument("--threads", type=int, default=1, help="cores to pin the process to")
    parser.add_argument("--out", type=Path, default=DOCS / "authors.md")
    args = parser.parse_args()
    widths = [int(d) for d in args.d_models.split(",") if d.strip()]
    from namcore.backends.allocator import reuse_freed_memory

    reuse_freed_memory()
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    import jax
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        modules = load_authors(args.repo, Path(folder))
        for d in widths:
            results[d] = best_times(cases(modules, d), args.rounds, args.calls, f"d_model={d}")
    text = (
        f"# Authors' code benchmark\n\nMeasured {dt.date.today()} on {platform.machine()} "
        f"({os.cpu_count()} cores), Python {platform.python_version()}, torch "
        f"{torch.__version__}, jax {jax.__version__}; pinned to {args.threads} core(s); load "
        f"average (1 min) {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; "
        f"best of {args.rounds} interleaved rounds of {args.calls} steps.\n"
        f"Command: `python benchmarks/authors.py --repo PATH --d-models {args.d_models} "
        f"--rounds {args.rounds}`.\n\n"
        "Training step time; × theirs is namcore's time ÷ the authors' model's at the same "
        "width. A goal is met where the ratio is at or under it at every width.\n\n"
        + table(results)
        + "\n"
    )
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(text))
    print(text)


if __name__ == "__main__":
    main()
