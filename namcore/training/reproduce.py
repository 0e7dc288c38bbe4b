"""``namcore reproduce``: train and score a grid of models x tasks, then report.

Every cell of the grid is an ordinary run folder ``OUT/runs/TASK-MODEL`` written by
:func:`~namcore.training.train` and scored by :func:`~namcore.training.evaluate.evaluate`,
so a cell can be inspected, evaluated on another backend or resumed on its own. Calling
:func:`reproduce` again on the same ``OUT`` resumes unfinished cells and re-scores the
finished ones without training them again.

The report (:mod:`~namcore.training.report`) goes beside the run folders:
``results.json`` (everything measured), ``results.md`` (our table beside the paper's
Table 2) and ``accuracy_vs_length.png``; the ``lra`` grid (Table 1) adds the step
times of each model against sequence length (``step_time_vs_length.png``), measured by
:func:`step_times` once training is done. :mod:`~namcore.training.reproduce_folder`
decides which folders may be written and keeps every cell of an earlier report. A
call holds the lock of ``OUT`` (and each cell that of its run folder) while it runs,
and its worker processes exit when it does, however it ends.

Examples
--------
>>> from namcore.training.reproduce import grid
>>> [(cell.task, cell.model) for cell in grid(["lstm", "namtm"], ["reduce"])]
[('reduce', 'namtm'), ('reduce', 'lstm')]
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from namcore import backends, tasks
from namcore.models import names as model_names

from . import dask_eval, report, reproduce_folder
from .cells import run_cells
from .data import check_seed
from .engine import FRAMEWORKS, require_backend, require_modules
from .errors import TrainingError
from .evaluate import require_eval_backend
from .lock import FolderLock
from .lra import LRA_MODELS, LRA_PLAN, STEP_TIME_LENGTHS, step_times
from .presets import get_preset

__all__ = [
    "GRIDS",
    "GRID_MODELS",
    "GRID_TASKS",
    "HAM_MODELS",
    "HAM_TASKS",
    "MEMORY_MODELS",
    "Cell",
    "default_backend",
    "grid",
    "reproduce",
]

#: Models of the reproduction grid, in the order of the report's columns.
GRID_MODELS: tuple[str, ...] = (
    "transformer",
    "lstm",
    "ut",
    "dnc",
    "lsam",
    "namtm",
    "namtm-nojump",
    "nam-transformer",
)
#: Tasks of the reproduction grid, in the order of the report's rows.
GRID_TASKS: tuple[str, ...] = ("reverse", "add", "reduce", "dyck", "scan")

#: The HAM grid (``--grid ham``): HAM with REINFORCE, DHAM and the LSTM baseline on the
#: HAM paper's tasks, with reverse as the bridge to Table 2.
HAM_MODELS: tuple[str, ...] = ("ham", "ham-soft", "lstm")
HAM_TASKS: tuple[str, ...] = (
    "reverse",
    "sort",
    "merge",
    "search",
    "stack",
    "queue",
    "priority-queue",
)
#: The extended grid (``--grid memory-networks``): the classic memory networks (NTM,
#: DNC, MemN2N, the Universal Transformer) beside NAM-TM on Table 2's tasks.
MEMORY_MODELS: tuple[str, ...] = ("ntm", "dnc", "memn2n", "ut", "namtm")
#: Named grids: default models and tasks of ``namcore reproduce --grid NAME``.
GRIDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "table2": (GRID_MODELS, GRID_TASKS),
    "ham": (HAM_MODELS, HAM_TASKS),
    "memory-networks": (MEMORY_MODELS, GRID_TASKS),
    "lra": (LRA_MODELS, ("listops",)),
}

# Relative cost of a training step, to start the longest cells first.
_MODEL_COST = {
    "namtm": 5.0,
    "namtm-nojump": 4.5,
    "dnc": 4.0,
    "ntm": 3.0,
    "ut": 3.0,
    "lsam": 2.0,
    "ham": 2.0,
    "ham-soft": 3.0,
}
_TASK_COST = {"scan": 3.0, "dyck": 2.0, "add": 1.6}


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a model trained on a task."""

    task: str
    model: str

    @property
    def name(self) -> str:
        """Folder name of the run, ``TASK-MODEL``."""
        return f"{self.task}-{self.model}"

    @property
    def cost(self) -> float:
        """Rough relative training cost, used to schedule long cells first."""
        return _MODEL_COST.get(self.model, 1.0) * _TASK_COST.get(self.task, 1.0)


def grid(
    models: list[str] | None = None,
    task_names: list[str] | None = None,
    name: str = "table2",
    *,
    longest_first: bool = True,
) -> list[Cell]:
    """The cells of ``models`` x ``task_names`` (default: those of grid ``name``).

    Longest first (for scheduling), or in the order asked for (task by task).

    Raises
    ------
    TrainingError
        An unknown grid, model or task name, or an empty selection.
    """
    if name not in GRIDS:
        raise TrainingError(f"unknown grid {name!r}; choose from {', '.join(GRIDS)}")
    models = list(GRIDS[name][0] if models is None else models)
    task_names = list(GRIDS[name][1] if task_names is None else task_names)
    choices = model_names()
    for model in models:
        if model not in choices:
            raise TrainingError(
                f"unknown model {model!r} in --models; choose from {', '.join(choices)}"
            )
    for task in task_names:
        if task not in tasks.NAMES:
            raise TrainingError(
                f"unknown task {task!r} in --tasks; choose from {', '.join(tasks.NAMES)}"
            )
    if not models or not task_names:
        raise TrainingError("--models and --tasks must each name at least one entry")
    cells = [Cell(t, m) for t in dict.fromkeys(task_names) for m in dict.fromkeys(models)]
    return sorted(cells, key=lambda c: -c.cost) if longest_first else cells


