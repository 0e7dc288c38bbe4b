"""Deterministic training batches and evaluation sets.

The batch of optimiser step ``s`` depends only on ``(seed, s)`` and the preset, so a
resumed run sees exactly the data an uninterrupted run sees. Evaluation sets depend
only on the task, the split and the size, so every run of a task is scored on the
same samples.

Examples
--------
>>> from namcore.training.data import train_batch
>>> from namcore.training.presets import get_preset
>>> a = train_batch("reduce", get_preset("smoke"), seed=0, step=3)
>>> b = train_batch("reduce", get_preset("smoke"), seed=0, step=3)
>>> bool((a.inputs == b.inputs).all())
True
"""

from __future__ import annotations

import numbers
import zlib

import numpy as np

from namcore import tasks
from namcore.tasks import Batch

from .errors import TrainingError
from .presets import Preset

__all__ = [
    "SEED_LIMIT",
    "best_split",
    "check_seed",
    "eval_sets",
    "eval_splits",
    "split_task",
    "train_batch",
    "train_lengths",
]

#: Seeds are integers from 0 to ``SEED_LIMIT - 1`` (every framework accepts these).
SEED_LIMIT = 2**32


def check_seed(seed: object) -> None:
    """``TrainingError`` unless ``seed`` is None or an integer in ``[0, SEED_LIMIT)``.

    Examples
    --------
    >>> check_seed(0)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: --seed must be an integer from 0 to 4294967295, got -1
    """
    if seed is None:
        return
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if 0 <= int(seed) < SEED_LIMIT:
            return
    raise TrainingError(f"--seed must be an integer from 0 to {SEED_LIMIT - 1}, got {seed!r}")


def train_lengths(task: str, preset: Preset, step: int) -> tuple[int, int]:
    """Inclusive training length range at ``step`` (the length curriculum)."""
    lo, hi = tasks.splits(task)["train"]
    if preset.curriculum_steps <= 0 or step >= preset.curriculum_steps:
        return lo, hi
    start = min(hi, max(lo, preset.curriculum_start))
    return lo, start + ((hi - start) * (step + 1)) // preset.curriculum_steps


def train_batch(task: str, preset: Preset, seed: int, step: int) -> Batch:
    """The training batch of (0-based) step ``step`` of a run seeded with ``seed``."""
    data_seed = int(np.random.SeedSequence([seed, step]).generate_state(1)[0])
    lo, hi = train_lengths(task, preset, step)
    return tasks.get(task).generate(preset.batch_size, lo, hi, seed=data_seed)


def eval_splits(task: str) -> list[str]:
    """Splits scored during training: every split of the task except ``train``."""
    return [name for name in tasks.splits(task) if name != "train"]


def best_split(task: str) -> str:
    """The split whose accuracy picks the best checkpoint: ``od_easy`` where it exists."""
    names = eval_splits(task)
    if "od_easy" in names:
        return "od_easy"
    return next((n for n in names if n != "id"), names[0])


def split_task(task: str, split: str) -> tasks.Task:
    """The generator of one split: the task's own, except for Dyck's depth split.

    ``dyck``'s ``od_depth`` tests nesting deeper than training ever reaches (caps 9–12
    instead of 8), as in the authors' later code; its lengths are those of ``od_length``.
    """
    if task == "dyck" and split == "od_depth":
        return tasks.dyck_task(max_depth=(9, 12))
    return tasks.get(task)


def eval_sets(task: str, size: int, splits: list[str] | None = None) -> dict[str, Batch]:
    """``size`` samples of each split (default: :func:`eval_splits`), fixed by name."""
    ranges = tasks.splits(task)
    names = eval_splits(task) if splits is None else splits
    return {
        name: split_task(task, name).generate(
            size, *ranges[name], seed=zlib.crc32(f"eval:{task}:{name}".encode())
        )
        for name in names
    }
