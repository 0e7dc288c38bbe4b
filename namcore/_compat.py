"""The one place that imports :mod:`array_api_compat`.

Everything else in namcore asks this module for namespaces, devices and the
``is_*`` predicates, so that a vendored copy of array-api-compat (as SciPy does)
would only need to change this file.
"""

from __future__ import annotations

import sys
from typing import Any

from array_api_compat import (
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

__all__ = [
    "array_namespace",
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
    "tensor_namespace",
    "to_device",
]


def library_name(x: object) -> str:
    """Name of the library an array comes from, e.g. ``"torch"`` or ``"numpy"``.

    Used in error messages only; it never imports anything.
    """
    module = type(x).__module__ or ""
    top = module.split(".", 1)[0]
    if top == "jaxlib" or top == "jax":
        return "jax"
    return top or type(x).__name__


def tensor_namespace(kind: type) -> Any:
    """``array_api_compat.torch`` if ``kind`` is a torch tensor type, else ``None``.

    A shortcut around :func:`array_namespace` for the first call inside
    ``torch.compile``, where array-api-compat's ``lru_cache``-wrapped helpers make
    Dynamo warn. Never imports torch: it is looked up in ``sys.modules``.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(kind, type) and issubclass(kind, torch.Tensor):
        import array_api_compat.torch as xp

        return xp
    return None
