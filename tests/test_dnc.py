"""namcore.dnc on every backend of the xp fixture: values, conventions, errors, gradients."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function

from namcore.dnc import (
    allocation,
    backward,
    forward,
    link,
    read_weighting,
    usage,
    write,
    write_weighting,
)
from namcore.testing import assert_matches_numpy, numerical_gradient

for _f in (allocation, backward, forward, link, read_weighting, usage, write, write_weighting):
    lazy_xp_function(_f)

EPS = 1e-6


def np_allocation(u):
    """NumPy float64, one row at a time: walk the cells by ascending usage."""
    out = np.zeros_like(u)
    for index in np.ndindex(*u.shape[:-1]):
        floored, product = EPS + (1 - EPS) * u[index], 1.0
        for cell in np.argsort(u[index], kind="stable"):
            out[(*index, cell)] = (1 - floored[cell]) * product
            product *= floored[cell]
    return out


@pytest.mark.parametrize("dtype", ["float32"])  # float64 to 1e-12: property_tests/
def test_allocation_matches_numpy(xp, device, dtype):
    u = np.random.default_rng(0).uniform(size=(3, 6))
    u[0, 2] = u[0, 4]  # a tie
    u[1] = 0.0  # a fresh memory
    dt = getattr(xp, dtype)
    out = allocation(xp.asarray(u, dtype=dt, device=device))
    assert_matches_numpy(out, np_allocation(u), xp=xp, dtype=dt)


def test_allocation_takes_free_cells_in_index_order(xp, device):
    u = xp.asarray([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], device=device)
    expected = [[1 - EPS, EPS * (1 - EPS), EPS**2 * (1 - EPS)], [0.0, 1 - EPS, 0.0], [0.0] * 3]
    assert_matches_numpy(allocation(u), np.array(expected), xp=xp)


def test_long_products_underflow_to_zero_not_nan(xp, device):
    u = xp.zeros((200,), device=device)  # eps ** 199 is far below float64's range
    a = allocation(u)
    expected = np.zeros(200)
    expected[:3] = [1 - EPS, EPS * (1 - EPS), EPS**2 * (1 - EPS)]
    assert_matches_numpy(a, expected, xp=xp)


def test_usage_link_and_read_modes_follow_the_order_of_writes(xp, device):
    """Write cells 0, 2, 1 in turn; the forward links then read them in that order."""
    n = 3
    u, p = xp.zeros((n,), device=device), xp.zeros((n,), device=device)
    L = xp.zeros((n, n), device=device)
    no_reads = xp.zeros((1, n), device=device)
    keep = xp.zeros((1,), device=device)
    for cell in (0, 2, 1):
        w = xp.asarray(np.eye(n)[cell], device=device)
        u = usage(u, w, keep, no_reads)
        L, p = link(L, p, w)
    assert_matches_numpy(u, np.ones(n), xp=xp)
    assert_matches_numpy(L, np.array([[0, 0, 0], [0, 0, 1], [1, 0, 0]]), xp=xp, rtol=0)
    assert_matches_numpy(p, np.eye(n)[1], xp=xp)
    first, last = (xp.asarray(np.eye(n)[i], device=device) for i in (0, 1))
    after_first = forward(L, first)
    assert_matches_numpy(after_first, np.eye(n)[2], xp=xp)
    assert_matches_numpy(forward(L, after_first), np.eye(n)[1], xp=xp)
    before_last = backward(L, last)
    assert_matches_numpy(before_last, np.eye(n)[2], xp=xp)
    modes = xp.asarray([0.25, 0.5, 0.25], device=device)
    mixed = read_weighting(modes, before_last, first, after_first)
    assert_matches_numpy(mixed, np.array([0.5, 0.0, 0.5]), xp=xp)
    # freeing cell 2 after reading it fully makes it the one to allocate
    u = usage(
        u,
        xp.zeros((n,), device=device),
        xp.ones((1,), device=device),
        xp.asarray([[0.0, 0.0, 1.0]], device=device),
    )
    assert_matches_numpy(u, np.array([1.0, 1.0, 0.0]), xp=xp)
    a = allocation(u)
    assert_matches_numpy(a, np.array([0.0, 0.0, 1 - EPS]), xp=xp)
    ww = write_weighting(a, xp.asarray([1.0, 0.0, 0.0], device=device), 1.0, 0.5)
    assert_matches_numpy(ww, np.array([0.0, 0.0, 0.5 * (1 - EPS)]), xp=xp)
    memory = write(
        xp.ones((n, 2), device=device),
        ww,
        xp.ones((2,), device=device),
        xp.full((2,), 3.0, device=device),
    )
    assert_matches_numpy(memory, np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]), xp=xp, rtol=1e-5)


U3 = np.ones(3) / 3
ERRORS = [
    (lambda: usage(U3, U3, np.ones(2), np.ones((3, 3)) / 3), ValueError,
     r"`read_weights` has R \(read heads\) = 3"),
    (lambda: usage(U3, U3, np.ones(1), np.ones((1, 4)) / 4), ValueError,
     r"`read_weights` has N \(cells\) = 4"),
    (lambda: usage(U3, U3, np.ones(1), np.ones(3) / 3), ValueError,
     r"`read_weights` must have at least 2 dimension"),
    (lambda: usage(U3, U3, np.full(1, 1.5), np.ones((1, 3)) / 3), ValueError,
     r"`free_gates` must lie in \[0, 1\]"),
    (lambda: allocation(np.array([0.5, -0.1])), ValueError, r"`usage` must lie in \[0, 1\]"),
    (lambda: allocation(U3, eps=0.0), ValueError, r"`eps` must be a positive finite float"),
    (lambda: allocation(U3, eps=1.0), ValueError, r"`eps` must be below 1"),
    (lambda: link(np.zeros((3, 4)), U3, U3), ValueError, r"`link` has N \(rows\) = 3"),
    (lambda: link(np.zeros((3, 3)), np.ones(4) / 4, U3), ValueError,
     r"`precedence` has N \(cells\) = 4"),
    (lambda: forward(np.zeros((3, 3)), np.ones(2) / 2), ValueError,
     r"dnc.forward: `read_weights` has N \(cells\) = 2"),
    (lambda: read_weighting(np.ones(2) / 2, U3, U3, U3), ValueError,
     r"`modes` must have 3 entries"),
    (lambda: write_weighting(U3, U3, 2.0, 1.0), ValueError,
     r"`allocation_gate` must lie in \[0, 1\]"),
    (lambda: write(np.zeros((3, 2)), U3, np.full(2, 2.0), np.zeros(2)), ValueError,
     r"dnc.write: `erase` must lie in \[0, 1\]"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), ERRORS)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _step(u, w_prev, free, reads, L, p, w, weights, sum_):
    """A scalar of one step of memory management: usage -> allocation, and the links."""
    new_u = usage(u, w_prev, free, reads)
    new_link, new_p = link(L, p, w)
    return (
        sum_(weights[0] * allocation(new_u))
        + sum_(weights[1] * forward(new_link, new_p))
        + sum_(weights[2] * backward(new_link, w))
    )


def _gradient_case():
    rng = np.random.default_rng(5)
    n, r = 5, 2
    w_prev = rng.uniform(size=n) / n
    reads = rng.uniform(size=(r, n)) / n
    L = rng.uniform(0.01, 1, size=(n, n)) / n  # inside [0, 1]: differences step both ways
    inputs = [
        np.array([0.1, 0.8, 0.35, 0.6, 0.2]),  # distinct usages: the sort order is locally fixed
        w_prev,
        rng.uniform(0.1, 0.9, size=r),
        reads,
        L,
        rng.uniform(size=n) / n,
        rng.uniform(size=n) / n,
    ]
    return inputs, rng.normal(size=(3, n))


def _numerical(inputs, weights):
    def f(i, x):
        values = list(inputs)
        values[i] = x
        return float(_step(*values, weights, np.sum))

    return [numerical_gradient(lambda x, i=i: f(i, x), a) for i, a in enumerate(inputs)]


def _assert_close_to(got, expected):
    np.testing.assert_allclose(got, expected, atol=1e-6 * max(1.0, np.abs(expected).max()))


#: Usage at the corners (zeros, ones, ties): the gradient of allocation must stay finite.
CORNER = np.array([0.0, 1.0, 0.0, 0.5, 0.5])


def test_torch_autograd_through_allocation_and_links():
    torch = pytest.importorskip("torch")
    inputs, weights = _gradient_case()
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in inputs]
    _step(*leaves, torch.from_numpy(weights), torch.sum).backward()
    for leaf, expected in zip(leaves, _numerical(inputs, weights), strict=True):
        _assert_close_to(leaf.grad.numpy(), expected)
    corner = torch.tensor(CORNER, requires_grad=True)
    torch.sum(torch.from_numpy(weights[0]) * allocation(corner)).backward()
    assert torch.isfinite(corner.grad).all()


def test_jax_grad_through_allocation_and_links(jax_x64):
    jnp = jax_x64.numpy
    inputs, weights = _gradient_case()
    w = jnp.asarray(weights)
    gradient = jax_x64.jit(
        jax_x64.grad(lambda *a: _step(*a, w, jnp.sum), argnums=tuple(range(len(inputs))))
    )
    grads = gradient(*(jnp.asarray(a) for a in inputs))
    for got, expected in zip(grads, _numerical(inputs, weights), strict=True):
        _assert_close_to(np.asarray(got), expected)
    corner = jax_x64.grad(lambda u: jnp.sum(w[0] * allocation(u)))(jnp.asarray(CORNER))
    assert np.isfinite(np.asarray(corner)).all()
