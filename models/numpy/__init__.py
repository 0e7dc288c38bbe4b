"""The models for NumPy inference, one class per registered model (``LSAM``, ``NAMTM``, ...).

Each class holds its parameters as NumPy arrays (see
:class:`namcore.models._inference.ArrayModel`) and is called on integer token
arrays. The classes are made on first use from the model registry, so a plug-in's
model is here too. Importing this package never imports torch or jax.

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

from .._classes import lazy_classes
from .._inference import model_class

__getattr__, __dir__ = lazy_classes(
    globals(), lambda entry: model_class(entry, "numpy", __name__, "NumPy")
)
