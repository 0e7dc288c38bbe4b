"""The training loop: deterministic data, periodic evaluation, resumable checkpoints.

:func:`train` builds the :class:`~namcore.training.engine.Engine` of the chosen
framework, takes the learning rate of each step from the preset's one schedule
(:meth:`~namcore.training.presets.Preset.lr_at`), scores the engine every
``eval_every`` steps (:func:`~namcore.training.scoring.score_sets`) and hands
everything it writes to the :class:`~namcore.training.run_folder.RunFolder`: the
run's description, its metrics, and the atomic checkpoints a resumed run continues
from exactly. It holds the folder's lock (:mod:`~namcore.training.lock`) while it
writes, so a second process on the same folder stops with one line.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from namcore import models, tasks
from namcore.models import config_from_dict

from . import distributed
from .data import best_split, check_seed, eval_sets, train_batch
from .engine import (
    FRAMEWORKS,
    Engine,
    EngineFactory,
    engine_class,
    require_backend,
    require_modules,
)
from .errors import Interrupted, TrainingError
from .presets import Preset, get_preset, model_config
from .run_folder import Progress, RunFolder, selection_key
from .scoring import score_sets

__all__ = [
    "FRAMEWORKS",
    "Interrupted",
    "TrainingError",
    "require_backend",
    "selection_key",
    "train",
]


def _check_names(task: str, model: str, backend: str, preset: str | None) -> None:
    if task not in tasks.NAMES:
        raise TrainingError(f"unknown task {task!r}; choose from {', '.join(tasks.NAMES)}")
    choices = models.names()
    if model not in choices:
        raise TrainingError(f"unknown model {model!r}; choose from {', '.join(choices)}")
    if backend not in FRAMEWORKS:
        raise TrainingError(
            f"cannot train with backend {backend!r}; choose from {', '.join(FRAMEWORKS)}"
        )
    try:
        if preset is not None:
            get_preset(preset)
    except ValueError as error:
        raise TrainingError(str(error)) from None


@dataclasses.dataclass(frozen=True)
class _Settings:
    preset: str
    values: Preset
    seed: int
    steps: int


def _settings(
    folder: RunFolder,
    stored: dict[str, Any] | None,
    preset: str | None,
    seed: int | None,
    steps: int | None,
    eval_every: int | None,
) -> _Settings:
    """The run's preset, seed and length: those asked for, else the stored ones."""
    if stored is not None:
        preset = stored["preset"]
        seed = stored["seed"] if seed is None else seed
        if seed != stored["seed"]:
            raise TrainingError(f"{folder.path} was trained with seed {stored['seed']}, not {seed}")
        steps = stored["steps"] if steps is None else steps
        eval_every = stored.get("preset_values", {}).get("eval_every", eval_every)
    name = preset or "quick"
    values = get_preset(name)
    if eval_every is not None:
        values = dataclasses.replace(values, eval_every=max(1, int(eval_every)))
    return _Settings(
        name, values, 0 if seed is None else seed, values.steps if steps is None else steps
    )


def _describe(line: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items())


def _os_error(folder: RunFolder, error: OSError) -> str:
    """One line for an ``OSError`` while the run wrote its folder (a full disk...)."""
    what = error.strerror or str(error) or type(error).__name__
    where = f" ({error.filename})" if error.filename else ""
    kept = (
        f"; its checkpoint of step {folder.saved} is kept: rerun with --resume once fixed"
        if folder.saved is not None
        else ""
    )
    return f"{folder.path}: {what}{where}{kept}"


@dataclasses.dataclass(frozen=True)
class _Plan:
    stored: dict[str, Any] | None
    run: _Settings
    config: Any


