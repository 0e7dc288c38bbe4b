"""namcore.ham: input errors, in-place writes, and the one-leaf tree."""

from __future__ import annotations

import numpy as np
import pytest

from namcore import ham


def add(left, right):
    return left + right


def test_leaves_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="leaves axis has size 3; expected a power of two"):
        ham.build(np.zeros((3, 2)), add)
    with pytest.raises(ValueError, match="tree nodes axis has size 6"):
        ham.hard_access(np.zeros((6, 2)), np.zeros(1), lambda h, c: h[..., 0])


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_inplace_write_updates_the_given_tree(library):
    leaves = np.arange(16.0).reshape(2, 4, 2)
    if library == "torch":
        torch = pytest.importorskip("torch")
        leaves = torch.from_numpy(leaves)
        to = np.asarray
        as_array = torch.from_numpy
    else:
        to = as_array = np.asarray
    tree = ham.build(leaves, add)
    before = np.array(to(tree), copy=True)
    leaf, value = as_array(np.array([3, 0])), as_array(np.ones((2, 2)))
    copied = ham.write(tree, leaf, value, add)
    np.testing.assert_array_equal(to(tree), before)  # the default never modifies
    same = ham.write(tree, leaf, value, add, inplace=True)
    np.testing.assert_array_equal(to(tree), to(copied))
    np.testing.assert_array_equal(to(same), to(copied))
    assert not np.array_equal(to(tree), before)


def test_one_leaf_tree():
    tree = ham.build(np.array([[1.0, 2.0]]), add)
    access = ham.hard_access(tree, np.zeros(3), lambda h, c: h[..., 0])
    assert int(access.leaf) == 0 and access.nodes.shape == (0,) and float(access.log_prob) == 0
    np.testing.assert_array_equal(access.value, [1.0, 2.0])
    weights, read = ham.soft_access(tree, np.zeros(3), lambda h, c: h[..., 0])
    np.testing.assert_array_equal(weights, [1.0])
    np.testing.assert_array_equal(read, [1.0, 2.0])
    np.testing.assert_array_equal(
        ham.write(tree, np.array(0), np.array([5.0, 6.0]), add), [[5.0, 6.0]]
    )


def test_soft_write_moves_each_leaf_by_its_weight():
    tree = ham.build(np.zeros((4, 1)), add)
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    new = ham.soft_write(tree, weights, np.ones((4, 1)), add)
    np.testing.assert_allclose(new[3:, 0], weights)
    np.testing.assert_allclose(new[0, 0], 1.0)
