"""Known limitations of backends: the one place tests and ``namcore check`` look them up.

Each entry names a backend, a dtype and a feature a computation uses, with the reason
it cannot match the NumPy float64 reference there. Code that hits one skips (or
changes dtype) visibly, with this reason, instead of failing or passing silently.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LIMITATIONS", "skips"]

#: (backend, dtype, feature) -> reason
LIMITATIONS: dict[tuple[str, str, str], str] = {
    ("ndonnx", "float64", "sin/cos"): (
        "onnxruntime has no float64 sin/cos, so ndonnx computes them in float32 (with a "
        "warning): sinusoidal positions are float32-accurate only"
    ),
    **{
        (backend, dtype, "gather chain"): reason
        for dtype in ("float32", "float64")
        for backend, reason in (
            (
                "dask",
                "a HAM step gathers tree rows at indices computed from the previous "
                "step; Dask computes the whole graph so far to learn them, so a forward "
                "pass costs quadratic time (4 steps: a minute). Score HAM on Dask with "
                "`namcore eval --backend dask`, which runs NumPy per chunk",
            ),
            (
                "ndonnx",
                "every eager ndonnx operation runs through onnxruntime, which makes "
                "a HAM forward pass take minutes; HAM is not exported to ONNX",
            ),
        )
    },
}


def skips(features: Iterable[str]) -> dict[tuple[str, str], str]:
    """``{(backend, dtype): reason}`` for a computation that uses ``features``."""
    wanted = set(features)
    return {
        (backend, dtype): reason
        for (backend, dtype, feature), reason in LIMITATIONS.items()
        if feature in wanted
    }
