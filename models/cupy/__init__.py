"""The models for CuPy inference, one class per registered model (``LSAM``, ``NAMTM``, ...).

Each class holds its parameters as CuPy arrays (see
:class:`namcore.models._inference.ArrayModel`) and is called on integer token
arrays. The classes are made on first use from the model registry. Importing this
package never imports torch or jax.
"""

from __future__ import annotations

from .._classes import lazy_classes
from .._inference import model_class

__getattr__, __dir__ = lazy_classes(
    globals(), lambda entry: model_class(entry, "cupy", __name__, "CuPy")
)
