"""Memory-augmented models built on namcore's primitives (LSAM, NAM-TM, NAM Transformer).

The models are written once in this package against the array API standard, with one
sub-package per backend. They arrive with the models issue; for now the package exists
so that ``namcore.models`` is importable from both wheel and editable installs.
"""

__all__: list[str] = []
