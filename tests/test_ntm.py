"""namcore.ntm on every backend of the xp fixture: values, conventions, errors, gradients."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function

from namcore.ntm import address, content_address, read, sharpen, shift, write
from namcore.testing import assert_matches_numpy, numerical_gradient

for _f in (address, content_address, read, sharpen, shift, write):
    lazy_xp_function(_f)


def np_address(memory, key, strength, gate, s, gamma, previous, eps=1e-12):
    """NumPy float64: the four steps of NTM addressing, written out."""
    norms = np.maximum(np.linalg.norm(memory, axis=-1), eps)
    norms = norms * np.maximum(np.linalg.norm(key, axis=-1), eps)[..., None]
    scores = np.asarray(strength)[..., None] * np.einsum("...nw,...w->...n", memory, key) / norms
    content = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    g = np.asarray(gate)[..., None]
    gated = g * content + (1 - g) * previous
    shifted = (
        s[..., 0:1] * np.roll(gated, -1, axis=-1)
        + s[..., 1:2] * gated
        + s[..., 2:3] * np.roll(gated, 1, axis=-1)
    )
    powered = shifted ** np.asarray(gamma)[..., None]
    return powered / powered.sum(axis=-1, keepdims=True)


def case(rng, batch=(2,), n=5, w=3):
    distribution = rng.uniform(size=(*batch, n))
    s = rng.uniform(size=(*batch, 3))
    return (
        rng.normal(size=(*batch, n, w)),
        rng.normal(size=(*batch, w)),
        rng.uniform(0, 5, size=batch),
        rng.uniform(size=batch),
        s / s.sum(axis=-1, keepdims=True),
        rng.uniform(1, 3, size=batch),
        distribution / distribution.sum(axis=-1, keepdims=True),
    )


@pytest.mark.parametrize("dtype", ["float32"])  # float64 to 1e-12: property_tests/
def test_address_matches_numpy(xp, device, dtype):
    inputs = case(np.random.default_rng(0))
    dt = getattr(xp, dtype)
    out = address(*(xp.asarray(a, dtype=dt, device=device) for a in inputs))
    assert_matches_numpy(out, np_address(*inputs), xp=xp, dtype=dt)


def test_shift_plus_one_moves_weight_to_the_next_cell(xp, device):
    w = xp.asarray([0.5, 0.25, 0.0, 0.25], device=device)
    plus = shift(w, xp.asarray([0.0, 0.0, 1.0], device=device))
    minus = shift(w, xp.asarray([1.0, 0.0, 0.0], device=device))
    assert_matches_numpy(plus, np.array([0.25, 0.5, 0.25, 0.0]), xp=xp, rtol=0)
    assert_matches_numpy(minus, np.array([0.25, 0.0, 0.25, 0.5]), xp=xp, rtol=0)


def test_sharpen_saturates_without_nan_and_keeps_zero_weights_zero(xp, device):
    w = xp.asarray([[0.1, 0.3, 0.6], [0.0, 0.0, 0.0], [0.0, 0.5, 0.5]], device=device)
    gamma = xp.asarray([2000.0, 3.0, 7.0], device=device)
    expected = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    assert_matches_numpy(sharpen(w, gamma), expected, xp=xp)


def test_content_address_of_a_zero_key_is_uniform(xp, device):
    memory = xp.asarray([[1.0, 2.0], [0.0, 0.0], [-3.0, 1.0]], device=device)
    out = content_address(memory, xp.zeros((2,), device=device), 10.0)
    assert_matches_numpy(out, np.full(3, 1 / 3), xp=xp)


def test_write_then_read(xp, device):
    memory = xp.ones((3, 2), device=device)
    w = xp.asarray([0.0, 1.0, 0.5], device=device)
    new = write(
        memory, w, xp.asarray([1.0, 0.0], device=device), xp.asarray([5.0, 5.0], device=device)
    )
    assert_matches_numpy(new, np.array([[1.0, 1.0], [5.0, 6.0], [3.0, 3.5]]), xp=xp)
    assert_matches_numpy(read(new, w), np.array([6.5, 7.75]), xp=xp)
    assert_matches_numpy(memory, np.ones((3, 2)), xp=xp, rtol=0)  # not modified


M, U3, U4 = np.zeros((4, 3)), np.ones(3) / 3, np.ones(4) / 4  # a memory, uniform weights
ERRORS = [
    (lambda: content_address(np.zeros(3), np.zeros(3)), ValueError,
     r"`memory` must have at least 2"),
    (lambda: content_address(M, np.zeros(2)), ValueError, r"`key` has W \(cell width\) = 2"),
    (lambda: content_address(M, np.zeros(3), -1.0), ValueError,
     r"`strength` must lie in \[0, inf\)"),
    (lambda: content_address(M, np.zeros(3), np.ones(2)), ValueError,
     r"`strength` of shape \(2,\) must broadcast"),
    (lambda: content_address(M, np.zeros(3), True), TypeError,
     r"`strength` must be a Python float"),
    (lambda: content_address(np.zeros((4, 3), dtype=int), np.zeros(3)), TypeError,
     r"`memory` must have a real floating dtype"),
    (lambda: content_address(M, [0.0, 0.0, 0.0]), TypeError, r"`key` must be an array"),
    (lambda: content_address(np.zeros((2, 4, 3)), np.zeros((3, 3))), ValueError,
     r"batch shapes .* do not broadcast"),
    (lambda: shift(U4, U4), ValueError, r"`shift` must have 3 entries"),
    (lambda: shift(np.array([2.0, 0.0]), U3), ValueError, r"`w` must lie in \[0, 1\]"),
    (lambda: sharpen(U4, 0.5), ValueError, r"`gamma` must lie in \[1, inf\)"),
    (lambda: sharpen(U4, np.array(0.5)), ValueError,
     r"`gamma` must lie in \[1, inf\), got values in \[0.5, 0.5\]"),
    (lambda: address(M, np.zeros(3), 1.0, 1.5, U3, 1.0, U4), ValueError,
     r"`gate` must lie in \[0, 1\]"),
    (lambda: address(M, np.zeros(3), 1.0, 1.0, U3, 1.0, np.ones(5) / 5), ValueError,
     r"`previous` has N \(cells\) = 5"),
    (lambda: write(M, U4, np.full(3, 2.0), np.zeros(3)), ValueError,
     r"`erase` must lie in \[0, 1\]"),
    (lambda: read(M, U3), ValueError, r"ntm.read: `w` has N \(cells\) = 3"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), ERRORS)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _loss(memory, key, strength, gate, s, gamma, previous, weights, sum_):
    return sum_(weights * address(memory, key, strength, gate, s, gamma, previous))


def _numerical(inputs, weights):
    def f(i, x):
        values = list(inputs)
        values[i] = x
        return float(_loss(*values, weights, np.sum))

    return [numerical_gradient(lambda x, i=i: f(i, x), a) for i, a in enumerate(inputs)]


def _gradient_case():
    """Inputs inside the domain (finite differences step both ways), and loss weights."""
    inputs = list(case(np.random.default_rng(3), batch=(2,), n=4, w=3))
    return inputs, np.random.default_rng(4).normal(size=(2, 4))


def _saturated_case():
    """Zero weights and a one-hot shift: the gradient must stay finite (0 ** gamma)."""
    inputs, weights = _gradient_case()
    inputs[1][0] = 3 * inputs[0][0, 0]  # the key matches cell 0 ...
    inputs[2][0], inputs[3][0] = 40.0, 1.0  # ... sharply, and only content counts
    inputs[4][0] = [0.0, 1.0, 0.0]
    inputs[6][0] = [0.0, 0.7, 0.3, 0.0]
    return inputs, weights


def _assert_close_to(got, expected):
    np.testing.assert_allclose(got, expected, atol=1e-6 * max(1.0, np.abs(expected).max()))


def test_torch_autograd_through_addressing_matches_finite_differences():
    torch = pytest.importorskip("torch")

    def gradients(inputs, weights):
        leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in inputs]
        _loss(*leaves, torch.from_numpy(weights), torch.sum).backward()
        return [leaf.grad.numpy() for leaf in leaves]

    inputs, weights = _gradient_case()
    for got, expected in zip(gradients(inputs, weights), _numerical(inputs, weights), strict=True):
        _assert_close_to(got, expected)
    assert all(np.isfinite(g).all() for g in gradients(*_saturated_case()))


def test_jax_grad_through_addressing_matches_finite_differences(jax_x64):
    jnp = jax_x64.numpy
    inputs, weights = _gradient_case()
    loss = jax_x64.jit(
        jax_x64.grad(lambda *a: _loss(*a, jnp.asarray(weights), jnp.sum), argnums=tuple(range(7)))
    )
    grads = loss(*(jnp.asarray(a) for a in inputs))
    for got, expected in zip(grads, _numerical(inputs, weights), strict=True):
        _assert_close_to(np.asarray(got), expected)
    saturated, _ = _saturated_case()
    assert all(np.isfinite(np.asarray(g)).all() for g in loss(*(jnp.asarray(a) for a in saturated)))
