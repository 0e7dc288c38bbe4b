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


def evaluate(run_dir: str | Path, backend: str = "numpy", *, checkpoint: str | None = None,
             write: bool = True) -> dict[str, Any]:
    """Score the best (else last) checkpoint of ``run_dir`` on every split of its task.

    Parameters
    ----------
    run_dir : path-like
        A folder written by :func:`namcore.training.train`.
    backend : str
        ``"numpy"``, ``"cupy"``, ``"torch"`` or ``"jax"``.
    checkpoint : str, optional
        File name inside ``run_dir``. Default: ``best.safetensors`` if present, else
        ``last.safetensors``.
    write : bool
        Write the result to ``run_dir/eval.json`` (atomically).

    Returns
    -------
    dict
        ``{"checkpoint", "backend", "task", "model", "splits": {split: {"accuracy",
        "by_length": {length: accuracy}}}}``.

    Raises
    ------
    TrainingError
        No run, an unknown or missing backend, or a corrupt checkpoint.
    """
    run_dir = Path(run_dir)
    if backend not in ("numpy", "cupy", "torch", "jax"):
        raise TrainingError(f"unknown backend {backend!r}; choose from numpy, cupy, torch, jax")
    if not (run_dir / "run.json").is_file():
        raise TrainingError(f"{run_dir} holds no run (no run.json)")
    try:
        run = json.loads((run_dir / "run.json").read_text())
        task, size = run["task"], int(run["preset_values"]["eval_size"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainingError(f"{run_dir / 'run.json'} is unreadable: {error}") from None
    require_backend(backend)
    if checkpoint is None:
        checkpoint = next((name for name in ("best.safetensors", "last.safetensors")
                           if (run_dir / name).exists()), "best.safetensors")
    try:
        params, config = load(run_dir / checkpoint, backend=backend)
    except (OSError, ValueError, ImportError) as error:
        raise TrainingError(f"cannot load {run_dir / checkpoint}: "
                            f"{str(error).splitlines()[0]}") from None
    predict = _predictor(backend, params, config)
    splits: dict[str, Any] = {}
    for name, batch in eval_sets(task, size, list(tasks.splits(task))).items():
        preds = np.concatenate([predict(batch.inputs[i:i + _CHUNK], batch.mask[i:i + _CHUNK])
                                for i in range(0, len(batch), _CHUNK)])
        splits[name] = {"accuracy": tasks.sequence_accuracy(preds, batch),
                        "by_length": {str(k): v
                                      for k, v in tasks.accuracy_by_length(preds, batch).items()}}
    result = {"checkpoint": checkpoint, "backend": backend, "task": task,
              "model": run.get("model"), "splits": splits}
    if write:
        atomic_write(run_dir / "eval.json", (json.dumps(result, indent=2) + "\n").encode())
    return result


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`evaluate` as a plain-text table."""
    lines = [f"{result['model']} on {result['task']} ({result['checkpoint']}, "
             f"{result['backend']})", f"{'split':<12} {'accuracy':>9}  lengths", "-" * 40]
    for name, entry in result["splits"].items():
        lengths = sorted(int(k) for k in entry["by_length"])
        span = f"{lengths[0]}-{lengths[-1]}" if lengths else ""
        lines.append(f"{name:<12} {100 * entry['accuracy']:>8.1f}%  {span}")
    return "\n".join(lines)
