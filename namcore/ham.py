r"""Hierarchical Attentive Memory (HAM; Andrychowicz & Kurach, arXiv 1602.03218).

The memory cells are the ``n`` leaves of a full binary tree (``n`` a power of two).
Every inner node summarises its children, ``h_e = JOIN(h_left, h_right)``, so one
access walks from the root to a leaf in ``log2 n`` decisions instead of attending to
all ``n`` cells. The tree is one array ``(..., 2n - 1, d)`` in heap layout: node ``i``
has children ``2i + 1`` and ``2i + 2``, the root is node 0 and leaf ``j`` is node
``n - 1 + j``.

The four small networks of the paper are the caller's, passed as functions of arrays:

- ``join(h_left, h_right) -> h`` (..., d) each: an inner node from its children;
- ``search(h, c) -> p`` (...,): probability of going to the **right** child of a node
  ``h`` (..., d) given the controller state ``c`` (..., l);
- ``write(h, c) -> h_new``: the gated leaf update (used by the models; here the new
  leaf value is simply passed to :func:`write`).

EMBED is the caller's too: :func:`build` takes the embedded leaves.

Access comes in two forms:

- **hard** (:func:`hard_access`, :func:`write`): one root-to-leaf path, sampled from the
  branch probabilities (training, with REINFORCE) or greedy (evaluation), and a write
  that recomputes only the leaf's ancestors: ``O(log n)`` array work per access;
- **soft** (:func:`soft_access`, :func:`soft_write`; the paper's DHAM): every leaf is
  weighted by the product of the branch probabilities on its path; ``O(n)``.

Everything uses the core array API standard only. Gathers use ``take`` on the
flattened tree. Functional row updates use ``array_api_extra.at``; libraries without
integer-array assignment (array-api-strict, ndonnx) fall back to a masked ``where``,
which is ``O(n)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from namcore import _compat
from namcore._typing import Array, Namespace

__all__ = [
    "HardAccess",
    "Join",
    "Search",
    "build",
    "depth",
    "hard_access",
    "leaf_weights",
    "soft_access",
    "soft_write",
    "write",
]

#: ``join(h_left, h_right) -> h``: an inner node from its two children.
Join = Callable[[Array, Array], Array]
#: ``search(h, c) -> p_right``: the probability of going to the right child.
Search = Callable[[Array, Array], Array]


def depth(tree_or_leaves: Array, *, leaves: bool = False) -> int:
    """``log2 n`` of a tree ``(..., 2n - 1, d)`` (or of leaves ``(..., n, d)``)."""
    size = tree_or_leaves.shape[-2]
    n = size if leaves else (size + 1) // 2
    if n < 1 or n & (n - 1) or (not leaves and 2 * n - 1 != size):
        what = "leaves" if leaves else "tree nodes"
        raise ValueError(
            f"HAM: {what} axis has size {size}; expected "
            f"{'a power of two' if leaves else '2n - 1 with n a power of two'}"
            " (pad the inputs to a power of two)"
        )
    return n.bit_length() - 1


def build(leaves: Array, join: Join) -> Array:
    """The tree ``(..., 2n - 1, d)`` over ``leaves`` ``(..., n, d)``: every inner node is JOIN.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ham
    >>> tree = ham.build(np.array([[1.0], [2.0], [3.0], [4.0]]), lambda a, b: a + b)
    >>> tree[:, 0].tolist()            # root, its children, then the leaves
    [10.0, 3.0, 7.0, 1.0, 2.0, 3.0, 4.0]
    """
    xp = _compat.array_namespace(leaves)
    levels = [leaves]
    for _ in range(depth(leaves, leaves=True)):
        below = levels[0]
        levels.insert(0, join(below[..., 0::2, :], below[..., 1::2, :]))
    return xp.concat(levels, axis=-2) if len(levels) > 1 else leaves


def leaf_weights(tree: Array, c: Array, search: Search) -> Array:
    """Soft-access weights ``(..., n)``: the product of branch probabilities per path.

    They sum to one over the leaves. ``search`` is evaluated on every inner node at
    once (``c`` gets a node axis).
    """
    xp = _compat.array_namespace(tree, c)
    levels = depth(tree)
    n = 2**levels
    weights = xp.ones((*tree.shape[:-2], 1), dtype=tree.dtype)
    if levels == 0:
        return weights
    p_right = search(tree[..., : n - 1, :], c[..., None, :])
    for level in range(levels):
        p = p_right[..., 2**level - 1 : 2 ** (level + 1) - 1]
        weights = xp.stack([weights * (1 - p), weights * p], axis=-1)
        weights = xp.reshape(weights, (*weights.shape[:-2], 2 ** (level + 1)))
    return weights


def soft_access(tree: Array, c: Array, search: Search) -> tuple[Array, Array]:
    """DHAM read: ``(weights (..., n), read (..., d))``, the read being ``Σ_i a_i h_i``."""
    xp = _compat.array_namespace(tree, c)
    n = 2 ** depth(tree)
    weights = leaf_weights(tree, c, search)
    read = xp.matmul(weights[..., None, :], tree[..., n - 1 :, :])[..., 0, :]
    return weights, read


def soft_write(tree: Array, weights: Array, new_leaves: Array, join: Join) -> Array:
    """DHAM write: ``h_i := a_i new_i + (1 - a_i) h_i`` for every leaf, then rebuild."""
    n = 2 ** depth(tree)
    leaves = tree[..., n - 1 :, :]
    a = weights[..., None]
    return build(a * new_leaves + (1 - a) * leaves, join)


@dataclass(frozen=True)
class HardAccess:
    """The result of :func:`hard_access`.

    Attributes
    ----------
    leaf : int array (...,)
        Index of the leaf reached, in ``0 .. n - 1``.
    nodes : int array (..., log2 n)
        The inner nodes visited, root first.
    right : bool array (..., log2 n)
        The branch taken at each of them.
    p_right : array (..., log2 n)
        SEARCH's probability of going right at each of them (for an entropy bonus).
    log_prob : array (...,)
        Log-probability of the path under the branch probabilities (for REINFORCE).
    value : array (..., d)
        The leaf's content.
    """

    leaf: Array
    nodes: Array
    right: Array
    p_right: Array
    log_prob: Array
    value: Array


def _flat(
    tree: Array, xp: Namespace, copy: bool | None = None
) -> tuple[Array, Array, tuple[int, ...]]:
    """The tree as rows ``(B * (2n - 1), d)``, each batch element's offset, the batch.

    Indices use the library's default integer dtype (``arange``'s), so that JAX
    without 64-bit mode gets int32 rather than a warning.
    """
    batch = tuple(tree.shape[:-2])
    size, count = tree.shape[-2], math.prod(batch)
    offsets = xp.reshape(xp.arange(count) * size, batch)
    return xp.reshape(tree, (count * size, tree.shape[-1]), copy=copy), offsets, batch


def _rows(flat: Array, index: Array, xp: Namespace) -> Array:
    """Rows ``flat[index]`` for an int array ``index`` of any shape: ``(*index.shape, d)``."""
    picked = xp.take(flat, xp.reshape(index, (-1,)), axis=0)
    return xp.reshape(picked, (*index.shape, flat.shape[-1]))


def hard_access(
    tree: Array, c: Array, search: Search, *, uniform: Array | None = None, eps: float = 1e-12
) -> HardAccess:
    """Walk from the root to one leaf: ``log2 n`` SEARCH calls on single nodes.

    Parameters
    ----------
    tree : array (..., 2n - 1, d)
    c : array (..., l)
        Controller state.
    search : callable
        ``search(h (..., d), c (..., l)) -> p_right (...,)``.
    uniform : array (..., log2 n), optional
        Uniform [0, 1) samples: at level ``k`` go right when ``uniform[..., k] < p``
        (sampling, for training). Default: greedy, right when ``p > 0.5``.
    eps : float
        Floor of the branch probabilities inside the log.
    """
    xp = _compat.array_namespace(tree, c)
    levels = depth(tree)
    flat, offsets, batch = _flat(tree, xp)
    node = xp.zeros_like(offsets)
    log_prob = xp.zeros(batch, dtype=tree.dtype)
    nodes, turns, probs = [], [], []
    for level in range(levels):
        p = search(_rows(flat, offsets + node, xp), c)
        right = p > 0.5 if uniform is None else uniform[..., level] < p
        taken = xp.where(right, p, 1 - p)
        log_prob = log_prob + xp.log(xp.clip(taken, min=eps))
        nodes.append(node)
        turns.append(right)
        probs.append(p)
        node = 2 * node + 1 + xp.astype(right, node.dtype)
    n = 2**levels
    empty = (*batch, 0)
    return HardAccess(
        leaf=node - (n - 1),
        nodes=xp.stack(nodes, axis=-1) if nodes else xp.zeros(empty, dtype=offsets.dtype),
        right=xp.stack(turns, axis=-1) if turns else xp.zeros(empty, dtype=xp.bool),
        p_right=xp.stack(probs, axis=-1) if probs else xp.zeros(empty, dtype=tree.dtype),
        log_prob=log_prob,
        value=_rows(flat, offsets + node, xp),
    )


def _set_rows(flat: Array, index: Array, rows: Array, xp: Namespace, assign: bool) -> Array:
    """``flat`` with rows ``index`` (B,) replaced by ``rows`` (B, d), functionally.

    ``assign``: whether the library has integer-array assignment (see
    :attr:`namcore.backends.Backend.integer_index_assignment`).
    """
    if not assign:  # a masked where over all rows (O(n))
        positions = xp.astype(xp.arange(flat.shape[0]), index.dtype)
        hit = positions[:, None] == index[None, :]  # (N, B)
        scattered = xp.matmul(xp.astype(hit, flat.dtype), rows)  # (N, d)
        return xp.where(xp.any(hit, axis=1)[:, None], scattered, flat)
    import array_api_extra as xpx

    return xpx.at(flat, index).set(rows, copy=None)  # in place on our own copy; JAX: functional


def write(tree: Array, leaf: Array, value: Array, join: Join, *, inplace: bool = False) -> Array:
    """The tree with leaf ``leaf`` (...,) set to ``value`` (..., d) and its ancestors rejoined.

    Only the ``log2 n`` ancestors of the leaf are recomputed (one JOIN each); every
    other node is left as it was.

    Parameters
    ----------
    inplace : bool
        ``False`` (default): ``tree`` is not modified; the rows are updated in one copy
        of it, which costs a copy of the whole tree. ``True``: update ``tree`` itself
        where the library allows it (NumPy, PyTorch, CuPy, Dask), so that a write
        touches ``O(log n)`` rows only. JAX updates functionally either way (in place
        under ``jax.jit`` when the tree's buffer is donated).
    """
    from namcore import backends

    xp = _compat.array_namespace(tree, value)
    assign = backends.for_namespace(xp).integer_index_assignment
    levels = depth(tree)
    n = 2**levels
    flat, offsets, batch = _flat(tree, xp, copy=None if inplace else True)
    node = xp.reshape(leaf + (n - 1), batch) + offsets
    current = xp.reshape(xp.astype(value, tree.dtype), (-1, tree.shape[-1]))
    local = xp.reshape(leaf + (n - 1), (-1,))
    base = xp.reshape(offsets, (-1,))
    flat = _set_rows(flat, xp.reshape(node, (-1,)), current, xp, assign)
    for _ in range(levels):
        parent = (local - 1) // 2
        left = _rows(flat, base + 2 * parent + 1, xp)
        right = _rows(flat, base + 2 * parent + 2, xp)
        current = join(left, right)
        flat = _set_rows(flat, base + parent, current, xp, assign)
        local = parent
    return xp.reshape(flat, tree.shape)
