"""How :func:`~namcore.training.reproduce.reproduce` runs the cells of a grid.

One at a time in this process, ``jobs`` at a time in worker processes that exit with
this one, or each as a task of a ``dask.distributed`` cluster; in every case a cell is
trained (or resumed) and scored by :func:`run_cell`, and one failed cell never loses
the others.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from namcore._io import atomic_write
from namcore.backends.allocator import reuse_unless_disabled
from namcore.models import parameter_count

from . import dask_eval, report
from .evaluate import evaluate
from .presets import model_config
from .run_folder import RunFolder
from .trainer import train

if TYPE_CHECKING:  # pragma: no cover
    from .reproduce import Cell

__all__ = ["run_cell", "run_cells"]


def run_cell(
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


def _start_worker() -> None:
    """A pool worker's set-up: it only trains, so it keeps freed memory for reuse (see
    :mod:`namcore.backends.allocator`; ``NAMCORE_ALLOCATOR=system`` opts out); it
    ignores Ctrl-C (the parent stops its workers) and exits as soon as the parent
    process ends, however it ends (a ``SIGKILL`` included)."""
    reuse_unless_disabled()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="namcore-parent-watch", daemon=True).start()


def _pool(jobs: int) -> ProcessPoolExecutor:
    """Worker processes that exit with this one (:func:`_start_worker`)."""
    context = multiprocessing.get_context("spawn")  # JAX and torch do not survive fork
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker)


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


def run_cells(
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
                    finished(cell, run_cell(cell, *args, progress=progress), None)
                except Exception as error:  # one failed cell must not lose the others
                    finished(cell, None, error)
        else:
            pool = _pool(jobs)
            try:
                futures: dict[Future[dict[str, Any]], Cell] = {
                    pool.submit(run_cell, cell, *args, progress=False): cell for cell in cells
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
            client.submit(run_cell, cell, *args, progress=False, pure=False): cell for cell in cells
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