def _plan(
    folder: RunFolder,
    task: str,
    model: str,
    backend: str,
    preset: str | None,
    seed: int | None,
    steps: int | None,
    resume: bool,
    eval_every: int | None,
) -> _Plan:
    """What the folder allows: its stored run, the settings and the config. Reads only."""
    stored = folder.claim(task, model, backend, preset, resume)
    run = _settings(folder, stored, preset, seed, steps, eval_every)
    config = model_config(model, task, run.values)
    if stored is not None and config_from_dict(stored.get("config", {})) != config:
        raise TrainingError(f"{folder.path / RunFolder.RUN} holds another model config")
    return _Plan(stored, run, config)


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
    nproc: int = 1,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``task`` with ``backend``, writing the run folder ``out``.

    Parameters
    ----------
    task, model, backend : str
        A task of :mod:`namcore.tasks`, a model of :func:`namcore.models.names`, and
        a framework of :data:`~namcore.training.engine.FRAMEWORKS` (``"torch"`` or
        ``"jax"``).
    out : path-like
        Run folder (:class:`~namcore.training.run_folder.RunFolder`); must be new or
        empty unless ``resume`` continues the same run.
    preset : str, optional
        ``"smoke"``, ``"quick"`` or ``"paper"``. Default: the stored one when
        resuming, ``"quick"`` otherwise.
    seed : int, optional
        Seed of the initialisation and of the data, from 0 to 2**32 - 1. Default:
        stored, or 0.
    steps : int, optional
        Total optimiser steps. Default: stored, or the preset's. A resumed run may be
        lengthened, or shortened down to the step it has reached.
    resume : bool
        Continue from the last checkpoint in ``out``.
    stop_after : int, optional
        Stop (as if killed) after this many total steps, once their checkpoint is
        written; for testing resumption.
    eval_every : int, optional
        Override the preset's evaluation (and checkpoint) interval; stored with the run.
    progress : bool
        Show a tqdm progress bar with the loss and training accuracy.
    nproc : int
        Data-parallel ways (:mod:`~namcore.training.distributed`): torch processes in
        a gloo/NCCL group, or JAX devices. Under ``torchrun`` (``WORLD_SIZE`` set) the
        process joins the group ``torchrun`` made, whatever ``nproc`` says.
        Each step's batch is split by rows, so the metrics equal a one-way run's up to
        rounding; rank 0 alone writes the folder.

    Returns
    -------
    list of dict
        The metrics lines of the steps evaluated in this call.

    Raises
    ------
    TrainingError
        Bad names or seed, a conflicting, corrupt or locked run folder (another
        process training in it), a missing backend or dependency, or an ``OSError``
        while writing (a full disk); the message is one line, and the last checkpoint
        written stays resumable.
    Interrupted
        Ctrl-C (a ``KeyboardInterrupt``): it says the step reached and the step
        ``resume`` continues from.
    """
    _check_names(task, model, backend, preset)
    check_seed(seed)
    if steps is not None and steps < 1:
        raise TrainingError(f"--steps must be at least 1, got {steps}")
    require_modules(("safetensors", "tqdm") if progress else ("safetensors",), backend, "training")
    folder = RunFolder(out)
    args = (folder, task, model, backend, preset, seed, steps, resume, eval_every)
    joined = backend == "torch" and distributed.join_torchrun()  # under torchrun: its group
    if backend == "torch" and nproc != 1 and not joined:
        _plan(*args)  # refuse what can be refused before starting processes
        options = {"preset": preset, "seed": seed, "steps": steps, "resume": resume}
        options |= {"stop_after": stop_after, "eval_every": eval_every, "progress": progress}
        kwargs = {"task": task, "model": model, "backend": backend, "out": out, **options}
        return distributed.launch_torch(nproc, train, {**kwargs, "nproc": nproc})
    if backend == "jax":
        distributed.prepare_jax(nproc)
    factory = distributed.engine_factory(backend, engine_class(backend), nproc)
    if distributed.rank() != 0:
        return distributed.follow(factory, task)
    handoff = distributed.Handoff()
    try:
        _plan(*args)  # refuse what can be refused before anything is written
        with folder.lock():
            plan = _plan(*args)  # again: another process may have written meanwhile
            return _train_locked(
                folder, factory, plan, task, model, steps, stop_after, progress, handoff
            )
    except OSError as error:
        handoff.fail(error)
        raise TrainingError(_os_error(folder, error)) from None
    except BaseException as error:
        handoff.fail(error)
        raise


def _train_locked(
    folder: RunFolder,
    factory: EngineFactory,
    plan: _Plan,
    task: str,
    model: str,
    steps: int | None,
    stop_after: int | None,
    progress: bool,
    handoff: distributed.Handoff,
) -> list[dict[str, Any]]:
    """The part of :func:`train` that runs with the folder's lock held."""
    run, config = plan.run, plan.config
    folder.sweep()
    folder.metrics()  # a corrupt line stops the run before anything is written
    engine = factory(config, run.values, run.seed)
    restored = folder.restore(engine, config) if plan.stored is not None else None
    state = restored or Progress()
    if state.step > run.steps:
        raise TrainingError(
            f"{folder.path} has reached step {state.step}; --steps {steps} would end it "
            "before that (nothing was changed)"
        )
    description = {
        "task": task,
        "model": model,
        "backend": engine.framework,
        "preset": run.preset,
        "seed": run.seed,
        "steps": run.steps,
        "config": config.to_dict(),
        "preset_values": run.values.to_dict(),
    }
    folder.begin(description, state.step)
    end = run.steps if stop_after is None else min(run.steps, stop_after)
    handoff.send(run, config, state.step, max(end, state.step), engine)
    return _loop(engine, folder, config, task, model, run, state, end, progress)


class _NoBar:
    """What :func:`_loop` calls on a tqdm bar, doing nothing (no progress shown)."""

    def update(self, n: int) -> None: ...
    def set_postfix(self, **values: str) -> None: ...
    def write(self, text: str) -> None: ...
    def close(self) -> None: ...


def _loop(
    engine: Engine,
    folder: RunFolder,
    config: Any,
    task: str,
    model: str,
    run: _Settings,
    state: Progress,
    end: int,
    progress: bool,
) -> list[dict[str, Any]]:
    """Steps ``state.step`` to ``end``, evaluating and checkpointing every ``eval_every``.

    Ctrl-C becomes :class:`~namcore.training.errors.Interrupted`, with the step reached.
    """
    lines: list[dict[str, Any]] = []
    if state.step >= end:  # trained to its last step already: nothing to do
        return lines
    p = run.values
    sets = eval_sets(task, p.eval_size)
    chosen = best_split(task)
    losses: list[float] = []
    accs: list[float] = []
    bar: Any = _NoBar()
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=state.step, desc=f"{model}/{task}", dynamic_ncols=True)
    start = time.perf_counter()
    done = state.step
    try:
        for step in range(state.step, end):
            batch = train_batch(task, p, run.seed, step)
            lr = p.lr_at(step)
            loss, acc = engine.train_step(
                batch.inputs, batch.targets, batch.mask, batch.loss_mask, lr, step
            )
            done = step + 1
            losses.append(loss)
            accs.append(acc)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
            if done % p.eval_every and done != run.steps:
                continue
            scores = {name: s["accuracy"] for name, s in score_sets(engine.predict, sets).items()}
            line = {
                "step": done,
                "lr": lr,
                "loss": float(np.mean(losses)),
                "train_acc": float(np.mean(accs)),
                **scores,
                "elapsed_s": round(time.perf_counter() - start, 3),
            }
            losses, accs = [], []
            folder.record(line, selection_key(scores, chosen), engine, config, state)
            lines.append(line)
            bar.write(_describe(line))
    except KeyboardInterrupt:
        raise Interrupted(done, folder.saved) from None
    finally:
        bar.close()
    return lines
