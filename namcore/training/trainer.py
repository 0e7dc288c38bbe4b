"""The training loop: deterministic data, periodic evaluation, atomic resumable checkpoints.

A run folder ``RUN`` holds:

- ``run.json``: task, model, backend, preset, seed, steps and the model config;
- ``metrics.jsonl``: one JSON line per evaluation (step, learning rate, mean training
  loss and accuracy since the previous evaluation, sequence accuracy per split);
- ``last.safetensors``: the latest weights (:func:`namcore.models.save`);
- ``optimizer.safetensors``: the optimiser state as named arrays, with the step, the
  best score so far and the SHA-256 of ``last.safetensors`` in its metadata;
- ``best.safetensors``: the weights with the best accuracy on :func:`~.data.best_split`.

Every file is written atomically; nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from namcore import backends, tasks
from namcore._io import atomic_write
from namcore.models import config_from_dict, load, save

from .data import best_split, eval_sets, train_batch
from .presets import MODELS, get_preset, model_config

__all__ = [
    "FRAMEWORKS",
    "TrainingError",
    "evaluate_engine",
    "recorded_state",
    "require_backend",
    "selection_key",
    "train",
]

#: Backends the trainer can train with.
FRAMEWORKS: tuple[str, ...] = ("torch", "jax")
_EVAL_CHUNK = 256
# Metadata key of optimizer.safetensors that holds the trainer state.
_STATE_KEY = "namcore.trainer"


class TrainingError(ValueError):
    """Bad arguments or an unusable run folder; the message is one line for the user."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def require_backend(name: str) -> None:
    """``TrainingError`` with the install command unless backend ``name`` is installed."""
    if name not in backends.NAMES or not backends.get(name).is_installed():
        raise TrainingError(f"backend {name!r} is not installed (pip install 'namcore[{name}]')")


def recorded_state(out: Path) -> dict[str, Any]:
    """The trainer state (step, best score, best step...) stored with the optimiser."""
    import safetensors

    with safetensors.safe_open(str(out / "optimizer.safetensors"), framework="numpy") as handle:
        return json.loads((handle.metadata() or {})[_STATE_KEY])


def _engine(backend: str) -> Callable[..., Any]:
    required = {"torch": ("torch",), "jax": ("jax", "optax")}[backend]
    import importlib.util

    for module in required:
        if importlib.util.find_spec(module) is None:
            raise TrainingError(
                f"backend {backend!r} is not installed (missing {module}; "
                f"pip install 'namcore[{backend}]')"
            )
    require_backend(backend)
    if backend == "torch":
        from ._torch import TorchEngine

        return TorchEngine
    from ._jax import JAXEngine

    return JAXEngine


def evaluate_engine(engine: Any, sets: dict[str, tasks.Batch]) -> dict[str, float]:
    """Sequence accuracy of ``engine.predict`` on every batch of ``sets``."""
    scores = {}
    for name, batch in sets.items():
        preds = [
            engine.predict(batch.inputs[i : i + _EVAL_CHUNK], batch.mask[i : i + _EVAL_CHUNK])
            for i in range(0, len(batch), _EVAL_CHUNK)
        ]
        scores[name] = tasks.sequence_accuracy(np.concatenate(preds), batch)
    return scores


def selection_key(scores: dict[str, float], chosen: str) -> tuple[float, float]:
    """How checkpoints are ranked: accuracy on ``chosen``, then the mean over all splits.

    The second entry breaks ties, which are common when every checkpoint scores 0 on
    the out-of-distribution split: the one that fits the other splits best is kept,
    not merely the first.
    """
    return scores[chosen], sum(scores.values()) / len(scores)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TrainingError(f"{path} is unreadable: {error}") from None
    if not isinstance(data, dict):
        raise TrainingError(f"{path} is not a run description")
    return data


