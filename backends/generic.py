"""The generic array-API backend: array-api-strict and any other compliant library.

Examples
--------
A namespace namcore does not know gets a :class:`GenericBackend`, named after it:

>>> from namcore import backends
>>> from namcore.backends.generic import GenericBackend
>>> backend = GenericBackend(backends.get("numpy").namespace())
>>> backend.name, backend.module
('array_api_compat.numpy', 'array_api_compat')
"""

from __future__ import annotations

from namcore._typing import Namespace

from ._base import Backend

__all__ = ["ArrayAPIStrictBackend", "GenericBackend"]


class GenericBackend(Backend):
    """Any namespace that follows the standard, used as-is with no fast paths."""

    def __init__(self, xp: Namespace) -> None:
        self._xp = xp
        self.name = str(getattr(xp, "__name__", type(xp).__name__))
        self.module = self.name.split(".", 1)[0]

    def namespace(self) -> Namespace:
        return self._xp


class ArrayAPIStrictBackend(Backend):
    """array-api-strict: the minimal, fussy reference implementation of the standard."""

    name = "array_api_strict"
    module = "array_api_strict"
    integer_index_assignment = False

    def namespace(self) -> Namespace:
        import array_api_strict as xp

        return xp
