"""The backend layer: one module per array library, imported lazily.

``namcore.backends`` maps each supported library to a :class:`Backend` object that
knows the library's name, namespace, devices, NumPy conversion, seeded RNG and
``scan``, and holds the library's fast paths. Importing this package imports no
framework: a backend module is imported the first time an array of its library is
seen (or the backend is asked for by name).

Examples
--------
>>> import numpy as np
>>> from namcore import backends
>>> backends.for_array(np.zeros(3)).name
'numpy'
>>> "numpy" in backends.installed()
True
"""

from __future__ import annotations

from collections.abc import Callable

from namcore import _compat
from namcore._typing import Array, Namespace

from ._base import Backend
from ._steps import ManualStep

__all__ = [
    "NAMES",
    "Backend",
    "ManualStep",
    "for_array",
    "for_namespace",
    "get",
    "install_hint",
    "installed",
]

#: Backends namcore knows by name, in the order tables and test matrices use.
NAMES: tuple[str, ...] = ("numpy", "array_api_strict", "torch", "jax", "cupy", "ndonnx", "dask")


# One loader per backend, with a plain import statement: torch.compile can trace an
# import statement on first use, but not importlib.import_module.
def _load_numpy() -> Backend:
    from .numpy import NumPyBackend

    return NumPyBackend()


def _load_array_api_strict() -> Backend:
    from .generic import ArrayAPIStrictBackend

    return ArrayAPIStrictBackend()


def _load_torch() -> Backend:
    from .torch import TorchBackend

    return TorchBackend()


def _load_jax() -> Backend:
    from .jax import JAXBackend

    return JAXBackend()


def _load_cupy() -> Backend:
    from .cupy import CuPyBackend

    return CuPyBackend()


def _load_ndonnx() -> Backend:
    from .ndonnx import NdonnxBackend

    return NdonnxBackend()


def _load_dask() -> Backend:
    from .dask import DaskBackend

    return DaskBackend()


_REGISTRY: dict[str, Callable[[], Backend]] = {
    "numpy": _load_numpy,
    "array_api_strict": _load_array_api_strict,
    "torch": _load_torch,
    "jax": _load_jax,
    "cupy": _load_cupy,
    "ndonnx": _load_ndonnx,
    "dask": _load_dask,
}

# namespace __name__ -> backend name, the fast lookup used on every primitive call
_NAMESPACE_NAMES: dict[str, str] = {
    "array_api_compat.numpy": "numpy",
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "array_api_compat.torch": "torch",
    "jax.numpy": "jax",
    "array_api_compat.cupy": "cupy",
    "cupy": "cupy",
    "ndonnx": "ndonnx",
    "array_api_compat.dask.array": "dask",
    "dask.array": "dask",
}


# Plain dict caches (not functools.lru_cache): they trace cleanly under torch.compile.
_INSTANCES: dict[str, Backend] = {}
_GENERIC: dict[int, Backend] = {}


def get(name: str) -> Backend:
    """The backend called ``name`` (one of :data:`NAMES`).

    Raises
    ------
    ValueError
        If ``name`` is not a known backend.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")
    backend = _INSTANCES.get(name)
    if backend is None:
        backend = _INSTANCES[name] = _REGISTRY[name]()
    return backend


def for_namespace(xp: Namespace) -> Backend:
    """The backend serving the array-API namespace ``xp``.

    Known libraries get their own backend; any other compliant namespace gets a
    :class:`~namcore.backends.generic.GenericBackend` that uses the standard path.
    """
    name = _NAMESPACE_NAMES.get(getattr(xp, "__name__", ""))
    if name is not None:
        return get(name)
    for predicate, backend_name in (
        (_compat.is_numpy_namespace, "numpy"),
        (_compat.is_torch_namespace, "torch"),
        (_compat.is_jax_namespace, "jax"),
        (_compat.is_cupy_namespace, "cupy"),
        (_compat.is_array_api_strict_namespace, "array_api_strict"),
    ):
        if predicate(xp):
            return get(backend_name)
    return _generic(xp)


def for_array(x: Array) -> Backend:
    """The backend of the library that array ``x`` belongs to."""
    return for_namespace(_compat.array_namespace(x))


#: The extra of namcore that installs each backend's library (NumPy always is).
_EXTRAS = {
    "array_api_strict": "strict",
    "torch": "torch",
    "jax": "jax",
    "cupy": "cupy",
    "ndonnx": "onnx",
    "dask": "dask",
}


def install_hint(name: str) -> str:
    """The command that installs backend ``name``'s library with namcore.

    Examples
    --------
    >>> from namcore import backends
    >>> backends.install_hint("ndonnx")
    "pip install 'namcore[onnx]'"
    """
    return f"pip install 'namcore[{_EXTRAS.get(name, name)}]'"


def installed() -> list[str]:
    """Names of the backends whose library is importable (nothing is imported)."""
    return [name for name in NAMES if get(name).is_installed()]


def _generic(xp: Namespace) -> Backend:
    backend = _GENERIC.get(id(xp))
    if backend is None:
        from .generic import GenericBackend

        backend = _GENERIC[id(xp)] = GenericBackend(xp)
    return backend
