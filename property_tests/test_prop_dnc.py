"""Properties of DNC memory management (``namcore.dnc``) on every backend of ``xp``.

Usage, allocation, the temporal link matrix and the read modes are compared with the
NumPy float64 oracles of ``prop_oracles``, and checked on the results: usage stays in
[0, 1], allocation is largest at the least-used cell and sums to at most 1, the link
matrix keeps a zero diagonal and rows and columns summing to at most 1.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_oracles import (
    assert_close,
    np_allocation,
    np_backward,
    np_forward,
    np_link,
    np_read_weighting,
    np_usage,
    np_write_weighting,
    on,
)
from prop_strategies import (
    CELLS,
    broadcast_batches,
    distributions,
    probabilities,
    probability_args,
    subdistributions,
)

from namcore import dnc
from namcore.testing import to_numpy

#: Every example runs on each backend of the matrix, and eager ndonnx and JAX spend
#: ~0.1-0.5 s on one call: a sixth of the profile's examples (4 in ``ci``, 83 in
#: ``thorough``) keeps this file to a few seconds per backend.
FEWER = settings(max_examples=max(3, settings().max_examples // 6))

TOL = 1e-12


@st.composite
def usage_cases(draw):
    """usage (..., N), write weights (..., N), free gates (..., R), read weights (..., R, N)."""
    n, r = draw(st.sampled_from(CELLS)), draw(st.sampled_from((1, 2)))
    shapes = draw(broadcast_batches(4, max_dims=1, max_side=2))
    bu, bw, bf, br = shapes.input_shapes
    usage = draw(probabilities((*bu, n)))
    if draw(st.booleans()):  # ties, zeros and ones: the corners of the sort
        usage = np.asarray(draw(st.lists(st.sampled_from((0.0, 0.5, 1.0)), min_size=n, max_size=n)))
    return (
        usage,
        draw(subdistributions((*bw, n))),
        draw(probabilities((*bf, r))),
        draw(distributions((*br, r, n))),
    )


@FEWER
@given(usage_cases())
def test_usage_and_allocation_match_the_oracle(xp, device, case):
    u, w, f, r = case
    new = dnc.usage(*(on(xp, device, a) for a in case))
    expected = np_usage(u, w, f, r)
    assert_close(new, expected, xp=xp, scale=1.0)
    got = to_numpy(new)
    assert (got >= 0).all() and (got <= 1).all()

    a = dnc.allocation(on(xp, device, expected))
    assert_close(a, np_allocation(expected), xp=xp, scale=1.0)
    weights = to_numpy(a)
    assert (weights >= 0).all() and (weights.sum(axis=-1) <= 1 + TOL).all()
    least = np.argmin(expected, axis=-1)  # the first of equally least-used cells
    at_least = np.take_along_axis(weights, least[..., None], axis=-1)[..., 0]
    assert (at_least >= weights.max(axis=-1) - TOL).all()


@st.composite
def link_cases(draw):
    """A link matrix and precedence reached by 0-3 writes, the next write weights, read
    weights, read modes and content weights."""
    n = draw(st.sampled_from(CELLS))
    shapes = draw(broadcast_batches(3, max_dims=1, max_side=2))
    bl, bw, br = shapes.input_shapes
    L, p = np.zeros((*bl, n, n)), np.zeros((*bl, n))
    for _ in range(draw(st.integers(0, 3))):
        L, p = np_link(L, p, draw(subdistributions((*bl, n))))
    return (
        L,
        p,
        draw(subdistributions((*bw, n))),
        draw(distributions((*br, n))),
        draw(distributions((*br, 3))),
        draw(distributions((*br, n))),
    )


@FEWER
@given(link_cases())
def test_link_and_read_modes_match_the_oracle(xp, device, case):
    L, p, w, r, modes, content = case
    new_link, new_precedence = dnc.link(on(xp, device, L), on(xp, device, p), on(xp, device, w))
    expected_link, expected_precedence = np_link(L, p, w)
    assert_close(new_link, expected_link, xp=xp, scale=1.0)
    assert_close(new_precedence, expected_precedence, xp=xp, scale=1.0)
    got = to_numpy(new_link)
    assert (np.diagonal(got, axis1=-2, axis2=-1) == 0).all()
    assert (got >= -TOL).all()
    assert (got.sum(axis=-1) <= 1 + TOL).all() and (got.sum(axis=-2) <= 1 + TOL).all()
    assert (to_numpy(new_precedence).sum(axis=-1) <= 1 + TOL).all()

    link_x, r_x = on(xp, device, expected_link), on(xp, device, r)
    f, b = np_forward(expected_link, r), np_backward(expected_link, r)
    assert_close(dnc.forward(link_x, r_x), f, xp=xp, scale=1.0)
    assert_close(dnc.backward(link_x, r_x), b, xp=xp, scale=1.0)
    mixed = dnc.read_weighting(
        on(xp, device, modes), on(xp, device, b), on(xp, device, content), on(xp, device, f)
    )
    assert_close(mixed, np_read_weighting(modes, b, content, f), xp=xp, scale=1.0)
    assert (to_numpy(mixed).sum(axis=-1) <= 1 + TOL).all()


@FEWER
@given(st.sampled_from(CELLS), st.data())
def test_write_weighting_matches_the_oracle(xp, device, n, data):
    batch = data.draw(st.sampled_from([(), (2,)]))
    a = data.draw(subdistributions((*batch, n)))
    c = data.draw(distributions((*batch, n)))
    g_a, g_w = data.draw(probability_args(batch)), data.draw(probability_args(batch))
    got = dnc.write_weighting(
        on(xp, device, a), on(xp, device, c), on(xp, device, g_a), on(xp, device, g_w)
    )
    assert_close(got, np_write_weighting(a, c, g_a, g_w), xp=xp, scale=1.0)
    assert (to_numpy(got).sum(axis=-1) <= 1 + TOL).all()
