"""Evaluating a saved run on any backend: accuracy per split and per input length.

The NumPy path imports neither torch nor jax, so a run trained on a GPU can be
checked on any machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from namcore import backends, tasks
from namcore._io import atomic_write
from namcore.models import forward, load

from .data import eval_sets
from .trainer import TrainingError, require_backend

__all__ = ["evaluate", "format_table"]

_CHUNK = 256


def _predictor(backend: str, params: dict[str, Any], config: Any) -> Any:
    target = backends.get(backend)
    run = target.jit(lambda p, x, m: forward(p, x, m, config=config))

    def predict(inputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x, m = target.from_numpy(inputs), target.from_numpy(mask)
        return np.argmax(target.to_numpy(run(params, x, m)), axis=-1)

    return predict


_BACKENDS = ("numpy", "cupy", "torch", "jax", "dask")
#: Samples per Dask task of ``evaluate(..., backend="dask")`` unless ``chunk`` is given.
DASK_CHUNK = 1024


def evaluate(
    run_dir: str | Path,
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
        ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"`` or ``"dask"``. With ``"dask"``
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
        Default: Dask's local threaded scheduler.
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
        No run, an unknown or missing backend, a bad size or chunk, or a corrupt
        checkpoint.
    """
    run_dir = Path(run_dir)
    if backend not in _BACKENDS:
        raise TrainingError(f"unknown backend {backend!r}; choose from {', '.join(_BACKENDS)}")
    for name, value in (("size", size), ("chunk", chunk)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise TrainingError(f"{name} must be a positive integer, got {value!r}")
    if backend != "dask" and (scheduler is not None or chunk is not None):
        raise TrainingError("chunk and scheduler are options of backend='dask'")
    if not (run_dir / "run.json").is_file():
        raise TrainingError(f"{run_dir} holds no run (no run.json)")
    try:
        run = json.loads((run_dir / "run.json").read_text())
        task = run["task"]
        size = int(run["preset_values"]["eval_size"]) if size is None else size
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainingError(f"{run_dir / 'run.json'} is unreadable: {error}") from None
    require_backend(backend)
    if checkpoint is None:
        checkpoint = next(
            (
                name
                for name in ("best.safetensors", "last.safetensors")
                if (run_dir / name).exists()
            ),
            "best.safetensors",
        )
    try:
        params, config = load(
            run_dir / checkpoint, backend="numpy" if backend == "dask" else backend
        )
    except (OSError, ValueError, ImportError) as error:
        raise TrainingError(
            f"cannot load {run_dir / checkpoint}: {str(error).splitlines()[0]}"
        ) from None
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
        "checkpoint": checkpoint,
        "backend": backend,
        "task": task,
        "model": run.get("model"),
        "size": size,
        "splits": splits,
    }
    if write:
        atomic_write(run_dir / "eval.json", (json.dumps(result, indent=2) + "\n").encode())
    return result


def _score_in_process(
    backend: str, params: dict[str, Any], config: Any, task: str, size: int
) -> dict[str, Any]:
    predict = _predictor(backend, params, config)
    splits: dict[str, Any] = {}
    for name, batch in eval_sets(task, size, list(tasks.splits(task))).items():
        preds = np.concatenate(
            [
                predict(batch.inputs[i : i + _CHUNK], batch.mask[i : i + _CHUNK])
                for i in range(0, len(batch), _CHUNK)
            ]
        )
        splits[name] = {
            "accuracy": tasks.sequence_accuracy(preds, batch),
            "by_length": {str(k): v for k, v in tasks.accuracy_by_length(preds, batch).items()},
        }
    return splits


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
