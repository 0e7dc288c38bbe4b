"""Parameters of a registered model: shapes, counts, checks and the initial values.

The specs come from the model's entry (:func:`namcore.models.entry_for`); the
naming scheme and initialisers are in :mod:`namcore.models.spec`.

Initial values are drawn with NumPy (one PCG64 stream per parameter, seeded from
the seed and the parameter's name) and then converted, so the same seed gives the
same weights on every backend.

Examples
--------
>>> from namcore.models import LSTMBaselineConfig, parameter_count
>>> parameter_count(LSTMBaselineConfig(vocab_size=10, d_model=8))
1330
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import ModelConfig
from .registry import entry_for
from .spec import Spec

__all__ = ["check_params", "init_numpy", "parameter_count", "parameter_shapes"]


def _specs(config: ModelConfig) -> Mapping[str, Spec]:
    return entry_for(config).specs(config)


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every parameter of the model ``config`` describes."""
    return {name: spec.shape for name, spec in _specs(config).items()}


def parameter_count(config: ModelConfig) -> int:
    """Number of scalar parameters of the model ``config`` describes."""
    return sum(spec.size for spec in _specs(config).values())


def init_numpy(
    config: ModelConfig, seed: int = 0, dtype: Any = np.float32
) -> dict[str, np.ndarray]:
    """Initial parameters as NumPy arrays (the source of every backend's initial weights)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = {}
    for name, spec in _specs(config).items():
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        out[name] = spec.sample(rng).astype(dtype)
    return out


def check_params(config: ModelConfig, params: Mapping[str, Any], *, source: str = "params") -> None:
    """Raise ``ValueError`` naming every missing, extra or mis-shaped parameter."""
    expected = parameter_shapes(config)
    problems = []
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing:
        problems.append(f"missing {missing}")
    if extra:
        problems.append(f"unexpected {extra}")
    for name in sorted(set(expected) & set(params)):
        shape = tuple(params[name].shape)
        if shape != expected[name]:
            problems.append(f"{name} has shape {shape}, expected {expected[name]}")
    if problems:
        raise ValueError(f"{source} do not fit {type(config).__name__}: " + "; ".join(problems))
