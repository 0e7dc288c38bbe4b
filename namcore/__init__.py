"""namcore: Neural Attention Memory on every array library.

NAM (Nam & Seo, arXiv 2302.09422) treats attention as a memory matrix: ``write`` adds
the outer product of a value and a unit key, ``read`` multiplies the memory by a unit
query. The functions here accept arrays of any array-API library (NumPy, CuPy,
PyTorch, JAX, array-api-strict, ...) and return arrays of the same library, dtype and
device. Importing namcore imports no framework.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from namcore import dnc, ham, ntm
from namcore.attention import attention
from namcore.export import export_onnx
from namcore.memory import read, unit, write

try:
    __version__ = _version("namcore")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "attention", "dnc", "export_onnx", "ham", "ntm", "read", "unit", "write"]
