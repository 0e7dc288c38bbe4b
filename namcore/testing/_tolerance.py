"""Dtype-aware tolerances and the NumPy comparison used by every namcore check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Comparison", "compare_to_reference", "dtype_name", "tolerance_for"]

# Relative tolerance on max|actual - reference| / max|reference|, by dtype.
_TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 3e-2}


def dtype_name(dtype: Any) -> str:
    """``"float32"`` for ``numpy.float32``, ``torch.float32``, ``jnp.float32``..."""
    if isinstance(dtype, str):
        return dtype
    try:  # NumPy dtypes and scalar types, JAX's (incl. ml_dtypes bfloat16)
        return np.dtype(dtype).name
    except TypeError:
        pass
    text = str(dtype)  # torch.float32, array_api_strict.float32, ...
    return text.rsplit(".", 1)[-1].strip("'>")


def tolerance_for(dtype: Any) -> float:
    """Relative tolerance namcore uses for results of ``dtype`` (name or dtype object)."""
    name = dtype if isinstance(dtype, str) else dtype_name(dtype)
    return _TOLERANCE.get(name, 1e-4)


@dataclass(frozen=True)
class Comparison:
    """How far an array is from its float64 reference."""

    max_abs_error: float
    max_rel_error: float
    tolerance: float
    passed: bool
    problem: str = ""


def compare_to_reference(actual: np.ndarray, reference: np.ndarray, tolerance: float) -> Comparison:
    """Compare on the host; the error is relative to ``max|reference|`` (1 if all zero)."""
    actual = np.asarray(actual, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if actual.shape != reference.shape:
        return Comparison(
            np.inf,
            np.inf,
            tolerance,
            False,
            f"shape {actual.shape} != reference shape {reference.shape}",
        )
    if actual.size == 0:
        return Comparison(0.0, 0.0, tolerance, True)
    if not np.all(np.isfinite(actual) == np.isfinite(reference)):
        return Comparison(np.inf, np.inf, tolerance, False, "non-finite values differ")
    finite = np.isfinite(reference)
    diff = np.abs(actual[finite] - reference[finite])
    abs_err = float(diff.max(initial=0.0))
    scale = float(np.abs(reference[finite]).max(initial=0.0)) or 1.0
    rel_err = abs_err / scale
    return Comparison(abs_err, rel_err, tolerance, rel_err <= tolerance)
