"""Scoring predictions: the one chunked evaluation loop, and per-length counts.

Evaluation during training (an :class:`~namcore.training.engine.Engine`'s
``predict``), ``namcore eval`` on any backend and each Dask task of
:mod:`~namcore.training.dask_eval` all score a model through these functions; only
what predicts differs.

Examples
--------
>>> import numpy as np
>>> from namcore import tasks
>>> from namcore.training.scoring import score_sets
>>> batch = tasks.get("copy").generate(5, 1, 3, seed=0)
>>> oracle = {row.tobytes(): t for row, t in zip(batch.inputs, batch.targets)}
>>> def predict(inputs, mask):  # right on every sample, two samples at a time
...     return np.stack([oracle[row.tobytes()] for row in inputs])
>>> score_sets(predict, {"test": batch}, chunk=2)["test"]["accuracy"]
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from namcore import tasks

__all__ = [
    "CHUNK",
    "Counts",
    "Predict",
    "length_counts",
    "merge_counts",
    "predict_all",
    "score_sets",
]

#: ``predict(inputs, mask) -> token ids``, all NumPy arrays (B, L).
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Per input length, ``(right, total)`` samples.
Counts = dict[int, tuple[int, int]]
#: Samples per call of ``predict`` when scoring in one process.
CHUNK = 256


def predict_all(predict: Predict, batch: tasks.Batch, chunk: int = CHUNK) -> np.ndarray:
    """``predict`` on every sample of ``batch``, ``chunk`` samples per call: (N, L)."""
    return np.concatenate(
        [
            predict(batch.inputs[i : i + chunk], batch.mask[i : i + chunk])
            for i in range(0, len(batch), chunk)
        ]
    )


def score_sets(
    predict: Predict, sets: Mapping[str, tasks.Batch], *, chunk: int = CHUNK
) -> dict[str, dict[str, Any]]:
    """Sequence accuracy of ``predict`` on every batch of ``sets``, overall and per length.

    Returns
    -------
    dict
        ``{split: {"accuracy": float, "by_length": {"length": float}}}``, the lengths
        as strings (JSON keys).
    """
    scores: dict[str, dict[str, Any]] = {}
    for name, batch in sets.items():
        predictions = predict_all(predict, batch, chunk)
        scores[name] = {
            "accuracy": tasks.sequence_accuracy(predictions, batch),
            "by_length": {
                str(k): v for k, v in tasks.accuracy_by_length(predictions, batch).items()
            },
        }
    return scores


def length_counts(predictions: Any, batch: tasks.Batch) -> Counts:
    """``{length: (right, total)}`` of ``predictions`` on ``batch``, summable over chunks.

    Examples
    --------
    >>> from namcore import tasks
    >>> batch = tasks.get("copy").generate(4, 2, 3, seed=0)
    >>> batch.lengths.tolist()
    [3, 2, 2, 3]
    >>> wrong = batch.targets.copy()
    >>> wrong[0, batch.loss_mask[0]] = 0  # the first sample answers wrongly
    >>> sorted(length_counts(wrong, batch).items())
    [(2, (2, 2)), (3, (1, 2))]
    """
    correct = tasks.sequence_correct(predictions, batch)
    return {
        int(n): (int(correct[batch.lengths == n].sum()), int((batch.lengths == n).sum()))
        for n in np.unique(batch.lengths)
    }


def merge_counts(parts: Iterable[Counts]) -> dict[str, Any]:
    """Sum the counts of several chunks into ``{"accuracy", "samples", "by_length"}``.

    Examples
    --------
    >>> merge_counts([{3: (1, 2)}, {3: (1, 2), 4: (0, 1)}])
    {'accuracy': 0.4, 'samples': 5, 'by_length': {'3': 0.5, '4': 0.0}}
    """
    totals: dict[int, list[int]] = {}
    for part in parts:
        for length, (right, total) in part.items():
            entry = totals.setdefault(length, [0, 0])
            entry[0] += right
            entry[1] += total
    right = sum(r for r, _ in totals.values())
    total = sum(t for _, t in totals.values())
    return {
        "accuracy": right / total if total else 0.0,
        "samples": total,
        "by_length": {str(n): totals[n][0] / totals[n][1] for n in sorted(totals)},
    }
