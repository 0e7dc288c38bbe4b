"""The run folder of one training run: its files, resumption and checkpoint selection.

A run folder ``RUN`` holds:

- ``run.json``: task, model, backend, preset, seed, steps and the model config;
- ``metrics.jsonl``: one JSON line per evaluation (step, learning rate, mean training
  loss and accuracy since the previous evaluation, sequence accuracy per split);
- ``last.safetensors``: the latest weights (:func:`namcore.models.save`);
- ``optimizer.safetensors``: the optimiser state as named arrays, with the trainer's
  :class:`Progress`, the framework and the SHA-256 of the weights it belongs to in its
  metadata (so a ``last`` and an ``optimizer`` of different steps are never mixed);
- ``best.safetensors``: the weights ranked first by :func:`selection_key`;
- ``previous.safetensors``: only while a checkpoint is being written, or after one
  failed: the weights of the checkpoint before it (see below);
- ``.namcore.lock``: the lock of the process writing the run
  (:class:`~namcore.training.lock.FolderLock`).

Every file is written atomically (:func:`namcore._io.atomic_write`); nothing is
pickled. A checkpoint is one unit: ``optimizer.safetensors`` is its commit record.
Writing one links the committed ``last`` to ``previous``, replaces ``last``, then
``optimizer`` (the commit), then ``best``, and removes ``previous``; whatever stops
the process between two of these steps (a kill, a full disk), the folder still holds
a consistent pair, which :meth:`RunFolder.restore` finds and puts back in place.
:class:`RunFolder` is the only code that knows these names: the trainer writes
through it, and ``namcore eval``, ``namcore reproduce`` and ONNX export find a run's
checkpoint with :meth:`RunFolder.checkpoint`.

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

from namcore._io import atomic_link, atomic_write
from namcore.models import ModelConfig, load, save

from .engine import Engine
from .errors import TrainingError
from .lock import LOCK_NAME, FolderLock

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

    Writing (:meth:`restore`, :meth:`begin`, :meth:`record`) is for the process that
    holds :meth:`lock`; reading needs no lock.
    """

    RUN = "run.json"
    METRICS = "metrics.jsonl"
    LAST = "last.safetensors"
    BEST = "best.safetensors"
    OPTIMIZER = "optimizer.safetensors"
    PREVIOUS = "previous.safetensors"
    LOCK = LOCK_NAME
    #: Checkpoints a run is scored or exported with, in order of preference.
    CHECKPOINTS = (BEST, LAST)
    #: Every file the run folder writes.
    FILES = (RUN, METRICS, LAST, BEST, OPTIMIZER, PREVIOUS)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: The step of the checkpoint on disk, once restored or written (else None).
        self.saved: int | None = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def lock(self) -> FolderLock:
        """The folder's lock (a context manager); taking it creates the folder.

        Raises :class:`~namcore.training.lock.FolderInUse` (a ``TrainingError``) while
        another process holds it.
        """
        return FolderLock(self.path)

    def _is_bookkeeping(self, name: str) -> bool:
        """The lock file, or a temporary file a killed write of ours left behind."""
        if name == self.LOCK:
            return True
        return name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in self.FILES)

    def sweep(self) -> None:
        """Remove the temporary files that killed writes left behind (lock held)."""
        if self.path.is_dir():
            for entry in self.path.iterdir():
                if entry.name != self.LOCK and self._is_bookkeeping(entry.name):
                    entry.unlink(missing_ok=True)

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
        """The lines of ``metrics.jsonl`` (empty before the first evaluation).

        Raises
        ------
        TrainingError
            A line is not a JSON object with a ``step``; the message names the line.
        """
        records = []
        path = self.path / self.METRICS
        for number, text in enumerate(self._metric_lines(), 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                int(record["step"])
            except (ValueError, TypeError, KeyError):
                raise TrainingError(
                    f"{path} line {number} is corrupt ({text[:40]!r}); repair or delete that "
                    "line and run again"
                ) from None
            records.append(record)
        return records

    def _metric_lines(self) -> list[str]:
        path = self.path / self.METRICS
        try:
            return path.read_text().splitlines() if path.exists() else []
        except (OSError, UnicodeDecodeError) as error:
            raise TrainingError(f"{path} is unreadable: {error}") from None

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
        if out.is_dir() and any(not self._is_bookkeeping(e.name) for e in out.iterdir()):
            raise TrainingError(
                f"--out {out} is not empty and holds no run; choose an empty or new folder"
            )
        return None

    def restore(self, engine: Engine, config: ModelConfig) -> Progress | None:
        """Load the last committed checkpoint into ``engine``; its progress.

        None when the run has no committed checkpoint yet (no ``optimizer.safetensors``
        and at most the first evaluation recorded). When the last write of a checkpoint
        was cut short, the previous checkpoint is the committed one: it is loaded, and
        put back in place as ``last`` (and ``best``, if that write was lost).
        ``TrainingError`` when the files are corrupt, hold another config or framework,
        or no weights belong to the optimiser state; then nothing is written.
        """
        out = self.path
        last, previous, opt = out / self.LAST, out / self.PREVIOUS, out / self.OPTIMIZER
        if not opt.exists():
            if len(self.metrics()) > 1:  # a checkpoint was committed, and its record is gone
                raise TrainingError(f"cannot resume from {out}: {opt.name} is missing")
            return None
        try:
            import safetensors

            with safetensors.safe_open(str(opt), framework="numpy") as handle:
                meta = json.loads((handle.metadata() or {})[_STATE_KEY])
                arrays = {name: handle.get_tensor(name) for name in handle.keys()}
            digest = meta["last_sha256"]
            source = next(
                (p for p in (last, previous) if p.is_file() and _sha256(p) == digest), None
            )
            if source is None:
                raise ValueError(f"no weights in {out} belong to {opt.name}")
            params, stored_config = load(source, backend="numpy")
        except Exception as error:
            raise TrainingError(
                f"cannot resume from {out}: corrupt or missing checkpoint "
                f"({type(error).__name__}: {str(error).splitlines()[0]})"
            ) from None
        if stored_config != config:
            raise TrainingError(f"{source} holds another model config than {out / self.RUN}")
        if meta.get("framework") != engine.framework:
            raise TrainingError(
                f"cannot resume from {out}: {opt.name} holds the optimiser of "
                f"{meta.get('framework')!r}, not {engine.framework!r}"
            )
        try:
            engine.load(params, arrays)
        except (ValueError, KeyError) as error:
            raise TrainingError(f"cannot resume from {out}: {error}") from None
        progress = Progress.from_dict(meta)
        # Put the committed checkpoint back in place where a cut-short write left it.
        if source == previous:
            atomic_link(previous, last)
        previous.unlink(missing_ok=True)
        best = out / self.BEST
        if progress.best_step == progress.step and (not best.is_file() or _sha256(best) != digest):
            atomic_link(last, best)
        self.saved = progress.step
        return progress

    def begin(self, run: dict[str, Any], step: int) -> None:
        """Write ``run.json`` and drop the metrics lines after ``step`` (a resumed run).

        Files whose content would not change are not written.
        """
        text = json.dumps(run, indent=2) + "\n"
        path = self.path / self.RUN
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, text.encode())
        lines = [s for s in self._metric_lines() if s.strip()]
        kept = [s for s, m in zip(lines, self.metrics(), strict=True) if int(m["step"]) <= step]
        if len(kept) != len(lines):
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
        ``key`` ranks first) and writes the checkpoint: ``last``, ``optimizer`` and, if
        so, ``best``. Returns whether ``key`` ranked first.
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
        """One checkpoint as one unit (see the module's description)."""
        import safetensors.numpy

        last, previous = self.path / self.LAST, self.path / self.PREVIOUS
        if self.saved is not None and last.is_file():  # the committed weights, kept
            atomic_link(last, previous)
        save(last, engine.params(), config, overwrite=True)
        meta = {**progress.to_dict(), "framework": engine.framework, "last_sha256": _sha256(last)}
        arrays = {k: np.ascontiguousarray(v) for k, v in engine.optimizer_arrays().items()}
        blob = safetensors.numpy.save(arrays, metadata={_STATE_KEY: json.dumps(meta)})
        atomic_write(self.path / self.OPTIMIZER, blob)  # the commit
        self.saved = progress.step
        if improved:
            atomic_link(last, self.path / self.BEST)
        previous.unlink(missing_ok=True)
