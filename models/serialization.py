"""Saving and loading model weights: safetensors for the arrays, JSON for the config.

A checkpoint is one ``.safetensors`` file. Its tensors are the parameters under the
shared names (see :mod:`namcore.models.params`); its header metadata holds the
config as JSON and the format version. Nothing is ever pickled, so loading a file
cannot run code, and a file written from PyTorch loads in JAX, NumPy or CuPy.

Examples
--------
>>> import tempfile, pathlib
>>> import numpy as np
>>> from namcore.models import LSTMBaselineConfig, init_numpy, load, save
>>> cfg = LSTMBaselineConfig(vocab_size=5, d_model=4)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "lstm.safetensors"
>>> save(path, init_numpy(cfg, seed=1), cfg)
>>> params, config = load(path, backend="numpy")
>>> config == cfg, params["embed"].shape
(True, (5, 4))
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from namcore import backends as _backends
from namcore._io import atomic_write

from .config import ModelConfig
from .params import check_params
from .registry import config_from_dict

__all__ = ["FORMAT_VERSION", "load", "load_config", "save"]

#: Version of the checkpoint layout; a newer file is refused with a clear message.
FORMAT_VERSION = 1

_KEY_FORMAT = "namcore.format_version"
_KEY_CONFIG = "namcore.config"
_FLOAT_DTYPES = ("float16", "float32", "float64")


def _safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "saving and loading models needs safetensors: pip install 'namcore[models]'"
        ) from None
    return safetensors


def _to_numpy(name: str, x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    try:
        return _backends.for_array(x).to_numpy(x)
    except (TypeError, ValueError):
        raise TypeError(f"parameter {name!r} is a {type(x).__name__}, not an array") from None


def save(
    path: str | os.PathLike,
    params: Mapping[str, Any],
    config: ModelConfig,
    *,
    overwrite: bool = False,
) -> None:
    """Write ``params`` (arrays of any backend) and ``config`` to ``path`` atomically.

    The file is written to a temporary file in the same folder and renamed, so a
    crash never leaves a half-written checkpoint under ``path``.

    Parameters
    ----------
    path : path-like
        Destination, conventionally ending in ``.safetensors``.
    params : mapping of str to array
        Every parameter of the model, under the shared names.
    config : ModelConfig
        The model's config.
    overwrite : bool, optional
        Replace an existing file. Default: False (raise ``FileExistsError``).

    Raises
    ------
    ValueError
        Missing, extra or mis-shaped parameters for ``config``.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    st = _safetensors()
    path = Path(path)
    tensors = {name: np.ascontiguousarray(_to_numpy(name, params[name])) for name in sorted(params)}
    check_params(config, tensors)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    dtypes = {str(a.dtype) for a in tensors.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _FLOAT_DTYPES:
        raise TypeError(
            f"parameters must share one dtype among {_FLOAT_DTYPES}, found {sorted(dtypes)}"
        )
    metadata = {_KEY_FORMAT: str(FORMAT_VERSION), _KEY_CONFIG: json.dumps(config.to_dict())}
    blob = st.numpy.save(tensors, metadata=metadata)
    atomic_write(path, blob, overwrite=overwrite)


def _open(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    st = _safetensors()
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with st.safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(
            f"{path} is not a readable checkpoint (truncated, or not a safetensors file): {error}"
        ) from None
    return metadata, tensors


def _config(path: Path, metadata: Mapping[str, str]) -> ModelConfig:
    if _KEY_FORMAT not in metadata or _KEY_CONFIG not in metadata:
        raise ValueError(
            f"{path} is a safetensors file but not a namcore checkpoint "
            "(no namcore config in its metadata)"
        )
    try:
        version = int(metadata[_KEY_FORMAT])
    except ValueError:
        raise ValueError(f"{path}: unreadable format version {metadata[_KEY_FORMAT]!r}") from None
    if version < 1:
        raise ValueError(f"{path}: invalid checkpoint format version {version}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in checkpoint format {version}, newer than this "
            f"namcore reads ({FORMAT_VERSION}); upgrade namcore to load it"
        )
    try:
        data = json.loads(metadata[_KEY_CONFIG])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the stored config is not valid JSON ({error})") from None
    return config_from_dict(data)


def load_config(path: str | os.PathLike) -> ModelConfig:
    """The config stored in a checkpoint, without converting its arrays."""
    path = Path(path)
    metadata, _ = _open(path)
    return _config(path, metadata)


def _loadable_dtype(
    target: _backends.Backend, path: Path, stored: str, dtype: str | None
) -> str | None:
    """``dtype``, or float32 where ``backend`` cannot create the stored dtype (one warning).

    JAX without x64 would otherwise turn each float64 parameter into float32 with a
    warning of its own, one per tensor. An explicit ``dtype`` it cannot create is an
    error: the caller asked for precision that would silently be lost.
    """
    wanted = dtype or stored
    if target.supports_dtype(wanted):
        return dtype
    enable = f"enable float64 first (namcore.backends.get({target.name!r}).enable_float64())"
    if dtype is not None:
        raise ValueError(
            f"dtype={dtype!r}: backend {target.name!r} cannot create {dtype} arrays in this "
            "process; " + (f"{enable}, or " if dtype == "float64" else "") + "load with "
            "dtype='float32'"
        )
    keep = f"; to keep {stored}, {enable}" if stored == "float64" else ""
    warnings.warn(
        f"{path} holds {stored} parameters, which backend {target.name!r} cannot create "
        f"in this process: they are loaded as float32{keep}",
        UserWarning,
        stacklevel=3,
    )
    return "float32"


def load(
    path: str | os.PathLike, backend: str = "numpy", *, dtype: str | None = None, device: Any = None
) -> tuple[dict[str, Any], ModelConfig]:
    """Read a checkpoint written by :func:`save` into arrays of ``backend``.

    Parameters
    ----------
    path : path-like
        The ``.safetensors`` file.
    backend : str, optional
        ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"`` or ``"array_api_strict"``.
    dtype : str, optional
        Cast every parameter, e.g. ``"float64"``. Default: as stored.
    device : optional
        Place the arrays on this device of the backend.

    Returns
    -------
    params : dict of str to array
    config : ModelConfig

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        A truncated or foreign file, a config from a newer format, tensors whose
        names, shapes or dtypes do not fit the config, or a ``dtype`` the backend
        cannot create here (float64 on JAX without x64).

    Warns
    -----
    UserWarning
        Once, when the stored dtype cannot be created on the backend (float64 on JAX
        without x64) and no ``dtype`` was asked for: the parameters load as float32.
    """
    if dtype is not None and dtype not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {_FLOAT_DTYPES} or None, got {dtype!r}")
    path = Path(path)
    metadata, tensors = _open(path)
    config = _config(path, metadata)
    check_params(config, tensors, source=f"the tensors in {path}")
    dtypes = {str(a.dtype) for a in tensors.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _FLOAT_DTYPES:
        raise ValueError(
            f"{path}: parameters must share one floating dtype, found {sorted(dtypes)}"
        )
    target = _backends.get(backend)
    if not target.is_installed():
        raise ImportError(
            f"backend {backend!r} is not installed ({_backends.install_hint(backend)})"
        )
    dtype = _loadable_dtype(target, path, next(iter(dtypes)), dtype)
    params = {
        name: target.from_numpy(tensors[name], dtype=dtype, device=device)
        for name in sorted(tensors)
    }
    return params, config