def default_backend() -> str:
    """``"jax"`` when JAX and optax are installed (faster on CPU), else ``"torch"``."""
    import importlib.util

    if all(importlib.util.find_spec(m) is not None for m in ("jax", "optax")):
        return "jax"
    return "torch"


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def reproduce(
    out: str | os.PathLike[str],
    *,
    preset: str = "quick",
    models: list[str] | None = None,
    task_names: list[str] | None = None,
    backend: str | None = None,
    eval_backend: str | None = None,
    seed: int = 0,
    jobs: int | None = None,
    progress: bool = True,
    command: str | None = None,
    grid_name: str = "table2",
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Train and evaluate every cell of the grid, then write the report into ``out``.

    Parameters
    ----------
    out : path-like
        Output folder; run folders go to ``out/runs/TASK-MODEL``. An existing ``out``
        written by an earlier call is resumed (with the same preset and backend).
    preset : str
        ``"smoke"``, ``"quick"`` or ``"paper"``.
    models, task_names : list of str, optional
        The models and tasks to run (default: those of ``grid_name``).
    backend : str, optional
        ``"torch"`` or ``"jax"`` for training; default :func:`default_backend`.
    eval_backend : str, optional
        Backend of the final scoring (any of numpy, cupy, torch, jax); default ``backend``.
    seed : int
        Seed of every run.
    jobs : int, optional
        Runs trained at once, each in its own process; default ``min(4, cpu_count)``.
        ``1`` trains in this process with a progress bar per run.
    progress : bool
        Show progress bars.
    command : str, optional
        The command line to record in the report.
    grid_name : str
        ``"table2"`` (:data:`GRID_MODELS` x :data:`GRID_TASKS`, the paper's Table 2),
        ``"ham"`` (:data:`HAM_MODELS` x :data:`HAM_TASKS`), ``"memory-networks"``, or
        ``"lra"`` (:data:`LRA_MODELS` on ListOps, Table 1; :data:`LRA_PLAN` picks the
        task and the preset, and the summary gets ``"step_times"``).
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://HOST:PORT``): each cell
        runs as one task on its workers instead of in local processes (``jobs`` is
        then ignored), with the same resuming and report. ``out`` must be on a
        filesystem every worker sees.

    Returns
    -------
    dict
        The content of ``results.json``: settings, machine, wall time and, per run,
        its accuracies per split and per length, parameters and training time. Runs
        that failed are listed under ``"failures"`` with their error.

    Raises
    ------
    TrainingError
        Unknown names, a missing backend, or an ``out`` that is a file.
    """
    if grid_name == "lra" and preset in LRA_PLAN:
        task, preset = LRA_PLAN[preset]
        task_names = [task] if task_names is None else task_names
    asked = grid(models, task_names, grid_name, longest_first=False)  # the report's order
    cells = sorted(asked, key=lambda c: -c.cost)  # longest first
    try:
        get_preset(preset)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    check_seed(seed)
    backend = backend or default_backend()
    if backend not in FRAMEWORKS:
        raise TrainingError(
            f"cannot train with backend {backend!r}; choose from {', '.join(FRAMEWORKS)}"
        )
    eval_backend = eval_backend or backend
    require_backend(backend)
    require_eval_backend(eval_backend, "--eval-backend")
    if scheduler is not None:
        dask_eval.check_scheduler(scheduler, "--scheduler")  # a malformed address, at once
    require_modules(("safetensors", "tqdm", "matplotlib"), backend, "namcore reproduce")
    jobs = min(4, os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise TrainingError(f"--jobs must be at least 1, got {jobs}")
    out = Path(out)
    settings = {"preset": preset, "seed": seed, "backend": backend}
    reproduce_folder.check_out(out, settings)
    try:
        with FolderLock(out):
            reproduce_folder.check_out(out, settings)  # again, under the lock
            reproduce_folder.write_marker(out, settings)
            (out / "runs").mkdir(exist_ok=True)
            args = (str(out), backend, eval_backend, preset, seed)
            start = time.perf_counter()
            entries, failures = run_cells(cells, args, jobs, progress, scheduler)
            # report rows and columns in the order asked for (the grid's by default)
            order = {c: i for i, c in enumerate(asked)}
            entries.sort(key=lambda e: order.get(Cell(e["task"], e["model"]), len(order)))
            versions = {
                name: backends.get(name).version()
                for name in dict.fromkeys((backend, eval_backend))
            }
            summary = {
                "command": command,
                "grid": grid_name,
                "preset": preset,
                "preset_values": get_preset(preset).to_dict(),
                "backend": backend,
                "eval_backend": eval_backend,
                "versions": versions,
                "seed": seed,
                "jobs": jobs,
                **({"scheduler": scheduler} if scheduler else {}),
                "machine": _machine(),
                "wall_s": round(time.perf_counter() - start, 1),
                "runs": entries,
                "failures": failures,
            }
            summary = reproduce_folder.merge(
                summary,
                reproduce_folder.previous(out),
                list(dict.fromkeys(c.task for c in asked)),
                list(dict.fromkeys(c.model for c in asked)),
            )
            if grid_name == "lra":
                names = list(dict.fromkeys(c.model for c in asked))
                task = asked[0].task
                lengths = STEP_TIME_LENGTHS.get(preset, STEP_TIME_LENGTHS["quick"])
                summary["step_times"] = step_times(names, task, preset, backend, lengths, seed=seed)
            report.write_all(out, summary)
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise TrainingError(
            f"{out}: {error.strerror or error}{where}; rerun the same command once fixed "
            "(finished runs are kept)"
        ) from None
    return summary
