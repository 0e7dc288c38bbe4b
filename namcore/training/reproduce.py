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

import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from namcore import backends, tasks
from namcore._io import atomic_write
from namcore.models import names as model_names
from namcore.models import parameter_count

from . import dask_eval, report, reproduce_folder
from .data import check_seed
from .engine import FRAMEWORKS, engine_class, require_backend, require_modules
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
    "LRA_MODELS",
    "LRA_PLAN",
    "MEMORY_MODELS",
    "STEP_TIME_LENGTHS",
    "Cell",
    "default_backend",
    "grid",
    "reproduce",
    "step_times",
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
#: The LRA grid (``--grid lra``): Table 1's three encoders, with shared hyperparameters.
LRA_MODELS: tuple[str, ...] = ("transformer", "nam-transformer", "linear-transformer")
#: What ``--grid lra --preset NAME`` trains: (ListOps task, preset). Only ``paper`` uses
#: LRA's lengths (500–2000, with :data:`~namcore.training.presets.LRA_PRESETS`'s
#: ``lra-paper``); the CPU presets train ``listops-short`` (lengths 32–128).
LRA_PLAN: dict[str, tuple[str, str]] = {
    "smoke": ("listops-short", "smoke"),
    "quick": ("listops-short", "quick"),
    "paper": ("listops", "lra-paper"),
}
#: Padded sequence lengths of :func:`step_times`, by the preset the grid trains with.
STEP_TIME_LENGTHS: dict[str, tuple[int, ...]] = {
    "smoke": (32, 64),
    "quick": (64, 128, 256, 512, 1024),
    "lra-paper": (256, 512, 1024, 2000),
}
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
            entries, failures = _run_cells(cells, args, jobs, progress, scheduler)
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


def _run_cells(
    cells: list[Cell],
    args: tuple[str, str, str, str, int],
    jobs: int,
    progress: bool,
    scheduler: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Run every cell, ``jobs`` at a time (or as tasks of the Dask ``scheduler``); the
    entries of those that worked, and the failures (one line each) of the others."""
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
        if scheduler is not None:
            _run_on_dask(cells, args, scheduler, finished)
        elif jobs == 1 or len(cells) == 1:
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


def _run_on_dask(
    cells: list[Cell],
    args: tuple[str, str, str, str, int],
    scheduler: str,
    finished: Any,
) -> None:
    """Each cell as one task of the cluster at ``scheduler``; ``finished`` as each ends.

    The workers write the run folders under ``out`` themselves, so ``out`` must be on a
    filesystem they all see. Ctrl-C cancels the tasks not yet done.
    """
    from distributed import as_completed

    client = dask_eval.connect(scheduler)
    try:
        futures = {
            client.submit(_run_cell, cell, *args, progress=False, pure=False): cell
            for cell in cells
        }
        try:
            for future in as_completed(futures):
                failure = future.exception() if future.status == "error" else None
                finished(futures[future], None if failure else future.result(), failure)
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        client.close()


def step_times(
    models: Sequence[str],
    task: str,
    preset: str,
    backend: str,
    lengths: Sequence[int],
    *,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """Seconds per training step of each model, at each padded sequence length.

    Each model gets the config :func:`~namcore.training.presets.model_config` builds
    for ``task`` and ``preset`` (learned positions widened to the length when needed)
    and trains on a random batch of the preset's size with every position real: one
    step to warm up (JAX compiles), then the median of ``repeats`` steps. A length that
    fails (out of memory) gets None.

    Returns
    -------
    dict
        ``{model: {str(length): seconds or None}}``.

    Examples
    --------
    >>> times = step_times(["nam-transformer"], "listops-short", "smoke", "torch", [16])
    >>> list(times["nam-transformer"]), times["nam-transformer"]["16"] > 0
    (['16'], True)
    """
    p = get_preset(preset)
    factory = engine_class(backend)
    rng = np.random.default_rng(seed)
    vocab = tasks.get(task).vocab_size
    out: dict[str, dict[str, float | None]] = {}
    for model in models:
        base = model_config(model, task, p)
        out[model] = {}
        for length in lengths:
            config = base
            if getattr(config, "positions", None) == "learned" and config.max_length < length:
                config = config.replace(max_length=length)
            inputs = rng.integers(len(tasks.SPECIALS), vocab, size=(p.batch_size, length))
            mask = np.ones(inputs.shape, dtype=bool)
            loss_mask = np.zeros(inputs.shape, dtype=bool)
            loss_mask[:, -2] = True
            seconds: list[float] = []
            try:
                engine = factory(config, p, seed)
                for step in range(repeats + 1):
                    start = time.perf_counter()
                    engine.train_step(inputs, inputs, mask, loss_mask, p.lr, step)
                    seconds.append(time.perf_counter() - start)
            except (MemoryError, RuntimeError, ValueError):
                out[model][str(length)] = None
                continue
            out[model][str(length)] = float(np.median(seconds[1:]))
    return out
