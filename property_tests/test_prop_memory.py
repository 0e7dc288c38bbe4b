"""Properties of ``write`` and ``read`` (NAM paper, arXiv 2302.09422) on every ``xp``.

Each test draws NumPy float64 inputs, runs namcore on the backend under test and
compares with a NumPy float64 oracle built from the property's right-hand side (see
``prop_oracles`` for the tolerance rule). On ``jax:jit`` the primitives tagged below
run under ``jax.jit``; Python-float probabilities are then static arguments.
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
from array_api_extra.testing import lazy_xp_function
from hypothesis import given
from hypothesis import strategies as st
from prop_oracles import (
    amax,
    assert_close,
    memory_scale,
    np_read,
    np_unit,
    np_write,
    on,
)
from prop_strategies import (
    MemoryCase,
    arrays,
    batch_shapes,
    broadcast_batches,
    dims,
    keys,
    memory_cases,
    probabilities,
)

from namcore import read, unit, write
from namcore.testing import to_numpy

lazy_xp_function(unit)
lazy_xp_function(write)
lazy_xp_function(read)


def _write(xp, device, case: MemoryCase, p_write=None, p_erase=None):
    """``write`` on the backend, with the case's probabilities unless overridden."""
    pw = case.p_write if p_write is None else p_write
    pe = case.p_erase if p_erase is None else p_erase
    return write(
        on(xp, device, case.M),
        on(xp, device, case.k),
        on(xp, device, case.v),
        on(xp, device, pw),
        on(xp, device, pe),
    )


