"""Sequence accuracy: a sample counts as right only if every scored token is right.

Only the positions of :attr:`Batch.loss_mask <namcore.tasks.Batch.loss_mask>` (the
answer slot) are compared; what a model outputs anywhere else does not matter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._batch import Batch

__all__ = ["accuracy_by_length", "sequence_accuracy", "sequence_correct"]


def _as_predictions(func: str, predictions: Any, batch: Batch) -> np.ndarray:
    if not isinstance(batch, Batch):
        raise TypeError(
            f"{func}: `batch` must be a namcore.tasks.Batch, got {type(batch).__name__}"
        )
    try:
        pred = np.asarray(predictions)
    except (TypeError, RuntimeError) as err:
        raise TypeError(
            f"{func}: `predictions` must be convertible with numpy.asarray "
            f"(move device tensors to the CPU first): {err}"
        ) from None
    shape = batch.targets.shape
    if pred.ndim == 3 and pred.shape[:2] == shape:
        pred = pred.argmax(axis=-1)
    if pred.shape != shape:
        raise ValueError(
            f"{func}: `predictions` must have the targets' shape {shape} "
            f"(token ids) or {shape} + (vocab_size,) (scores), "
            f"got {pred.shape}"
        )
    return pred


def sequence_correct(predictions: Any, batch: Batch) -> np.ndarray:
    """Per sample, whether every scored position of ``predictions`` equals the target.

    Parameters
    ----------
    predictions : array_like, shape (N, L) or (N, L, V)
        Predicted token ids, or scores (logits, probabilities) whose argmax over the
        last axis is taken. Anything ``numpy.asarray`` converts.
    batch : Batch
        The batch the predictions are for.

    Returns
    -------
    numpy.ndarray of bool, shape (N,)

    Examples
    --------
    >>> from namcore import tasks
    >>> batch = tasks.get("copy").generate(3, 2, 2, seed=0)
    >>> pred = batch.targets.copy()
    >>> pred[1, batch.loss_mask[1]] = 0        # one sample answers wrongly
    >>> pred[2, ~batch.loss_mask[2]] = 0       # another is wrong only where nothing is scored
    >>> sequence_correct(pred, batch).tolist()
    [True, False, True]
    """
    pred = _as_predictions("sequence_correct", predictions, batch)
    return np.all((pred == batch.targets) | ~batch.loss_mask, axis=1)


def sequence_accuracy(predictions: Any, batch: Batch) -> float:
    """Fraction of samples whose scored positions are all right (see :func:`sequence_correct`).

    Examples
    --------
    >>> from namcore import tasks
    >>> batch = tasks.get("add").generate(4, 1, 3, seed=0)
    >>> sequence_accuracy(batch.targets, batch)
    1.0
    >>> sequence_accuracy(batch.inputs, batch)  # the inputs have MASK in every slot
    0.0
    """
    return float(sequence_correct(predictions, batch).mean())


def accuracy_by_length(predictions: Any, batch: Batch) -> dict[int, float]:
    """Sequence accuracy of the samples of each length parameter, by increasing length.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import tasks
    >>> batch = tasks.get("reverse").generate(4, 1, 2, seed=0)
    >>> pred = batch.targets.copy()
    >>> i = int(np.argmax(batch.lengths == 2))  # a sample with 2 digits
    >>> pred[i, batch.loss_mask[i]] = tasks.PAD  # answers wrongly
    >>> accuracy_by_length(pred, batch)
    {1: 1.0, 2: 0.5}
    """
    correct = sequence_correct(predictions, batch)
    return {
        int(length): float(correct[batch.lengths == length].mean())
        for length in np.unique(batch.lengths)
    }
