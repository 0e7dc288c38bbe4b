"""The models for JAX as pure functions on pytrees: ``init`` and ``apply``.

Parameters are a flat ``dict`` from the shared names to ``jax.Array`` (a pytree),
so they work with ``jax.jit``, ``jax.grad``, ``jax.vmap`` and optax directly. The
time loops run in ``jax.lax.scan``, so ``jit`` does not unroll them.

Each model name is a small class binding a config: ``LSAM(config).init(seed)`` and
``LSAM(config).apply(params, tokens, mask)``. The module-level :func:`init` and
:func:`apply` do the same for any config.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> from namcore.models import NAMTMConfig
>>> from namcore.models.jax import NAMTM
>>> model = NAMTM(NAMTMConfig(vocab_size=12, d_model=16, n_tapes=2))
>>> params = model.init(seed=0)
>>> jax.jit(model.apply)(params, jnp.zeros((3, 7), dtype=jnp.int32)).shape
(3, 7, 12)
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp

from .._classes import check_config, class_doc, config_ref, lazy_classes
from ..config import ModelConfig
from ..entry import ModelEntry
from ..params import check_params, init_numpy, parameter_count
from ..registry import entry_for
from ..serialization import load, save


def init(
    config: ModelConfig, seed: int = 0, dtype: Any = "float32", device: Any = None
) -> dict[str, Any]:
    """Initial parameters of the model ``config`` describes (the same on every backend).

    The arrays are placed on ``device`` (default: JAX's first device) and committed
    there, like the outputs of a jitted update step, so that the first and later
    steps of a training loop share one compilation.
    """
    entry_for(config)
    device = jax.devices()[0] if device is None else device
    return {
        name: jax.device_put(jnp.asarray(value, dtype=dtype), device)
        for name, value in init_numpy(config, seed, dtype="float64").items()
    }


def apply(
    params: dict[str, Any], tokens: Any, mask: Any = None, *, config: ModelConfig, **options: Any
) -> Any:
    """Logits of the model ``config`` describes; see :func:`namcore.models.forward`."""
    return entry_for(config).forward(params, tokens, mask, config=config, **options)


class JAXModel:
    """A config bound to the pure :func:`init` and :func:`apply` of its model.

    Parameters
    ----------
    config : ModelConfig
        The model's config (its class must match the model).
    """

    _entry: ModelEntry

    def __init__(self, config: ModelConfig) -> None:
        check_config(type(self), config)
        self.config = config

    def init(self, seed: int = 0, dtype: Any = "float32", device: Any = None) -> dict[str, Any]:
        """Initial parameters, a flat dict pytree; see :func:`init`."""
        return init(self.config, seed, dtype, device)

    def apply(self, params: dict[str, Any], tokens: Any, mask: Any = None, **options: Any) -> Any:
        """Logits for integer ``tokens`` (B, L); pure, so it can be jitted."""
        return apply(params, tokens, mask, config=self.config, **options)

    @property
    def parameter_count(self) -> int:
        """Number of scalar parameters (:func:`namcore.models.parameter_count`)."""
        return parameter_count(self.config)

    def save(
        self, path: str | os.PathLike, params: dict[str, Any], *, overwrite: bool = False
    ) -> None:
        """Write ``params`` and the config to a safetensors file."""
        check_params(self.config, params)
        save(path, params, self.config, overwrite=overwrite)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, dtype: str | None = None
    ) -> tuple[JAXModel, dict[str, Any]]:
        """``(model, params)`` from a checkpoint written by any backend."""
        params, config = load(path, backend="jax", dtype=dtype)
        check_config(cls, config)
        return cls(config), params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def _model_class(entry: ModelEntry) -> type[JAXModel]:
    name = entry.class_name
    summary = f"{name} for JAX, bound to a {config_ref(entry)}."
    attrs = {
        "_entry": entry,
        "__module__": __name__,
        "__doc__": class_doc(summary, JAXModel),
        "__qualname__": name,
    }
    return type(name, (JAXModel,), attrs)


__getattr__, __dir__ = lazy_classes(globals(), _model_class, ("apply", "init"))