def _move_first(a: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """Columns of ``a`` (…, d, n) as a stack of vectors (n, 1…, …, d) for ``batch``.

    The vectors' own batch axes are right-aligned and padded with ones so the stack
    broadcasts against a memory of batch shape ``batch``.
    """
    vectors = np.moveaxis(a, -1, 0)
    n, own, d = vectors.shape[0], vectors.shape[1:-1], vectors.shape[-1]
    return vectors.reshape((n, *(1,) * (len(batch) - len(own)), *own, d))


# --------------------------------------------------------------------------------------
# Theorems 1 and 2


@st.composite
def orthonormal_cases(draw):
    """``S <= d_k`` orthogonal keys of lengths in [0.1, 10] and their values, batched."""
    d_k, d_v, batch = draw(dims()), draw(dims()), draw(batch_shapes())
    n_keys = draw(st.integers(1, d_k))
    # Q of a QR decomposition is orthogonal whatever the rank of the drawn matrix.
    basis = np.linalg.qr(draw(arrays((*batch, d_k, d_k))))[0]
    lengths = draw(hnp.arrays(np.float64, (n_keys, *batch, 1), elements=st.floats(0.1, 10.0)))
    K = np.moveaxis(basis[..., :n_keys], -1, 0) * lengths  # (S, *batch, d_k)
    V = draw(arrays((n_keys, *batch, d_v)))
    return K, V


@given(problem=orthonormal_cases())
def test_theorem_1_orthonormal_keys_read_back_their_values(xp, device, problem):
    K, V = problem
    n_keys, d_k, d_v = K.shape[0], K.shape[-1], V.shape[-1]
    M = on(xp, device, np.zeros((*K.shape[1:-1], d_v, d_k)))
    for k, v in zip(K, V, strict=True):
        M = write(M, on(xp, device, k), on(xp, device, v))  # p_w = 1, p_e = 0
    # one read with all S keys at once: (S, *batch, d_k) broadcasts against M
    out = read(M, on(xp, device, K))
    assert_close(out, V, xp=xp, scale=(d_k + 1) * n_keys * amax(V))


@given(case=memory_cases())
def test_theorem_2_overwrite_then_read_returns_the_value(xp, device, case):
    M2 = _write(xp, device, case, 1.0, 1.0)
    out = read(M2, on(xp, device, case.k))
    expected = np.broadcast_to(case.v, (*case.batch, case.d_v))
    assert_close(out, expected, xp=xp, scale=memory_scale(case.M, case.v))


# --------------------------------------------------------------------------------------
# Properties of write derived from its definition (not stated in the paper)


@given(case=memory_cases())
def test_read_after_write_interpolates_old_and_new_value(xp, device, case):
    # WR(M, k, v, p_w, p_e) k̂ = (1 - p_e) M k̂ + p_w v
    M2 = _write(xp, device, case)
    out = read(M2, on(xp, device, case.k))
    pe = np.asarray(case.p_erase)[..., None]
    pw = np.asarray(case.p_write)[..., None]
    expected = (1 - pe) * np_read(case.M, case.k) + pw * case.v
    assert_close(out, expected, xp=xp, scale=memory_scale(case.M, case.v))


@given(case=memory_cases(), as_arrays=st.booleans())
def test_erase_only_then_read_gives_zero(xp, device, case, as_arrays):
    if as_arrays:  # array probabilities take a different code path than literal 0/1
        p_write, p_erase = np.zeros(case.batch), np.ones(case.batch)
    else:
        p_write, p_erase = 0.0, 1.0
    M2 = _write(xp, device, case, p_write, p_erase)
    out = read(M2, on(xp, device, case.k))
    # The exact result is 0; the computed one is M k̂ - (M k̂)(k̂ᵀk̂), whose rounding
    # error is a few ulps of |M k̂| <= sqrt(d_k) max|M|: the tolerance scales with M.
    assert_close(out, np.zeros((*case.batch, case.d_v)), xp=xp, scale=memory_scale(case.M))


@given(case=memory_cases(min_d_k=2), data=st.data())
def test_write_leaves_directions_orthogonal_to_the_key_untouched(xp, device, case, data):
    # for u ⟂ k: WR(M, k, v, p_w, p_e) u = M u. The d_k - 1 columns of Q after the
    # first, from the QR decomposition of [k, W], span the orthogonal complement of k.
    bk = case.k.shape[:-1]
    W = data.draw(arrays((*bk, case.d_k, case.d_k - 1)), label="W")
    Q = np.linalg.qr(np.concatenate([case.k[..., None], W], axis=-1))[0]
    U = _move_first(Q[..., 1:], case.batch)  # (d_k - 1, 1…, *bk, d_k), unit vectors
    M2 = _write(xp, device, case)
    out = read(M2, on(xp, device, U), normalize=False)
    expected = np.matmul(case.M, U[..., None])[..., 0]
    expected = np.broadcast_to(expected, (U.shape[0], *case.batch, case.d_v))
    assert_close(out, expected, xp=xp, scale=memory_scale(case.M, case.v))


@given(case=memory_cases())
def test_write_into_zero_memory_adds_the_scaled_outer_product(xp, device, case):
    # WR(0, k, v, p_w, p_e) = p_w v k̂ᵀ, whatever p_e
    zero = np.zeros_like(case.M)
    out = _write(xp, device, case._replace(M=zero))
    pw = np.asarray(case.p_write)[..., None, None]
    expected = pw * (case.v[..., :, None] * np_unit(case.k)[..., None, :])
    expected = np.broadcast_to(expected, (*case.batch, case.d_v, case.d_k))
    assert_close(out, expected, xp=xp, scale=amax(case.v))


@st.composite
def sequence_cases(draw):
    d_k, d_v, batch = draw(dims()), draw(dims()), draw(batch_shapes())
    steps = draw(st.integers(1, 4))
    K = draw(keys((steps, *batch, d_k)))
    V = draw(arrays((steps, *batch, d_v)))
    P = draw(probabilities((steps, *batch)))
    return K, V, P


@given(problem=sequence_cases())
def test_writes_without_erase_sum_gated_outer_products(xp, device, problem):
    # from M = 0, M <- WR(M, k_s, v_s, p_s, 0) for s = 1..S gives V^T (p ⊙ μ(K))
    K, V, P = problem
    M = on(xp, device, np.zeros((*K.shape[1:-1], V.shape[-1], K.shape[-1])))
    for k, v, p in zip(K, V, P, strict=True):
        M = write(M, on(xp, device, k), on(xp, device, v), on(xp, device, p), 0.0)
    expected = np.einsum("s...,s...i,s...j->...ij", P, V, np_unit(K))
    assert_close(M, expected, xp=xp, scale=K.shape[0] * amax(V))


@given(d=dims(), n_cells=dims(), batch=batch_shapes(), data=st.data())
def test_one_hot_key_overwrites_one_tape_cell_only(xp, device, d, n_cells, batch, data):
    # NAM-TM tape semantics: with a raw one-hot key e_i, WR(T, e_i, v, 1, 1) replaces
    # column i of T by v and leaves the other columns bit-for-bit unchanged.
    T = data.draw(arrays((*batch, d, n_cells)), label="T")
    v = data.draw(arrays((*batch, d)), label="v")
    i = data.draw(st.integers(0, n_cells - 1), label="i")
    e_i = np.eye(n_cells)[i]
    out = write(
        on(xp, device, T), on(xp, device, e_i), on(xp, device, v), 1.0, 1.0, normalize=False
    )
    expected = T.copy()
    expected[..., :, i] = v
    assert_close(out, expected, xp=xp, scale=amax(T, v))
    others = np.arange(n_cells) != i
    assert np.array_equal(to_numpy(out)[..., others], T[..., others])
    assert_close(read(out, on(xp, device, e_i), normalize=False), v, xp=xp, scale=amax(T, v))


# --------------------------------------------------------------------------------------
# read


@given(shapes=broadcast_batches(2), d_k=dims(), d_v=dims(), data=st.data())
def test_read_gate_is_linear(xp, device, shapes, d_k, d_v, data):
    # RD(M, q, p) = p RD(M, q, 1) and RD(M, q, 0) = 0
    (bm, bq), batch = shapes.input_shapes, shapes.result_shape
    M = data.draw(arrays((*bm, d_v, d_k)), label="M")
    q = data.draw(keys((*bq, d_k)), label="q")
    p = data.draw(probabilities(batch), label="p")
    Mx, qx = on(xp, device, M), on(xp, device, q)
    scale = memory_scale(M)

    full = read(Mx, qx)
    assert_close(full, np.broadcast_to(np_read(M, q), (*batch, d_v)), xp=xp, scale=scale)
    assert_close(read(Mx, qx, on(xp, device, p)), p[..., None] * to_numpy(full), xp=xp, scale=scale)
    assert_close(read(Mx, qx, 1.0), to_numpy(full), xp=xp, scale=scale)
    zeros = np.zeros((*batch, d_v))
    assert_close(read(Mx, qx, 0.0), zeros, xp=xp, scale=0.0)  # exactly zero
    assert_close(read(Mx, qx, on(xp, device, np.zeros(batch))), zeros, xp=xp, scale=0.0)


# --------------------------------------------------------------------------------------
# batching


@given(case=memory_cases(float_probabilities=False), data=st.data())
def test_batched_calls_equal_per_element_calls(xp, device, case, data):
    batch = case.batch
    q = data.draw(keys((*batch, case.d_k)), label="q")
    p_read = data.draw(probabilities(batch), label="p_read")
    M2 = _write(xp, device, case)
    out = read(M2, on(xp, device, q), on(xp, device, p_read))

    Mb = np.broadcast_to(case.M, (*batch, case.d_v, case.d_k))
    kb = np.broadcast_to(case.k, (*batch, case.d_k))
    vb = np.broadcast_to(case.v, (*batch, case.d_v))
    memories, reads = [], []
    for idx in np.ndindex(*batch):
        m = write(
            on(xp, device, Mb[idx]),
            on(xp, device, kb[idx]),
            on(xp, device, vb[idx]),
            on(xp, device, case.p_write[idx]),
            on(xp, device, case.p_erase[idx]),
        )
        reads.append(to_numpy(read(m, on(xp, device, q[idx]), on(xp, device, p_read[idx]))))
        memories.append(to_numpy(m))
    per_memory = np.stack(memories).reshape((*batch, case.d_v, case.d_k))
    per_read = np.stack(reads).reshape((*batch, case.d_v))

    expected_M = np_write(case.M, case.k, case.v, case.p_write, case.p_erase)
    scale_M = memory_scale(case.M, case.v)
    scale_r = memory_scale(expected_M)
    assert_close(M2, per_memory, xp=xp, scale=scale_M)
    assert_close(out, per_read, xp=xp, scale=scale_r)
    # and both agree with the oracle (so a bug common to both paths is caught too)
    assert_close(M2, expected_M, xp=xp, scale=scale_M)
    assert_close(out, np_read(expected_M, q, p_read), xp=xp, scale=scale_r)
