"""Properties of the HAM tree memory (``namcore.ham``) on every backend of ``xp``.

JOIN and SEARCH are small fixed networks written with ``xp``; the oracles are NumPy
float64 computations over the heap layout, node by node.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from prop_oracles import assert_close, on
from prop_strategies import batch_shapes, dims

from namcore import ham
from namcore.testing import to_numpy


def mlp_join(xp, w):
    """JOIN(h_l, h_r) = tanh([h_l : h_r] W): the paper's one-layer form."""
    return lambda left, right: xp.tanh(xp.matmul(xp.concat([left, right], axis=-1), w))


def np_join(w):
    return lambda left, right: np.tanh(np.concatenate([left, right], axis=-1) @ w)


def mlp_search(xp, u):
    """SEARCH(h, c) = sigmoid(<[h : c], u>)."""

    def search(h, c):
        hc = xp.concat([h, xp.broadcast_to(c, (*h.shape[:-1], c.shape[-1]))], axis=-1)
        return 1 / (1 + xp.exp(-xp.sum(hc * u, axis=-1)))

    return search


@st.composite
def trees(draw):
    """(leaves (..., n, d), JOIN weights (2d, d), SEARCH weights (d + l,), c (..., l))."""
    levels = draw(st.integers(0, 4))
    batch = draw(batch_shapes(max_dims=2, max_side=2))
    d, l_ = draw(dims(1, 4)), draw(dims(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    leaves = rng.standard_normal((*batch, 2**levels, d))
    return (
        leaves,
        rng.standard_normal((2 * d, d)) / np.sqrt(d),
        rng.standard_normal(d + l_),
        rng.standard_normal((*batch, l_)),
    )


def np_tree(leaves, join):
    """The oracle: inner nodes filled one by one in heap order, from the bottom."""
    n = leaves.shape[-2]
    tree = np.concatenate(
        [np.zeros((*leaves.shape[:-2], n - 1, leaves.shape[-1])), leaves], axis=-2
    )
    for i in reversed(range(n - 1)):
        tree[..., i, :] = join(tree[..., 2 * i + 1, :], tree[..., 2 * i + 2, :])
    return tree


@given(trees())
def test_every_inner_node_is_the_join_of_its_children(xp, device, case):
    leaves, w, _, _ = case
    tree = ham.build(on(xp, device, leaves), mlp_join(xp, on(xp, device, w)))
    assert_close(tree, np_tree(leaves, np_join(w)), xp=xp, scale=1.0)


@given(trees(), st.data())
def test_write_changes_the_leaf_and_its_ancestors_only(xp, device, case, data):
    leaves, w, _, _ = case
    batch, n, d = leaves.shape[:-2], leaves.shape[-2], leaves.shape[-1]
    leaf = np.asarray(
        data.draw(
            st.lists(
                st.integers(0, n - 1), min_size=int(np.prod(batch)), max_size=int(np.prod(batch))
            )
        )
    ).reshape(batch)
    value = np.random.default_rng(0).standard_normal((*batch, d))
    before = np_tree(leaves, np_join(w))
    tree = ham.build(on(xp, device, leaves), mlp_join(xp, on(xp, device, w)))
    after = ham.write(
        tree, on(xp, device, leaf), on(xp, device, value), mlp_join(xp, on(xp, device, w))
    )
    expected_leaves = leaves.copy()
    for index in np.ndindex(*batch):
        expected_leaves[index][leaf[index]] = value[index]
    expected = np_tree(expected_leaves, np_join(w))
    assert_close(after, expected, xp=xp, scale=1.0)
    got, built = to_numpy(after), to_numpy(tree)
    for index in np.ndindex(*batch):
        node, path = leaf[index] + n - 1, set()
        while True:
            path.add(node)
            if node == 0:
                break
            node = (node - 1) // 2
        untouched = [i for i in range(2 * n - 1) if i not in path]
        np.testing.assert_array_equal(got[index][untouched], built[index][untouched])
    assert_close(tree, before, xp=xp, scale=1.0)  # the input tree is unchanged


@given(trees())
def test_soft_access_weights_sum_to_one_and_read_their_mean(xp, device, case):
    leaves, w, u, c = case
    tree = ham.build(on(xp, device, leaves), mlp_join(xp, on(xp, device, w)))
    weights, read = ham.soft_access(tree, on(xp, device, c), mlp_search(xp, on(xp, device, u)))
    a = to_numpy(weights)
    assert a.shape == leaves.shape[:-1] and (a >= 0).all()
    assert_close(xp.sum(weights, axis=-1), np.ones(leaves.shape[:-2]), xp=xp, scale=1.0)
    assert_close(read, np.einsum("...n,...nd->...d", a, leaves), xp=xp, scale=1.0)


@given(trees(), st.booleans())
def test_hard_access_path_and_log_probability(xp, device, case, sample):
    leaves, w, u, c = case
    n = leaves.shape[-2]
    levels = int(np.log2(n))
    tree_np = np_tree(leaves, np_join(w))
    uniform = np.random.default_rng(1).uniform(size=(*leaves.shape[:-2], levels))
    tree = ham.build(on(xp, device, leaves), mlp_join(xp, on(xp, device, w)))
    access = ham.hard_access(
        tree,
        on(xp, device, c),
        mlp_search(xp, on(xp, device, u)),
        uniform=on(xp, device, uniform) if sample else None,
    )
    leaf, nodes = to_numpy(access.leaf), to_numpy(access.nodes)
    assert nodes.shape == (*leaves.shape[:-2], levels)
    log_prob = np.zeros(leaves.shape[:-2])
    for index in np.ndindex(*leaves.shape[:-2]):
        node = 0
        for level in range(levels):
            hc = np.concatenate([tree_np[index][node], c[index]])
            p = 1 / (1 + np.exp(-hc @ u))
            right = uniform[index][level] < p if sample else p > 0.5
            log_prob[index] += np.log(p if right else 1 - p)
            assert nodes[index][level] == node
            node = 2 * node + 1 + int(right)
        assert leaf[index] == node - (n - 1)
    assert_close(access.log_prob, log_prob, xp=xp, scale=1.0)
    assert_close(
        access.value,
        np.take_along_axis(leaves, leaf[..., None, None], axis=-2)[..., 0, :],
        xp=xp,
        scale=1.0,
    )


@given(st.integers(0, 5), st.data())
def test_saturated_search_is_binary_search(xp, device, levels, data):
    """With 0/1 SEARCH over sorted keys, hard access finds what ``searchsorted`` finds."""
    n = 2**levels
    keys = np.sort(
        np.asarray(
            data.draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)), dtype=np.float64
        )
    )
    queries = np.asarray(
        data.draw(st.lists(st.integers(-60, 60), min_size=1, max_size=4)), dtype=np.float64
    )

    # a node holds (largest key below it, largest key of its left subtree)
    def join(left, right):
        return xp.stack([xp.maximum(left[..., 0], right[..., 0]), left[..., 0]], axis=-1)

    def search(h, c):
        return xp.astype(c[..., 0] > h[..., 1], h.dtype)

    leaves = np.broadcast_to(np.stack([keys, keys], axis=-1), (len(queries), n, 2))
    tree = ham.build(on(xp, device, np.ascontiguousarray(leaves)), join)
    access = ham.hard_access(tree, on(xp, device, queries[:, None]), search)
    expected = np.minimum(np.searchsorted(keys, queries, side="left"), n - 1)
    np.testing.assert_array_equal(to_numpy(access.leaf), expected)
    assert_close(access.log_prob, np.zeros(len(queries)), xp=xp, scale=1.0)
