"""Type aliases for the values namcore passes around.

namcore takes arrays of any array-API library, and there is no static type that a
NumPy array, a torch tensor, a JAX array and an ndonnx array all satisfy (the array
API standard describes their methods, but the libraries ship no common base class
or protocol that type checkers could verify). So the aliases below are ``Any`` to
the type checker; they name the *role* of a value for the reader, and give one place
to narrow them should a shared protocol appear.

Examples
--------
>>> from namcore._typing import Array
>>> def double(x: Array) -> Array:
...     return 2 * x
>>> double(3.0)
6.0
"""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = ["Array", "Device", "Namespace"]

#: An array of any array-API library (``numpy.ndarray``, ``torch.Tensor``,
#: ``jax.Array``, a CuPy, Dask, ndonnx or array-api-strict array).
Array: TypeAlias = Any

#: An array-API namespace: the module-like object ``xp`` whose functions make and
#: combine arrays (``array_api_compat.numpy``, ``jax.numpy``, ``array_api_strict``...).
Namespace: TypeAlias = Any

#: A device of an array library (``"cpu"``, ``torch.device("cuda:0")``, a JAX
#: device...), as ``x.device`` returns it and ``xp.asarray(..., device=)`` takes it.
Device: TypeAlias = Any