def _check_out(
    out: Path, task: str, model: str, backend: str, preset: str | None, resume: bool
) -> dict[str, Any] | None:
    """The stored run.json when resuming, None for a fresh run; raise on any conflict."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    run_file = out / "run.json"
    if run_file.exists():
        stored = _read_json(run_file)
        if (stored.get("task"), stored.get("model")) != (task, model):
            raise TrainingError(
                f"{out} holds a run of model {stored.get('model')!r} on task "
                f"{stored.get('task')!r}, not {model!r} on {task!r}"
            )
        if not resume:
            raise TrainingError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out"
            )
        if stored.get("backend") != backend:
            raise TrainingError(
                f"{out} was trained with backend {stored.get('backend')!r}; "
                f"resume it with --backend {stored.get('backend')}"
            )
        if preset is not None and stored.get("preset") != preset:
            raise TrainingError(
                f"{out} was trained with preset {stored.get('preset')!r}, not {preset!r}"
            )
        return stored
    if out.is_dir() and any(out.iterdir()):
        raise TrainingError(
            f"--out {out} is not empty and holds no run; choose an empty or new folder"
        )
    return None


def _restore(out: Path, engine: Any, config: Any) -> dict[str, Any] | None:
    """Load last + optimizer checkpoints into ``engine``; their trainer state, or None."""
    last, opt = out / "last.safetensors", out / "optimizer.safetensors"
    if not last.exists() and not opt.exists():
        return None
    try:
        import safetensors.numpy

        params, stored_config = load(last, backend="numpy")
        with safetensors.safe_open(str(opt), framework="numpy") as handle:
            meta = json.loads((handle.metadata() or {})[_STATE_KEY])
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:
        raise TrainingError(
            f"cannot resume from {out}: corrupt or missing checkpoint "
            f"({type(error).__name__}: {str(error).splitlines()[0]})"
        ) from None
    if stored_config != config:
        raise TrainingError(f"{last} holds another model config than {out / 'run.json'}")
    if meta.get("last_sha256") != _sha256(last) or meta.get("framework") != engine.framework:
        raise TrainingError(
            f"cannot resume from {out}: {last.name} and {opt.name} do not belong to the same step"
        )
    try:
        engine.load(params, arrays)
    except (ValueError, KeyError) as error:
        raise TrainingError(f"cannot resume from {out}: {error}") from None
    return meta


def _checkpoint(out: Path, engine: Any, config: Any, state: dict[str, Any], improved: bool) -> None:
    import safetensors.numpy

    params = engine.params()
    if improved:
        save(out / "best.safetensors", params, config, overwrite=True)
    save(out / "last.safetensors", params, config, overwrite=True)
    meta = {
        **state,
        "framework": engine.framework,
        "last_sha256": _sha256(out / "last.safetensors"),
    }
    arrays = {k: np.ascontiguousarray(v) for k, v in engine.optimizer_arrays().items()}
    blob = safetensors.numpy.save(arrays, metadata={_STATE_KEY: json.dumps(meta)})
    atomic_write(out / "optimizer.safetensors", blob)


def _append_metrics(path: Path, line: dict[str, Any], keep_until: int | None = None) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    if keep_until is not None:
        lines = [s for s in lines if s.strip() and json.loads(s)["step"] <= keep_until]
    if line:
        lines.append(json.dumps(line))
    atomic_write(path, "".join(s + "\n" for s in lines).encode())


def train(
    task: str,
    model: str,
    backend: str,
    out: str | Path,
    *,
    preset: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    eval_every: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``task`` with ``backend``, writing the run folder ``out``.

    Parameters
    ----------
    task, model, backend : str
        A task of :mod:`namcore.tasks`, a name of :data:`~.presets.MODELS`, and
        ``"torch"`` or ``"jax"``.
    out : path-like
        Run folder; must be new or empty unless ``resume`` continues the same run.
    preset : str, optional
        ``"smoke"``, ``"quick"`` or ``"paper"``. Default: the stored one when
        resuming, ``"quick"`` otherwise.
    seed : int, optional
        Seed of the initialisation and of the data. Default: stored, or 0.
    steps : int, optional
        Total optimiser steps. Default: stored, or the preset's.
    resume : bool
        Continue from the last checkpoint in ``out``.
    stop_after : int, optional
        Stop (as if killed) after this many total steps, once their checkpoint is
        written; for testing resumption.
    eval_every : int, optional
        Override the preset's evaluation (and checkpoint) interval; stored with the run.
    progress : bool
        Show a tqdm progress bar with the loss and training accuracy.

    Returns
    -------
    list of dict
        The metrics lines of the steps evaluated in this call.

    Raises
    ------
    TrainingError
        Bad names, a conflicting or corrupt run folder, a missing backend.
    """
    if task not in tasks.NAMES:
        raise TrainingError(f"unknown task {task!r}; choose from {', '.join(tasks.NAMES)}")
    if model not in MODELS:
        raise TrainingError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if backend not in FRAMEWORKS:
        raise TrainingError(
            f"cannot train with backend {backend!r}; choose from {', '.join(FRAMEWORKS)}"
        )
    try:
        if preset is not None:
            get_preset(preset)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    if steps is not None and steps < 1:
        raise TrainingError(f"--steps must be at least 1, got {steps}")
    out = Path(out)
    stored = _check_out(out, task, model, backend, preset, resume)
    engine_class = _engine(backend)
    if stored is not None:
        preset = stored["preset"]
        seed = stored["seed"] if seed is None else seed
        if seed != stored["seed"]:
            raise TrainingError(f"{out} was trained with seed {stored['seed']}, not {seed}")
        steps = stored["steps"] if steps is None else steps
        eval_every = stored.get("preset_values", {}).get("eval_every", eval_every)
    preset = preset or "quick"
    seed = 0 if seed is None else seed
    p = get_preset(preset)
    if eval_every is not None:
        p = dataclasses.replace(p, eval_every=max(1, int(eval_every)))
    steps = p.steps if steps is None else steps
    config = model_config(model, task, p)
    if stored is not None and config_from_dict(stored.get("config", {})) != config:
        raise TrainingError(f"{out / 'run.json'} holds another model config")

    engine = engine_class(config, p, seed)
    state: dict[str, Any] = {"step": 0, "best": -1.0, "best_step": None}
    restored = _restore(out, engine, config) if stored is not None else None
    if restored is not None:
        state = {k: restored[k] for k in state}
    run = {
        "task": task,
        "model": model,
        "backend": backend,
        "preset": preset,
        "seed": seed,
        "steps": steps,
        "config": config.to_dict(),
        "preset_values": p.to_dict(),
    }
    atomic_write(out / "run.json", (json.dumps(run, indent=2) + "\n").encode())
    metrics_path = out / "metrics.jsonl"
    _append_metrics(metrics_path, {}, keep_until=state["step"])

    sets = eval_sets(task, p.eval_size)
    chosen = best_split(task)
    end = steps if stop_after is None else min(steps, stop_after)
    lines: list[dict[str, Any]] = []
    losses: list[float] = []
    accs: list[float] = []
    from tqdm import tqdm

    bar = tqdm(
        total=end,
        initial=state["step"],
        disable=not progress,
        desc=f"{model}/{task}",
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    for step in range(state["step"], end):
        batch = train_batch(task, p, seed, step)
        lr = p.lr_at(step)
        loss, acc = engine.train_step(
            batch.inputs, batch.targets, batch.mask, batch.loss_mask, lr, step
        )
        losses.append(loss)
        accs.append(acc)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
        done = step + 1
        if done % p.eval_every and done != steps:
            continue
        scores = evaluate_engine(engine, sets)
        key = selection_key(scores, chosen)
        improved = (
            key > tuple(state["best"])
            if isinstance(state["best"], list)
            else (key[0] > state["best"])
        )
        if improved:
            state["best"], state["best_step"] = list(key), done
        line = {
            "step": done,
            "lr": lr,
            "loss": float(np.mean(losses)),
            "train_acc": float(np.mean(accs)),
            **scores,
            "elapsed_s": round(time.perf_counter() - start, 3),
        }
        losses, accs = [], []
        state["step"] = done
        _append_metrics(metrics_path, line)
        _checkpoint(out, engine, config, state, improved)
        lines.append(line)
        if progress:
            bar.write(
                " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()
                )
            )
    bar.close()
    return lines
