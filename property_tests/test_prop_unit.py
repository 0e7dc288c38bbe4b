"""Properties of ``unit`` on every backend of ``xp``: unit norm, zero, scale invariance."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
from array_api_extra.testing import lazy_xp_function
from hypothesis import given
from hypothesis import strategies as st
from prop_oracles import EPS, assert_close, np_unit, on
from prop_strategies import arrays, keys

from namcore import read, unit, write
from namcore.testing import to_numpy

lazy_xp_function(unit)
lazy_xp_function(write)
lazy_xp_function(read)

_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)


@st.composite
def arrays_and_axis(draw):
    """An array and an axis; some of its vectors zero or shorter than the eps floor."""
    shape = draw(_shapes)
    x = np.array(draw(arrays(shape)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    vectors = np.moveaxis(x, axis, -1)  # a view: edits go through to x
    batch = vectors.shape[:-1]
    for i in draw(st.lists(st.integers(0, int(np.prod(batch)) - 1), max_size=3)):
        vectors[np.unravel_index(i, batch)] *= draw(st.sampled_from([0.0, 1e-13, 1e-12]))
    x[np.abs(x) < np.finfo(np.float64).tiny] = 0.0  # no subnormals
    return x, axis


@given(problem=arrays_and_axis())
def test_unit_has_unit_norm_or_is_scaled_by_the_eps_floor(xp, device, problem):
    x, axis = problem
    out = unit(on(xp, device, x), axis=axis)
    expected = np_unit(x, axis=axis)
    assert_close(out, expected, xp=xp, scale=1.0)

    got = to_numpy(out)
    norms_in = np.linalg.norm(x, axis=axis)
    norms_out = np.linalg.norm(got, axis=axis)
    # ||unit(x)|| = ||x|| / max(||x||, eps): 1 above the floor, ||x||/eps below it
    np.testing.assert_allclose(
        norms_out, norms_in / np.maximum(norms_in, EPS), rtol=1e-12, atol=1e-15
    )
    long_rows = norms_in >= 2 * EPS
    np.testing.assert_allclose(norms_out[long_rows], 1.0, rtol=1e-12)
    # the zero vector maps to exactly zero (no NaN)
    zero_rows = np.all(np.moveaxis(x, axis, -1) == 0, axis=-1)
    assert np.all(np.moveaxis(got, axis, -1)[zero_rows] == 0)
    assert np.all(np.isfinite(got))


@given(x=_shapes.flatmap(keys), c=st.floats(1e-3, 1e3, allow_subnormal=False))
def test_unit_is_invariant_to_positive_scaling(xp, device, x, c):
    # unit(c x) = unit(x) for c > 0 (every vector is longer than 1e-3, so c x stays
    # far above the eps floor)
    scaled = unit(on(xp, device, c * x))
    plain = unit(on(xp, device, x))
    assert_close(scaled, to_numpy(plain), xp=xp, scale=1.0)
    assert_close(plain, np_unit(x), xp=xp, scale=1.0)
