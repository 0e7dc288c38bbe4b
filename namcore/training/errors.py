"""The one exception of :mod:`namcore.training`.

Examples
--------
>>> from namcore.training.errors import TrainingError
>>> issubclass(TrainingError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["TrainingError"]


class TrainingError(ValueError):
    """Bad arguments or an unusable run folder; the message is one line for the user."""
