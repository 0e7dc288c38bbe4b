"""The models for CuPy inference: ``LSAM``, ``NAMTM``, ``NAMTransformer``, ``HAM``,
baselines.

Each class holds its parameters as CuPy arrays (see
:class:`namcore.models._inference.ArrayModel`) and is called on integer token
arrays. Importing this package never imports torch or jax.

"""

from __future__ import annotations

from .._inference import model_classes
from .._registry import MODEL_NAMES

LSAM, NAMTM, NAMTransformer, LSTMBaseline, TransformerBaseline, HAM = model_classes(
    "cupy", __name__, "CuPy"
)

__all__ = list(MODEL_NAMES)
