"""The generic array-API backend: array-api-strict and any other compliant library."""

from __future__ import annotations

from typing import Any

from ._base import Backend

__all__ = ["ArrayAPIStrictBackend", "GenericBackend"]


class GenericBackend(Backend):
    """Any namespace that follows the standard, used as-is with no fast paths."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp
        self.name = str(getattr(xp, "__name__", type(xp).__name__))
        self.module = self.name.split(".", 1)[0]

    def namespace(self) -> Any:
        return self._xp


class ArrayAPIStrictBackend(Backend):
    """array-api-strict: the minimal, fussy reference implementation of the standard."""

    name = "array_api_strict"
    module = "array_api_strict"
    integer_index_assignment = False

    def namespace(self) -> Any:
        import array_api_strict as xp

        return xp
