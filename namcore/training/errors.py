"""The exceptions of :mod:`namcore.training`.

Examples
--------
>>> from namcore.training.errors import Interrupted, TrainingError
>>> issubclass(TrainingError, ValueError), issubclass(Interrupted, KeyboardInterrupt)
(True, True)
>>> str(Interrupted(37, 30))
'interrupted at step 37; rerun with --resume to continue from step 30'
"""

from __future__ import annotations

__all__ = ["Interrupted", "TrainingError"]


class TrainingError(ValueError):
    """Bad arguments or an unusable run folder; the message is one line for the user."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, raised in place of the ``KeyboardInterrupt``.

    Parameters
    ----------
    step : int
        The optimiser steps done when it came.
    saved : int or None
        The step of the checkpoint on disk, which ``--resume`` continues from (None:
        no checkpoint yet).
    """

    def __init__(self, step: int, saved: int | None) -> None:
        super().__init__(step, saved)
        self.step, self.saved = step, saved

    def __str__(self) -> str:
        start = "the start" if self.saved is None else f"step {self.saved}"
        return f"interrupted at step {self.step}; rerun with --resume to continue from {start}"
