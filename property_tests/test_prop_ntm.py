"""Properties of NTM addressing and access (``namcore.ntm``) on every backend of ``xp``.

Every result is compared with the NumPy float64 oracles of ``prop_oracles`` (float64
inputs, so within ``RTOL`` of the operand scale), and the addressing properties are
checked on the results themselves: weights are distributions, a saturated shift
rotates exactly, sharpening with ``gamma = 1`` changes nothing.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_oracles import (
    assert_close,
    np_content_address,
    np_interpolate,
    np_ntm_read,
    np_ntm_write,
    np_sharpen,
    np_shift,
    on,
)
from prop_strategies import (
    CELLS,
    arrays,
    broadcast_batches,
    dims,
    distributions,
    probabilities,
    probability_args,
)

from namcore import ntm
from namcore.testing import to_numpy

#: Every example runs on each backend of the matrix, and eager ndonnx and JAX spend
#: ~0.1-0.5 s on one call: a sixth of the profile's examples (4 in ``ci``, 83 in
#: ``thorough``) keeps this file to a few seconds per backend.
FEWER = settings(max_examples=max(3, settings().max_examples // 6))


def per_memory(batch, low, high):
    """A per-memory scalar: a Python float or a float64 array of ``batch``."""
    return st.one_of(st.floats(low, high, allow_subnormal=False), probabilities(batch, low, high))


@st.composite
def addressing_cases(draw):
    """memory, key, strength, gate, shift, gamma, previous (batches broadcasting)."""
    n, w = draw(st.sampled_from(CELLS)), draw(dims(1, 3))
    shapes = draw(broadcast_batches(4, max_dims=1, max_side=2))
    (bm, bk, bs, bp), batch = shapes.input_shapes, shapes.result_shape
    content_batch = np.broadcast_shapes(bm, bk)  # each scalar fits the step that uses it
    return (
        draw(arrays((*bm, n, w))),
        draw(arrays((*bk, w))),
        draw(per_memory(content_batch, 0.0, 20.0)),
        draw(probability_args(np.broadcast_shapes(content_batch, bp))),
        draw(distributions((*bs, 3))),
        draw(per_memory(batch, 1.0, 5.0)),
        draw(distributions((*bp, n))),
    )


def assert_distribution(w, xp):
    got = to_numpy(w)
    assert (got >= 0).all() and (got <= 1 + 1e-12).all()
    assert_close(xp.sum(w, axis=-1), np.ones(got.shape[:-1]), xp=xp, scale=1.0)


@FEWER
@given(addressing_cases())
def test_addressing_matches_the_oracle_and_gives_distributions(xp, device, case):
    """Content weights, and the whole chain, against the oracle's four steps.

    (``interpolate``, ``shift`` and ``sharpen`` alone are checked on every backend in
    tests/test_ntm.py; here they run inside ``address``, on the agnostic code path.)
    """
    memory, key, strength, gate, s, gamma, previous = case
    args = [on(xp, device, a) for a in case]
    content = ntm.content_address(args[0], args[1], args[2])
    expected_content = np_content_address(memory, key, strength)
    assert_close(content, expected_content, xp=xp, scale=1.0)
    assert_distribution(content, xp)

    expected = np_sharpen(np_shift(np_interpolate(expected_content, previous, gate), s), gamma)
    weights = ntm.address(*args)
    assert_close(weights, expected, xp=xp, scale=1.0)
    assert_distribution(weights, xp)


@FEWER
@given(st.sampled_from(CELLS), st.sampled_from((-1, 0, 1)), st.data())
def test_saturated_shift_rotates_exactly_and_gamma_one_changes_nothing(xp, device, n, offset, data):
    batch = data.draw(st.sampled_from([(), (2,)]))
    w = data.draw(distributions((*batch, n)))
    s = np.zeros(3)
    s[offset + 1] = 1.0
    rotated = to_numpy(ntm.shift(on(xp, device, w), on(xp, device, s)))
    np.testing.assert_array_equal(rotated, np.roll(w, offset, axis=-1))
    assert_close(ntm.sharpen(on(xp, device, w), 1.0), w, xp=xp, scale=1.0)
    gamma = on(xp, device, np.ones(batch))
    assert_close(ntm.sharpen(on(xp, device, w), gamma), w, xp=xp, scale=1.0)


@st.composite
def access_cases(draw):
    """memory (..., N, W), weights (..., N), erase (..., W) in [0, 1], add (..., W)."""
    n, w = draw(st.sampled_from(CELLS)), draw(dims(1, 3))
    shapes = draw(broadcast_batches(4, max_dims=1, max_side=2))
    (bm, bw, be, ba) = shapes.input_shapes
    return (
        draw(arrays((*bm, n, w))),
        draw(distributions((*bw, n))),
        draw(probabilities((*be, w))),
        draw(arrays((*ba, w))),
    )


@FEWER
@given(access_cases())
def test_write_and_read_match_the_oracle(xp, device, case):
    memory, w, _, add = case
    scale = 2 * (np.max(np.abs(memory), initial=0) + np.max(np.abs(add), initial=0))
    args = [on(xp, device, a) for a in case]
    written = ntm.write(*args)
    assert_close(written, np_ntm_write(*case), xp=xp, scale=scale)
    assert_close(ntm.read(args[0], args[1]), np_ntm_read(memory, w), xp=xp, scale=scale)
    assert_close(args[0], memory, xp=xp, scale=scale)  # the input is unchanged
