"""Gradients of ``write`` and ``read``: PyTorch autograd, ``jax.grad`` and finite differences.

The scalar loss is ``L = sum(W * write(M, k, v, p_w, p_e)) + sum(W2 * read(M2, q, p_r))``
with fixed random weights ``W``, ``W2``; the gradient is taken with respect to
every input (``M, k, v, p_w, p_e, M2, q, p_r``, the probabilities as arrays of the
batch shape, the arrays' batch shapes broadcasting together) in float64, and checked

(a) PyTorch against JAX, and
(b) each of them against central finite differences of the same loss computed with
    namcore on NumPy float64 arrays.

These tests use torch and jax directly rather than the ``xp`` fixture; each is
skipped, visibly, when its library is not installed. Inputs are kept well inside the
domain where finite differences are accurate: probabilities in [0.05, 0.95], keys
and queries of norm >= 0.5, elements of magnitude <= 2, dimensions <= 4.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prop_oracles import EPS
from prop_strategies import arrays, broadcast_batches, dims, keys, probabilities

import namcore
from namcore import backends
from namcore.testing import numerical_gradient

NAMES = ("M", "k", "v", "p_write", "p_erase", "M2", "q", "p_read")
STEP = 1e-6
#: finite differences vs autodiff, relative to the largest gradient entry of an input
FD_RTOL = 1e-5
#: torch vs jax, relative to the largest gradient entry or loss term
AD_RTOL = 1e-9
_BOUND = 2.0


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    backends.get("jax").enable_float64()  # the finite-difference oracle is float64
    return jax


@st.composite
def loss_cases(draw) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The inputs (by name) and the weights ``W``, ``W2`` of one loss."""
    d_k, d_v = draw(dims(1, 4)), draw(dims(1, 4))
    w_shapes = draw(broadcast_batches(3, max_side=2))
    r_shapes = draw(broadcast_batches(2, max_side=2))
    (bm, bk, bv), batch = w_shapes.input_shapes, w_shapes.result_shape
    (bm2, bq), batch2 = r_shapes.input_shapes, r_shapes.result_shape
    inputs = {
        "M": draw(arrays((*bm, d_v, d_k), _BOUND)),
        "k": draw(keys((*bk, d_k), min_norm=0.5, bound=_BOUND)),
        "v": draw(arrays((*bv, d_v), _BOUND)),
        "p_write": draw(probabilities(batch, 0.05, 0.95)),
        "p_erase": draw(probabilities(batch, 0.05, 0.95)),
        "M2": draw(arrays((*bm2, d_v, d_k), _BOUND)),
        "q": draw(keys((*bq, d_k), min_norm=0.5, bound=_BOUND)),
        "p_read": draw(probabilities(batch2, 0.05, 0.95)),
    }
    # the weights: nonzero-ish, so that every input influences the loss
    W = draw(arrays((*batch, d_v, d_k), 1.0))
    W2 = draw(arrays((*batch2, d_v), 1.0))
    return inputs, W, W2


def _loss(inputs: dict[str, Any], W: Any, W2: Any, sum_: Any) -> Any:
    written = namcore.write(
        inputs["M"], inputs["k"], inputs["v"], inputs["p_write"], inputs["p_erase"]
    )
    read = namcore.read(inputs["M2"], inputs["q"], inputs["p_read"])
    return sum_(W * written) + sum_(W2 * read)


def _loss_scale(inputs: dict[str, np.ndarray], W: np.ndarray, W2: np.ndarray) -> float:
    """``sum |W| |terms|``: the size of the loss's largest partial sums."""
    M, k, v = inputs["M"], inputs["k"], inputs["v"]
    d_k = k.shape[-1]
    term = np.abs(M) + np.abs(v)[..., :, None] + np.sqrt(d_k) * np.max(np.abs(M))
    read_term = np.sqrt(d_k) * np.max(np.abs(inputs["M2"]))
    return float(np.sum(np.abs(W) * term) + np.sum(np.abs(W2)) * read_term)


def _numpy_gradients(inputs, W, W2) -> dict[str, np.ndarray]:
    """Central differences of the loss, evaluated with namcore on NumPy float64."""

    def loss(values):
        return float(_loss(values, W, W2, np.sum))

    return {
        name: numerical_gradient(
            lambda x, name=name: loss({**inputs, name: x}), inputs[name], step=STEP
        )
        for name in NAMES
    }


