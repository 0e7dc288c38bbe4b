"""Pure array-API implementations, with no validation and no fast paths.

Functions here take already-validated arguments and an explicit namespace ``xp``.
They use only the core of the standard (no ``linalg``), never mutate their inputs
and have no value-dependent Python control flow, so they trace under ``jax.jit``
and ``torch.compile`` and run on any compliant library.
"""

# The implementations live in the submodules (attention, delta, memory); nothing is
# re-exported here.
__all__: list[str] = []
