"""Inference-only model classes over a parameter mapping (the NumPy and CuPy packages)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from namcore import backends as _backends
from namcore._typing import Array

from ._classes import check_config, class_doc, config_ref
from .config import ModelConfig
from .entry import ModelEntry
from .params import check_params, init_numpy
from .serialization import load, save

__all__ = ["ArrayModel", "model_class"]


class ArrayModel:
    """A model whose parameters are arrays of one backend; call it on token arrays.

    Parameters
    ----------
    config : ModelConfig
        The model's config (its class must match the model).
    params : mapping of str to array, optional
        Parameters under the shared names (NumPy arrays are converted). Default: a
        fresh initialisation from ``seed``.
    seed : int, optional
        Seed of the initialisation; the same seed gives the same weights on every
        backend. Default: 0.
    dtype : str, optional
        Floating dtype of the parameters, e.g. ``"float64"``. Default: ``"float32"``
        for a fresh initialisation, the given arrays' dtype otherwise.
    device : optional
        Device of the backend to place the parameters on.
    """

    _backend_name = ""
    _entry: ModelEntry

    def __init__(
        self,
        config: ModelConfig,
        params: Mapping[str, Any] | None = None,
        *,
        seed: int = 0,
        dtype: str | None = None,
        device: Any = None,
    ) -> None:
        check_config(type(self), config)
        backend = _backends.get(self._backend_name)
        if params is None:
            params = init_numpy(config, seed)
            dtype = dtype or "float32"
        else:
            check_params(config, params)
        self.config = config
        self.params = {
            name: backend.from_numpy(_backends.for_array(a).to_numpy(a), dtype=dtype, device=device)
            for name, a in params.items()
        }

    def __call__(self, tokens: Array, mask: Array = None, **options: Any) -> Any:
        """Logits for integer ``tokens`` (B, L); see the model's forward function."""
        forward = self._entry.forward
        return forward(self.params, tokens, mask, config=self.config, **options)

    @property
    def parameter_count(self) -> int:
        return sum(int(a.size) for a in self.params.values())

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the weights and config to a safetensors file; see :func:`namcore.models.save`."""
        save(path, self.params, self.config, overwrite=overwrite)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, dtype: str | None = None, device: Any = None
    ) -> ArrayModel:
        """Load a checkpoint written by any backend."""
        params, config = load(path, backend=cls._backend_name, dtype=dtype, device=device)
        check_config(cls, config)
        model = cls.__new__(cls)
        model.config, model.params = config, params
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def model_class(entry: ModelEntry, backend: str, module: str, library: str) -> type[ArrayModel]:
    """The :class:`ArrayModel` subclass of ``entry``'s model for ``backend``."""
    name = entry.class_name
    summary = f"{name} with {library} parameters, built from a {config_ref(entry)}."
    attrs = {
        "_entry": entry,
        "_backend_name": backend,
        "__module__": module,
        "__doc__": class_doc(summary, ArrayModel),
        "__qualname__": name,
    }
    return type(name, (ArrayModel,), attrs)
