"""The models for NumPy inference: ``LSAM``, ``NAMTM``, ``NAMTransformer``, ``HAM``,
baselines.

Each class holds its parameters as NumPy arrays (see
:class:`namcore.models._inference.ArrayModel`) and is called on integer token
arrays. Importing this package never imports torch or jax.

Examples
--------
>>> import numpy as np
>>> from namcore.models import NAMTMConfig
>>> from namcore.models.numpy import NAMTM
>>> model = NAMTM(NAMTMConfig(vocab_size=12, d_model=16, n_tapes=2), seed=0)
>>> model(np.zeros((3, 7), dtype=np.int64)).shape
(3, 7, 12)
"""

from __future__ import annotations

from .._inference import model_classes
from .._registry import MODEL_NAMES

LSAM, NAMTM, NAMTransformer, LSTMBaseline, TransformerBaseline, HAM = model_classes(
    "numpy", __name__, "NumPy"
)

__all__ = list(MODEL_NAMES)
