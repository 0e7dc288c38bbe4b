"""Hypothesis strategies for the NAM property tests (NumPy float64 inputs).

Every value is a finite float64 that is not subnormal, bounded in magnitude; shapes
are small (``d_k``, ``d_v`` from :data:`DIMS` in 1..8, at most two batch axes of size
1..3) so that the number of distinct shapes, and with it the number of JAX
compilations, stays moderate. Probabilities are Python floats or float64 arrays in
[0, 1].

Imported by the test modules as a top-level module (this folder has no
``__init__.py``; see ``conftest.py``), hence the ``prop_`` prefix that keeps its name
from colliding with anything else on ``sys.path``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

__all__ = [
    "BOUND",
    "DIMS",
    "MIN_KEY_NORM",
    "MemoryCase",
    "arrays",
    "batch_shapes",
    "broadcast_batches",
    "dims",
    "elements",
    "keys",
    "memory_cases",
    "probabilities",
    "probability_args",
]

#: Largest magnitude of a drawn array element.
BOUND = 10.0
#: Keys are at least this long (the theorems need a well-defined direction).
MIN_KEY_NORM = 1e-3

Shape = tuple[int, ...]


#: Magnitudes below this are drawn as exact zeros: a product of a few such values would
#: be subnormal, which JAX and CuPy flush to zero (jax#26658, cupy#8382).
TINY = 1e-30


def elements(bound: float = BOUND) -> st.SearchStrategy[float]:
    """Finite float64 values in ``[-bound, bound]``, zero or of magnitude >= ``TINY``."""
    return st.floats(
        -bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64
    ).map(lambda x: 0.0 if abs(x) < TINY else x)


#: The feature dimensions drawn: 1 (degenerate), small ones, and the largest. A short
#: menu rather than every size in 1..8, so that the shapes repeat across examples and
#: tests, and eager JAX (which compiles every operation for every new shape, ~20 ms
#: each) and jax.jit spend less time compiling.
DIMS = (1, 2, 3, 5, 8)


def dims(min_dim: int = 1, max_dim: int = 8) -> st.SearchStrategy[int]:
    """A feature dimension (``d_k`` or ``d_v``) from :data:`DIMS`."""
    return st.sampled_from([d for d in DIMS if min_dim <= d <= max_dim])


def batch_shapes(max_dims: int = 2, max_side: int = 3) -> st.SearchStrategy[Shape]:
    """Batch shapes with 0..``max_dims`` axes of size 1..``max_side``."""
    return hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcast_batches(
    num: int, max_dims: int = 2, max_side: int = 3
) -> st.SearchStrategy[hnp.BroadcastableShapes]:
    """``num`` batch shapes that broadcast together (``.input_shapes``, ``.result_shape``)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num, min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side
    )


def arrays(shape: Shape, bound: float = BOUND) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` with elements from :func:`elements`."""
    return hnp.arrays(np.float64, shape, elements=elements(bound))


@st.composite
def keys(
    draw: st.DrawFn, shape: Shape, min_norm: float = MIN_KEY_NORM, bound: float = BOUND
) -> np.ndarray:
    """float64 arrays of ``shape`` whose every vector (last axis) has norm > ``min_norm``.

    A drawn vector that is too short gets one coordinate set to a value of magnitude
    in ``[max(2 min_norm, bound/100), bound]`` (a fix-up instead of a filter, which
    would reject most arrays when Hypothesis fills them with zeros).
    """
    k = np.array(draw(arrays(shape, bound)))
    short = np.linalg.norm(k, axis=-1) <= min_norm
    if np.any(short):
        j = draw(st.integers(0, shape[-1] - 1))
        low = max(2 * min_norm, bound / 100)
        value = draw(st.floats(low, bound, allow_subnormal=False))
        k[short, j] = value if draw(st.booleans()) else -value
    assert np.all(np.linalg.norm(k, axis=-1) > min_norm)
    return k


def probabilities(
    shape: Shape, low: float = 0.0, high: float = 1.0
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` with values in ``[low, high]``."""
    return hnp.arrays(
        np.float64, shape, elements=st.floats(low, high, allow_subnormal=False, width=64)
    )


def probability_args(shape: Shape) -> st.SearchStrategy[float | np.ndarray]:
    """A probability argument: a Python float (0, 1 or between) or an array of ``shape``.

    The literal floats 0.0 and 1.0 matter: namcore takes shortcuts for them.
    """
    return st.one_of(
        st.sampled_from([0.0, 1.0]),
        st.floats(0.0, 1.0, allow_subnormal=False),
        probabilities(shape),
    )


class MemoryCase(NamedTuple):
    """One ``write``/``read`` problem in NumPy float64.

    ``M`` (…, d_v, d_k), ``k`` (…, d_k) and ``v`` (…, d_v) have batch shapes that
    broadcast to ``batch``; ``p_write`` and ``p_erase`` are Python floats or arrays of
    shape ``batch``.
    """

    M: np.ndarray
    k: np.ndarray
    v: np.ndarray
    p_write: Any
    p_erase: Any
    batch: Shape
    d_k: int
    d_v: int


@st.composite
def memory_cases(
    draw: st.DrawFn, *, min_d_k: int = 1, broadcast: bool = True, float_probabilities: bool = True
) -> MemoryCase:
    """A :class:`MemoryCase`.

    ``broadcast=False`` gives ``M``, ``k``, ``v`` the same batch shape;
    ``float_probabilities=False`` draws the probabilities as arrays only.
    """
    d_k, d_v = draw(dims(min_d_k)), draw(dims())
    if broadcast:
        shapes = draw(broadcast_batches(3))
        (bm, bk, bv), batch = shapes.input_shapes, shapes.result_shape
    else:
        batch = draw(batch_shapes())
        bm = bk = bv = batch
    M = draw(arrays((*bm, d_v, d_k)))
    k = draw(keys((*bk, d_k)))
    v = draw(arrays((*bv, d_v)))
    p = probability_args(batch) if float_probabilities else probabilities(batch)
    return MemoryCase(M, k, v, draw(p), draw(p), tuple(batch), d_k, d_v)


# --------------------------------------------------------------------------------------
# NTM and DNC: weightings over N cells.

__all__ += ["CELLS", "distributions", "subdistributions"]

#: Numbers of memory cells drawn (a short menu, as for :data:`DIMS`).
CELLS = (1, 2, 3, 5)


@st.composite
def distributions(draw: st.DrawFn, shape: Shape) -> np.ndarray:
    """Nonnegative float64 arrays of ``shape`` whose last axis sums to 1.

    Some draws are one-hot (the saturated weights the properties are about), the rest
    normalised draws from [0, 1] (zeros included).
    """
    if draw(st.booleans()):
        hot = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
        return (np.arange(shape[-1]) == np.asarray(hot)[..., None]).astype(np.float64)
    raw = np.array(draw(probabilities(shape)))
    raw[raw.sum(axis=-1) == 0, 0] = 1.0
    return raw / raw.sum(axis=-1, keepdims=True)


@st.composite
def subdistributions(draw: st.DrawFn, shape: Shape) -> np.ndarray:
    """Nonnegative arrays whose last axis sums to at most 1 (a distribution, scaled)."""
    total = draw(probabilities(shape[:-1]))
    return np.asarray(total)[..., None] * draw(distributions(shape))
