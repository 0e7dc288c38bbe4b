"""The run folder of one training run: its files, resumption and checkpoint selection.

A run folder ``RUN`` holds:

- ``run.json``: task, model, backend, preset, seed, steps and the model config;
- ``metrics.jsonl``: one JSON line per evaluation (step, learning rate, mean training
  loss and accuracy since the previous evaluation, sequence accuracy per split);
- ``last.safetensors``: the latest weights (:func:`namcore.models.save`);
- ``optimizer.safetensors``: the optimiser state as named arrays, with the trainer's
  :class:`Progress`, the framework and the SHA-256 of ``last.safetensors`` in its
  metadata (so a ``last`` and an ``optimizer`` of different steps are never mixed);
- ``best.safetensors``: the weights ranked first by :func:`selection_key`.

Every file is written atomically (:func:`namcore._io.atomic_write`); nothing is
pickled. :class:`RunFolder` is the only code that knows these names: the trainer
writes through it, and ``namcore eval``, ``namcore reproduce`` and ONNX export find
a run's checkpoint with :meth:`RunFolder.checkpoint`.

Examples
--------
>>> import tempfile
>>> from namcore.training.run_folder import RunFolder
>>> folder = RunFolder(tempfile.mkdtemp())
>>> folder.is_run(), folder.checkpoint()
(False, None)
>>> folder.claim("reduce", "lstm", "torch", "smoke", resume=False) is None  # a fresh run
True
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from namcore._io import atomic_write
from namcore.models import ModelConfig, load, save

from .engine import Engine
from .errors import TrainingError

__all__ = ["Progress", "RunFolder", "improves", "selection_key"]

# Metadata key of optimizer.safetensors that holds the trainer state.
_STATE_KEY = "namcore.trainer"


def selection_key(scores: dict[str, float], chosen: str) -> tuple[float, float]:
    """How checkpoints are ranked: accuracy on ``chosen``, then the mean over all splits.

    The second entry breaks ties, which are common when every checkpoint scores 0 on
    the out-of-distribution split: the one that fits the other splits best is kept,
    not merely the first.

    Examples
    --------
    >>> selection_key({"id": 0.9, "od_easy": 0.0}, "od_easy")
    (0.0, 0.45)
    """
    return scores[chosen], sum(scores.values()) / len(scores)


def improves(key: tuple[float, float], best: list[float] | float) -> bool:
    """Whether ``key`` beats the recorded ``best``.

    ``best`` is a :func:`selection_key` stored as a list, or a bare accuracy (the
    initial ``-1.0``, and runs recorded before the tie-break), which only the first
    entry of ``key`` must beat.

    Examples
    --------
    >>> improves((0.0, 0.5), [0.0, 0.4]), improves((0.0, 0.5), 0.0)
    (True, False)
    """
    if isinstance(best, list):
        return key > tuple(best)
    return key[0] > best


@dataclass
class Progress:
    """Where a run stands: steps done and its best checkpoint so far.

    Stored as JSON in the metadata of ``optimizer.safetensors``; ``best`` is a
    :func:`selection_key` as a list (or a bare accuracy, see :func:`improves`).
    """

    step: int = 0
    best: list[float] | float = -1.0
    best_step: int | None = None

    def offer(self, key: tuple[float, float], step: int) -> bool:
        """Record the scores of ``step`` if they rank first; whether they did."""
        if not improves(key, self.best):
            return False
        self.best, self.best_step = list(key), step
        return True

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready fields."""
        return {"step": self.step, "best": self.best, "best_step": self.best_step}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        """The progress recorded in ``data`` (other keys are ignored)."""
        return cls(step=data["step"], best=data["best"], best_step=data["best_step"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TrainingError(f"{path} is unreadable: {error}") from None
    if not isinstance(data, dict):
        raise TrainingError(f"{path} is not a run description")
    return data


class RunFolder:
    """The files of one run folder, read and written atomically.

    Parameters
    ----------
    path : path-like
        The folder; nothing is created until a run is written.
    """

    RUN = "run.json"
    METRICS = "metrics.jsonl"
    LAST = "last.safetensors"
    BEST = "best.safetensors"
    OPTIMIZER = "optimizer.safetensors"
    #: Checkpoints a run is scored or exported with, in order of preference.
    CHECKPOINTS = (BEST, LAST)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ----------------------------------------------------------------- reading
    def is_run(self) -> bool:
        """Whether the folder holds a run (a ``run.json``)."""
        return (self.path / self.RUN).is_file()

    def read_run(self) -> dict[str, Any]:
        """The content of ``run.json``; ``TrainingError`` if it is missing or unreadable."""
        return _read_json(self.path / self.RUN)

    def checkpoint(self, name: str | None = None) -> Path | None:
        """The checkpoint to score or export: ``name``, else best, else last; None if absent.

        Examples
        --------
        >>> import tempfile
        >>> RunFolder(tempfile.mkdtemp()).checkpoint("last.safetensors") is None
        True
        """
        names = [name] if name else list(self.CHECKPOINTS)
        return next((self.path / n for n in names if (self.path / n).is_file()), None)

    def metrics(self) -> list[dict[str, Any]]:
        """The lines of ``metrics.jsonl`` (empty before the first evaluation)."""
        return [json.loads(s) for s in self._metric_lines() if s.strip()]

    def _metric_lines(self) -> list[str]:
        path = self.path / self.METRICS
        return path.read_text().splitlines() if path.exists() else []

    def recorded_state(self) -> dict[str, Any]:
        """The trainer state (step, best score, best step...) stored with the optimiser."""
        import safetensors

        with safetensors.safe_open(str(self.path / self.OPTIMIZER), framework="numpy") as handle:
            state: dict[str, Any] = json.loads((handle.metadata() or {})[_STATE_KEY])
        return state

    # ----------------------------------------------------------------- writing
    def claim(
        self, task: str, model: str, backend: str, preset: str | None, resume: bool
    ) -> dict[str, Any] | None:
        """Check that this run may be written here: the stored ``run.json`` when
        resuming, None for a fresh run; ``TrainingError`` on any conflict. Writes nothing.
        """
        out = self.path
        if out.exists() and not out.is_dir():
            raise TrainingError(f"--out {out} is a file, not a folder")
        if (out / self.RUN).exists():
            stored = self.read_run()
            if (stored.get("task"), stored.get("model")) != (task, model):
                raise TrainingError(
                    f"{out} holds a run of model {stored.get('model')!r} on task "
                    f"{stored.get('task')!r}, not {model!r} on {task!r}"
                )
            if not resume:
                raise TrainingError(
                    f"{out} already holds a run; pass --resume to continue it or choose "
                    "another --out"
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

    def restore(self, engine: Engine, config: ModelConfig) -> Progress | None:
        """Load the last weights and optimiser state into ``engine``; their progress.

        None when the run has no checkpoint yet. ``TrainingError`` when the files are
        corrupt, hold another config, or do not belong to the same step or framework.
        """
        out = self.path
        last, opt = out / self.LAST, out / self.OPTIMIZER
        if not last.exists() and not opt.exists():
            return None
        try:
            import safetensors

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
            raise TrainingError(f"{last} holds another model config than {out / self.RUN}")
        if meta.get("last_sha256") != _sha256(last) or meta.get("framework") != engine.framework:
            raise TrainingError(
                f"cannot resume from {out}: {last.name} and {opt.name} do not belong to the "
                "same step"
            )
        try:
            engine.load(params, arrays)
        except (ValueError, KeyError) as error:
            raise TrainingError(f"cannot resume from {out}: {error}") from None
        return Progress.from_dict(meta)

    def begin(self, run: dict[str, Any], step: int) -> None:
        """Write ``run.json`` and drop the metrics lines after ``step`` (a resumed run)."""
        atomic_write(self.path / self.RUN, (json.dumps(run, indent=2) + "\n").encode())
        kept = [s for s in self._metric_lines() if s.strip() and json.loads(s)["step"] <= step]
        self._write_metrics(kept)

    def record(
        self,
        line: dict[str, Any],
        key: tuple[float, float],
        engine: Engine,
        config: ModelConfig,
        progress: Progress,
    ) -> bool:
        """Record the evaluation of step ``line["step"]``: metrics, ranking, checkpoints.

        Appends ``line`` to ``metrics.jsonl``, advances ``progress`` (its best if
        ``key`` ranks first) and writes ``best`` (if so), ``last`` and ``optimizer``.
        Returns whether ``key`` ranked first.
        """
        step = int(line["step"])
        improved = progress.offer(key, step)
        progress.step = step
        self._write_metrics([*self._metric_lines(), json.dumps(line)])
        self._checkpoint(engine, config, progress, improved)
        return improved

    def _write_metrics(self, lines: list[str]) -> None:
        atomic_write(self.path / self.METRICS, "".join(s + "\n" for s in lines).encode())

    def _checkpoint(
        self, engine: Engine, config: ModelConfig, progress: Progress, improved: bool
    ) -> None:
        import safetensors.numpy

        params = engine.params()
        if improved:
            save(self.path / self.BEST, params, config, overwrite=True)
        save(self.path / self.LAST, params, config, overwrite=True)
        meta = {
            **progress.to_dict(),
            "framework": engine.framework,
            "last_sha256": _sha256(self.path / self.LAST),
        }
        arrays = {k: np.ascontiguousarray(v) for k, v in engine.optimizer_arrays().items()}
        blob = safetensors.numpy.save(arrays, metadata={_STATE_KEY: json.dumps(meta)})
        atomic_write(self.path / self.OPTIMIZER, blob)
