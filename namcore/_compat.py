"""The one place that imports :mod:`array_api_compat`.

Everything else in namcore asks this module for namespaces, devices and the
``is_*`` predicates, so that a vendored copy of array-api-compat (as SciPy does)
would only need to change this file.

The ``*_namespace()`` functions import array-api-compat's wrapper of one library on
first use, with a plain ``import`` statement (which ``torch.compile`` can trace, unlike
:func:`importlib.import_module`); calling one imports that library.

Examples
--------
>>> import numpy as np
>>> from namcore import _compat
>>> xp = _compat.array_namespace(np.zeros(2))
>>> xp is _compat.numpy_namespace()
True
>>> _compat.library_name(np.zeros(2))
'numpy'
"""

from __future__ import annotations

import sys

from array_api_compat import (
    __version__,
    array_namespace,
    device,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_cupy_namespace,
    is_jax_array,
    is_jax_namespace,
    is_numpy_array,
    is_numpy_namespace,
    is_torch_array,
    is_torch_namespace,
    to_device,
)

from namcore._typing import Namespace

__all__ = [
    "ARRAY_API_COMPAT_VERSION",
    "array_namespace",
    "cupy_namespace",
    "dask_namespace",
    "device",
    "is_array_api_obj",
    "is_array_api_strict_namespace",
    "is_cupy_namespace",
    "is_jax_array",
    "is_jax_namespace",
    "is_numpy_array",
    "is_numpy_namespace",
    "is_torch_array",
    "is_torch_namespace",
    "library_name",
    "numpy_namespace",
    "tensor_namespace",
    "to_device",
    "torch_namespace",
]

#: The installed array-api-compat's version (``namcore info`` prints it).
ARRAY_API_COMPAT_VERSION: str = __version__


def numpy_namespace() -> Namespace:
    """``array_api_compat.numpy``: NumPy as an array-API namespace."""
    import array_api_compat.numpy as xp

    return xp


def torch_namespace() -> Namespace:
    """``array_api_compat.torch`` (imports torch)."""
    import array_api_compat.torch as xp

    return xp


def cupy_namespace() -> Namespace:
    """``array_api_compat.cupy`` (imports CuPy)."""
    import array_api_compat.cupy as xp

    return xp


def dask_namespace() -> Namespace:
    """``array_api_compat.dask.array`` (imports Dask)."""
    import array_api_compat.dask.array as xp

    return xp


def library_name(x: object) -> str:
    """Name of the library an array comes from, e.g. ``"torch"`` or ``"numpy"``.

    Used in error messages only; it never imports anything.
    """
    module = type(x).__module__ or ""
    top = module.split(".", 1)[0]
    if top == "jaxlib" or top == "jax":
        return "jax"
    return top or type(x).__name__


def tensor_namespace(kind: type) -> Namespace | None:
    """``array_api_compat.torch`` if ``kind`` is a torch tensor type, else ``None``.

    A shortcut around :func:`array_namespace` for the first call inside
    ``torch.compile``, where array-api-compat's ``lru_cache``-wrapped helpers make
    Dynamo warn. Never imports torch: it is looked up in ``sys.modules``.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(kind, type) and issubclass(kind, torch.Tensor):
        return torch_namespace()
    return None