def _torch_gradients(torch, inputs, W, W2) -> dict[str, np.ndarray]:
    leaves = {
        n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in inputs.items()
    }
    loss = _loss(leaves, torch.from_numpy(W), torch.from_numpy(W2), torch.sum)
    loss.backward()
    for name, leaf in leaves.items():
        assert leaf.grad is not None, f"no torch gradient for {name}"
    return {n: leaf.grad.numpy() for n, leaf in leaves.items()}


@functools.cache
def _jax_loss_grad(jax):
    """``jax.grad`` of the loss, jitted: one compilation per shape rather than one per
    primitive op and shape, shared by the tests (which draw the same shapes)."""
    import jax.numpy as jnp

    return jax.jit(jax.grad(lambda p, w, w2: _loss(p, w, w2, jnp.sum)))


def _jax_gradients(jax, inputs, W, W2) -> dict[str, np.ndarray]:
    import jax.numpy as jnp

    params = {n: jnp.asarray(a, dtype=jnp.float64) for n, a in inputs.items()}
    grads = _jax_loss_grad(jax)(params, jnp.asarray(W), jnp.asarray(W2))
    for name, g in grads.items():
        assert g.dtype == jnp.float64, f"jax gradient for {name} is {g.dtype}"
    return {n: np.asarray(g) for n, g in grads.items()}


def _assert_gradients_close(got, want, inputs, *, rtol, floor, what):
    """Per input: shape equal and max|got - want| <= rtol * max|want| + floor."""
    for name in NAMES:
        assert got[name].shape == inputs[name].shape, (
            f"{what}: gradient of {name} has shape {got[name].shape}, "
            f"input has {inputs[name].shape}"
        )
        err = float(np.max(np.abs(got[name] - want[name]), initial=0.0))
        bound = rtol * float(np.max(np.abs(want[name]), initial=0.0)) + floor
        assert err <= bound, (
            f"{what}: gradient of {name} is off by {err:.3e} (allowed {bound:.3e})\n"
            f"got  {got[name]!r}\nwant {want[name]!r}"
        )


def _fd_floor(inputs, W, W2) -> float:
    # Central differences lose ~ eps * (size of the loss's partial sums) / STEP to
    # rounding (~2e-10 per unit of scale); 1e-8 per unit leaves a margin of ~50.
    return 1e-8 * (1.0 + _loss_scale(inputs, W, W2))


@given(case=loss_cases())
def test_torch_gradients_match_finite_differences(torch, case):
    inputs, W, W2 = case
    _assert_gradients_close(
        _torch_gradients(torch, inputs, W, W2),
        _numpy_gradients(inputs, W, W2),
        inputs,
        rtol=FD_RTOL,
        floor=_fd_floor(inputs, W, W2),
        what="torch vs finite differences",
    )


@given(case=loss_cases())
def test_jax_gradients_match_finite_differences(jax, case):
    inputs, W, W2 = case
    _assert_gradients_close(
        _jax_gradients(jax, inputs, W, W2),
        _numpy_gradients(inputs, W, W2),
        inputs,
        rtol=FD_RTOL,
        floor=_fd_floor(inputs, W, W2),
        what="jax vs finite differences",
    )


@given(case=loss_cases())
def test_torch_and_jax_gradients_agree(torch, jax, case):
    inputs, W, W2 = case
    _assert_gradients_close(
        _torch_gradients(torch, inputs, W, W2),
        _jax_gradients(jax, inputs, W, W2),
        inputs,
        rtol=AD_RTOL,
        floor=AD_RTOL * _loss_scale(inputs, W, W2),
        what="torch vs jax",
    )


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_unit_gradient_at_zero_is_finite(library):
    # unit() computes sqrt(max(sum x², eps²)) so that the gradient at x = 0 is finite:
    # there the norm is the constant eps, and d/dx sum(w * x / eps) = w / eps.
    mod = pytest.importorskip(library)
    w = np.array([[0.5, -1.0, 2.0], [1.0, 0.25, -0.75]])
    x = np.zeros((2, 3))
    if library == "torch":
        xt = mod.tensor(x, requires_grad=True)
        mod.sum(mod.from_numpy(w) * namcore.unit(xt)).backward()
        grad = xt.grad.numpy()
    else:
        import jax.numpy as jnp

        mod.config.update("jax_enable_x64", True)
        grad = np.asarray(
            mod.grad(lambda a: jnp.sum(jnp.asarray(w) * namcore.unit(a)))(jnp.asarray(x))
        )
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, w / EPS, rtol=1e-12)
