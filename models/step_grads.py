"""Helpers shared by the hand-derived backward steps (:mod:`.lsam_step`, :mod:`.namtm_step`).

Both are written once against the array API standard, as the steps themselves are.
"""

from __future__ import annotations

from typing import Any

from namcore._agnostic.memory import EPS as _EPS
from namcore._typing import Array, Namespace

__all__ = ["matvec", "unit_backward"]


def matvec(M: Array, x: Array, xp: Namespace) -> Any:
    """``M x`` for batches of matrices (..., m, n) and vectors (..., n).

    Examples
    --------
    >>> import numpy as np
    >>> from namcore.models.step_grads import matvec
    >>> matvec(np.eye(2) * 3.0, np.array([1.0, 2.0]), np).tolist()
    [3.0, 6.0]
    """
    return xp.matmul(M, x[..., None])[..., 0]


def unit_backward(x: Array, x_hat: Array, g: Array, xp: Namespace) -> Any:
    """The gradient at ``x`` of ``x̂ = x / max(||x||, EPS)`` given the gradient ``g`` at ``x̂``.

    Where the norm is above the floor, ``(g - x̂ (x̂ · g)) / ||x||``; below it ``x̂`` is
    ``x`` scaled by a constant, and the gradient is ``g / EPS``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore.models.step_grads import unit_backward
    >>> x = np.array([3.0, 0.0])  # x̂ = [1, 0]: only the tangential part passes
    >>> unit_backward(x, x / 3.0, np.array([1.0, 1.0]), np).tolist()
    [0.0, 0.3333333333333333]
    """
    squares = xp.sum(x * x, axis=-1, keepdims=True)
    norm = xp.sqrt(xp.clip(squares, min=_EPS * _EPS))
    projected = g - x_hat * xp.sum(x_hat * g, axis=-1, keepdims=True)
    return xp.where(squares >= _EPS * _EPS, projected, g) / norm
