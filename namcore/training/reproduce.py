"""``namcore reproduce``: train and score a grid of models x tasks, then report.

Every cell of the grid is an ordinary run folder ``OUT/runs/TASK-MODEL`` written by
:func:`~namcore.training.train` and scored by :func:`~namcore.training.evaluate.evaluate`,
so a cell can be inspected, evaluated on another backend or resumed on its own. Calling
:func:`reproduce` again on the same ``OUT`` resumes unfinished cells and re-scores the
finished ones without training them again.

The report (:mod:`~namcore.training.report`) goes beside the run folders:
``results.json`` (everything measured), ``results.md`` (our table beside the paper's
Table 2) and ``accuracy_vs_length.png``. :mod:`~namcore.training.reproduce_folder`
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

import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from namcore import backends, tasks
from namcore._io import atomic_write
from namcore.models import names as model_names
from namcore.models import parameter_count

from . import report, reproduce_folder
from .data import check_seed
from .engine import FRAMEWORKS, require_backend, require_modules
from .errors import TrainingError
from .evaluate import evaluate, require_eval_backend
from .lock import FolderLock
from .presets import get_preset, model_config
from .run_folder import RunFolder
from .trainer import train

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


def _run_cell(
    cell: Cell, out: str, backend: str, eval_backend: str, preset: str, seed: int, progress: bool
) -> dict[str, Any]:
    """Train (or resume) one cell, score it, and return its entry of ``results.json``."""
    folder = RunFolder(Path(out) / "runs" / cell.name)
    run_dir = folder.path
    timing = run_dir / "timing.json"
    spent = json.loads(timing.read_text())["train_s"] if timing.exists() else 0.0
    start = time.perf_counter()
    train(
        cell.task,
        cell.model,
        backend,
        run_dir,
        preset=preset,
        seed=seed,
        resume=folder.is_run(),
        progress=progress,
    )
    spent += time.perf_counter() - start
    atomic_write(timing, (json.dumps({"train_s": round(spent, 1)}) + "\n").encode())
    scores = evaluate(run_dir, eval_backend)
    run = folder.read_run()
    return {
        "task": cell.task,
        "model": cell.model,
        "run_dir": str(run_dir),
        "steps": run["steps"],
        "best_step": folder.recorded_state()["best_step"],
        "train_s": round(spent, 1),
        "parameters": parameter_count(model_config(cell.model, cell.task, preset)),
        "splits": scores["splits"],
        "checkpoint": scores["checkpoint"],
    }


def _watch_parent() -> None:
    """In a pool worker: ignore Ctrl-C (the parent stops its workers) and exit as soon
    as the parent process ends, however it ends (a ``SIGKILL`` included)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="namcore-parent-watch", daemon=True).start()


def _pool(jobs: int) -> ProcessPoolExecutor:
    """Worker processes that exit with this one (:func:`_watch_parent`)."""
    context = multiprocessing.get_context("spawn")  # JAX and torch do not survive fork
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_watch_parent)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (Ctrl-C in the parent)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


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
        ``"table2"`` (:data:`GRID_MODELS` x :data:`GRID_TASKS`, the paper's Table 2) or
        ``"ham"`` (:data:`HAM_MODELS` x :data:`HAM_TASKS`).

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
            entries, failures = _run_cells(cells, args, jobs, progress)
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
            report.write_all(out, summary)
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise TrainingError(
            f"{out}: {error.strerror or error}{where}; rerun the same command once fixed "
            "(finished runs are kept)"
        ) from None
    return summary


def _run_cells(
    cells: list[Cell], args: tuple[str, str, str, str, int], jobs: int, progress: bool
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Run every cell, ``jobs`` at a time; the entries of those that worked, and the
    failures (one line each) of the others."""
    from tqdm import tqdm

    entries: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    bar = tqdm(
        total=len(cells), desc="reproduce", unit="run", disable=not progress, dynamic_ncols=True
    )

    def finished(cell: Cell, entry: dict[str, Any] | None, error: BaseException | None) -> None:
        if error is not None:
            message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            failures.append({**asdict(cell), "error": message})
            bar.write(f"{cell.name}: FAILED {message}")
        else:
            assert entry is not None
            entries.append(entry)
            bar.write(f"{cell.name}: " + report.one_line(entry))
        bar.update(1)

    try:
        if jobs == 1 or len(cells) == 1:
            for cell in cells:
                try:
                    finished(cell, _run_cell(cell, *args, progress=progress), None)
                except Exception as error:  # one failed cell must not lose the others
                    finished(cell, None, error)
        else:
            pool = _pool(jobs)
            try:
                futures: dict[Future[dict[str, Any]], Cell] = {
                    pool.submit(_run_cell, cell, *args, progress=False): cell for cell in cells
                }
                for future in as_completed(futures):
                    failure = future.exception()
                    finished(futures[future], None if failure else future.result(), failure)
            except BaseException:
                _stop(pool)
                raise
            pool.shutdown()
    finally:
        bar.close()
    return entries, failures
