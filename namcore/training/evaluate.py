"""Evaluating a saved run on any backend: accuracy per split and per input length.

The NumPy path imports neither torch nor jax, so a run trained on a GPU can be
checked on any machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

import numpy as np

from namcore import backends, tasks
from namcore._io import atomic_write
from namcore.models import forward, load

from .data import eval_sets
from .engine import require_backend
from .errors import TrainingError
from .run_folder import RunFolder
from .scoring import Predict, score_sets

__all__ = [
    "DASK_CHUNK",
    "eval_backends",
    "evaluate",
    "format_table",
    "predictor",
    "require_eval_backend",
]


def eval_backends() -> tuple[str, ...]:
    """Backends that score a run, in the order of :data:`namcore.backends.NAMES`.

    Those with a model package in :mod:`namcore.models` (``numpy``, ``torch``,
    ``jax``, ``cupy``), and ``dask``, which runs the NumPy models chunk by chunk
    (:mod:`~namcore.training.dask_eval`).

    Examples
    --------
    >>> from namcore.training.evaluate import eval_backends
    >>> eval_backends()
    ('numpy', 'torch', 'jax', 'cupy', 'dask')
    """
    return tuple(
        name
        for name in backends.NAMES
        if name == "dask" or importlib.util.find_spec(f"namcore.models.{name}") is not None
    )


def require_eval_backend(name: str, option: str = "backend") -> None:
    """``TrainingError`` unless ``name`` is one of :func:`eval_backends` and installed.

    An unknown name lists the choices; a known one that is not installed names the
    extra to install (NumPy always is).

    Examples
    --------
    >>> from namcore.training.evaluate import require_eval_backend
    >>> require_eval_backend("numpy")
    >>> require_eval_backend("bogus", "--eval-backend")
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: unknown --eval-backend 'bogus'; choose from \
numpy, torch, jax, cupy, dask
    """
    choices = eval_backends()
    if name not in choices:
        raise TrainingError(f"unknown {option} {name!r}; choose from {', '.join(choices)}")
    require_backend(name)


def predictor(backend: str, params: dict[str, Any], config: Any) -> Predict:
    """``predict(inputs, mask) -> token ids`` of the model ``config`` on ``backend``.

    ``params`` are arrays of ``backend``; inputs and predictions are NumPy arrays.
    """
    target = backends.get(backend)
    run = target.jit(lambda p, x, m: forward(p, x, m, config=config))

    def predict(inputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x, m = target.from_numpy(inputs), target.from_numpy(mask)
        ids: np.ndarray = np.argmax(target.to_numpy(run(params, x, m)), axis=-1)
        return ids

    return predict


#: Samples per Dask task of ``evaluate(..., backend="dask")`` unless ``chunk`` is given.
DASK_CHUNK = 1024


def evaluate(
    run_dir: str | os.PathLike[str],
    backend: str = "numpy",
    *,
    checkpoint: str | None = None,
    write: bool = True,
    size: int | None = None,
    chunk: int | None = None,
    scheduler: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score the best (else last) checkpoint of ``run_dir`` on every split of its task.

    Parameters
    ----------
    run_dir : path-like
        A folder written by :func:`namcore.training.train`.
    backend : str
        One of :func:`eval_backends`: ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``
        or ``"dask"``. With ``"dask"``
        the test set is generated and scored chunk by chunk in Dask tasks (see
        :mod:`namcore.training.dask_eval`), locally or on a cluster.
    checkpoint : str, optional
        File name inside ``run_dir``. Default: ``best.safetensors`` if present, else
        ``last.safetensors``.
    write : bool
        Write the result to ``run_dir/eval.json`` (atomically).
    size : int, optional
        Samples per split. Default: the run's ``eval_size``.
    chunk : int, optional
        Samples per Dask task (``backend="dask"`` only). Default: :data:`DASK_CHUNK` (1024).
    scheduler : str or distributed.Client, optional
        ``backend="dask"`` only: a ``dask.distributed`` scheduler address or client.
        Default: Dask's local threaded scheduler. An address is checked before any
        work (:func:`~namcore.training.dask_eval.check_scheduler`) and reached within
        seconds or refused (see :mod:`~namcore.training.dask_eval`).
    progress : bool
        ``backend="dask"`` only: show Dask's progress bar.

    Returns
    -------
    dict
        ``{"checkpoint", "backend", "task", "model", "size", "splits": {split:
        {"accuracy", "by_length": {length: accuracy}}}}``.

    Raises
    ------
    TrainingError
        No run, an unknown or missing backend, a bad size or chunk, a corrupt
        checkpoint, or a malformed or unreachable scheduler (or no
        ``dask.distributed`` to reach it with).
    """
    folder = RunFolder(run_dir)
    choices = eval_backends()
    if backend not in choices:
        raise TrainingError(f"unknown backend {backend!r}; choose from {', '.join(choices)}")
    for name, value in (("size", size), ("chunk", chunk)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise TrainingError(f"{name} must be a positive integer, got {value!r}")
    if backend != "dask" and (scheduler is not None or chunk is not None):
        raise TrainingError("chunk and scheduler are options of backend='dask'")
    if isinstance(scheduler, str):  # malformed, or no dask.distributed: say so before any work
        from .dask_eval import check_scheduler

        check_scheduler(scheduler)
    if not folder.is_run():
        raise TrainingError(f"{folder.path} holds no run (no run.json)")
    run = folder.read_run()
    try:
        task = run["task"]
        size = int(run["preset_values"]["eval_size"]) if size is None else size
    except (ValueError, KeyError, TypeError) as error:
        raise TrainingError(f"{folder.path / RunFolder.RUN} is unreadable: {error}") from None
    require_backend(backend)
    path = folder.checkpoint(checkpoint) or folder.path / (checkpoint or RunFolder.BEST)
    try:
        params, config = load(path, backend="numpy" if backend == "dask" else backend)
    except (OSError, ValueError, ImportError) as error:
        raise TrainingError(f"cannot load {path}: {str(error).splitlines()[0]}") from None
    if backend == "dask":
        from .dask_eval import score_splits

        splits = score_splits(
            task,
            list(tasks.splits(task)),
            params,
            config,
            size=size,
            chunk=DASK_CHUNK if chunk is None else chunk,
            scheduler=scheduler,
            progress=progress,
        )
    else:
        splits = _score_in_process(backend, params, config, task, size)
    result = {
        "checkpoint": checkpoint or path.name,
        "backend": backend,
        "task": task,
        "model": run.get("model"),
        "size": size,
        "splits": splits,
    }
    if write:
        atomic_write(folder.path / "eval.json", (json.dumps(result, indent=2) + "\n").encode())
    return result


def _score_in_process(
    backend: str, params: dict[str, Any], config: Any, task: str, size: int
) -> dict[str, Any]:
    sets = eval_sets(task, size, list(tasks.splits(task)))
    return score_sets(predictor(backend, params, config), sets)


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`evaluate` as a plain-text table."""
    lines = [
        f"{result['model']} on {result['task']} ({result['checkpoint']}, {result['backend']})",
        f"{'split':<12} {'accuracy':>9}  lengths",
        "-" * 40,
    ]
    for name, entry in result["splits"].items():
        lengths = sorted(int(k) for k in entry["by_length"])
        span = f"{lengths[0]}-{lengths[-1]}" if lengths else ""
        lines.append(f"{name:<12} {100 * entry['accuracy']:>8.1f}%  {span}")
    return "\n".join(lines)
