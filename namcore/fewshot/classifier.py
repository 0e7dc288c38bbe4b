r"""The cosine classifier and the NAM classifier, written once against the array API.

Every function takes a flat parameter mapping (names as in :func:`init_params`) and
arrays of one library, so NumPy, PyTorch, JAX and CuPy run the same code. Episodes
are batched: ``B`` episodes, ``S`` support examples, ``Q`` queries, ``C`` base and
``N`` novel classes, ``d`` feature dimensions.

- Features: a two-layer MLP on flattened pixels, ReLU between the layers (the
  standard has no convolution, so this stands in for the paper's ConvNet).
- Cosine classifier (the baseline): ``scale * cos(feature, w_c)``; the novel weights
  are the means of the unit support features of each class.
- NAM classifier: the classifier matrix is a NAM memory. Each support example
  ``(x_n, y_n)`` writes its one-hot label under its unit feature into the novel
  memory, :math:`W_N \leftarrow WR(W_N, \mu(x_n), y_n, p_w(x_n), 0)`, and erases its
  direction from the base weights,
  :math:`W_B \leftarrow WR(W_B, \mu(x_n), 0, 0, p_e(x_n))`, through the backend's
  :func:`namcore.write`. ``p_w`` and ``p_e`` come from small MLPs on the unit feature.

Examples
--------
>>> import numpy as np
>>> params = init_params(n_pixels=16, hidden=8, dim=4, n_base=3, gate_hidden=4, seed=0)
>>> rng = np.random.default_rng(0)
>>> support = rng.random((2, 5, 4)).astype(np.float32)   # B=2 episodes, 5 examples
>>> onehot = np.eye(5, dtype=np.float32)[None].repeat(2, axis=0)  # 5-way 1-shot
>>> queries = rng.random((2, 7, 4)).astype(np.float32)
>>> base = np.broadcast_to(params["base.w"], (2, 3, 4))
>>> episode_scores(params, "nam", base, support, onehot, queries).shape
(2, 7, 8)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from namcore import backends as _backends
from namcore._agnostic.memory import EPS
from namcore._typing import Array, Namespace
from namcore.models.layers import dense, namespace_of, relu, sigmoid

__all__ = [
    "METHODS",
    "average_novel",
    "cosine_scores",
    "cross_entropy",
    "episode_scores",
    "features",
    "gates",
    "init_params",
    "nam_memory",
]

Params = Mapping[str, Any]

#: The two classifiers compared: the baseline's feature averaging and NAM's write/erase.
METHODS = ("cosine", "nam")


def _dense_init(
    rng: np.random.Generator, n_in: int, n_out: int, prefix: str
) -> dict[str, np.ndarray]:
    bound = 1.0 / math.sqrt(n_in)
    return {
        f"{prefix}.w": rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32),
        f"{prefix}.b": np.zeros(n_out, dtype=np.float32),
    }


def init_params(
    *, n_pixels: int, hidden: int, dim: int, n_base: int, gate_hidden: int, seed: int
) -> dict[str, np.ndarray]:
    """NumPy float32 parameters of both stages.

    ``feat.0``/``feat.1`` (the feature MLP), ``base.w`` (C, d) and ``scale`` (stage 1);
    ``gen.write.*`` and ``gen.erase.*`` (the ``p_w`` and ``p_e`` MLPs, d -> gate_hidden
    -> 1) and ``gen.scale`` (stage 2). The scales start at 10, as in Gidaris &
    Komodakis; the erase MLP's output bias starts at -1 (``p_e`` about 0.27).
    """
    rng = np.random.default_rng((seed, 11))
    params = {
        **_dense_init(rng, n_pixels, hidden, "feat.0"),
        **_dense_init(rng, hidden, dim, "feat.1"),
        "base.w": rng.normal(0.0, 1.0 / math.sqrt(dim), (n_base, dim)).astype(np.float32),
        "scale": np.array(10.0, dtype=np.float32),
        **_dense_init(rng, dim, gate_hidden, "gen.write.0"),
        **_dense_init(rng, gate_hidden, 1, "gen.write.1"),
        **_dense_init(rng, dim, gate_hidden, "gen.erase.0"),
        **_dense_init(rng, gate_hidden, 1, "gen.erase.1"),
        "gen.scale": np.array(10.0, dtype=np.float32),
    }
    params["gen.erase.1.b"] = np.full(1, -1.0, dtype=np.float32)
    return params


def _unit(x: Array, xp: Namespace) -> Any:
    return _backends.for_namespace(xp).unit(x, -1, EPS, xp)


def features(params: Params, x: Array) -> Any:
    """Features (..., d) of flattened images (..., pixels): ``relu(x W0 + b0) W1 + b1``.

    The last layer is linear: features of either sign make unrelated images' cosines
    small (after a final ReLU every pair of features has a positive cosine).
    """
    xp = namespace_of(x)
    return dense(params, "feat.1", relu(dense(params, "feat.0", x, xp), xp), xp)


def cosine_scores(queries: Array, weights: Array, scale: Array | float) -> Any:
    """``scale * cos(query, w)``: queries (..., Q, d), weights (..., K, d) -> (..., Q, K)."""
    xp = namespace_of(queries)
    w = _unit(weights, xp)
    return scale * xp.matmul(_unit(queries, xp), xp.matrix_transpose(w))


def cross_entropy(logits: Array, onehot: Array) -> Any:
    """Mean cross-entropy of ``logits`` (..., K) against one-hot targets (..., K)."""
    xp = namespace_of(logits)
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    logp = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -xp.mean(xp.sum(onehot * logp, axis=-1))


def average_novel(support: Array, onehot: Array) -> Any:
    """The baseline's novel weights (B, N, d): the mean unit support feature of each class."""
    xp = namespace_of(support)
    total = xp.matmul(xp.matrix_transpose(onehot), _unit(support, xp))
    count = xp.sum(onehot, axis=-2)[..., None]
    return total / xp.maximum(count, xp.ones_like(count))


def gates(params: Params, support: Array) -> tuple[Any, Any]:
    """``p_w`` and ``p_e`` (B, S) of each support feature: sigmoid MLPs on the unit feature."""
    xp = namespace_of(support)
    k = _unit(support, xp)
    out = []
    for name in ("write", "erase"):
        h = relu(dense(params, f"gen.{name}.0", k, xp), xp)
        out.append(sigmoid(dense(params, f"gen.{name}.1", h, xp)[..., 0], xp))
    return out[0], out[1]


def nam_memory(params: Params, base: Array, support: Array, onehot: Array) -> tuple[Any, Any]:
    """The NAM classifier's weights after writing an episode's support set.

    Parameters
    ----------
    params : mapping
        Holds the ``gen.write`` and ``gen.erase`` MLPs.
    base : array, shape (B, C, d) or (C, d)
        Base-class weights (each row is normalised before the erases).
    support : array, shape (B, S, d)
        Support features (keys: their unit vectors).
    onehot : array, shape (B, S, N)
        One-hot novel labels (values).

    Returns
    -------
    base, novel : arrays, shapes (B, C, d) and (B, N, d)
        ``base``: the unit base weights after ``S`` erases; ``novel``: the memory of
        the ``S`` writes. Example ``n`` is written after examples ``0..n-1``, with
        :math:`WR(M, k, v, p_w, p_e) = M + p_w v k^T - p_e M k k^T`.
    """
    xp = namespace_of(support)
    backend = _backends.for_namespace(xp)
    p_write, p_erase = gates(params, support)
    keys = _unit(support, xp)
    memory_b = _unit(base, xp)
    memory_n = xp.zeros_like(onehot[:, 0, :, None] * keys[:, :1, :])  # (B, N, d)
    no_value = xp.zeros_like(memory_b[..., 0])  # the erases write nothing
    for n in range(onehot.shape[1]):
        k = keys[:, n, :]
        memory_n = backend.write(memory_n, k, onehot[:, n, :], p_write[:, n], 0.0, True, EPS, xp)
        memory_b = backend.write(memory_b, k, no_value, 0.0, p_erase[:, n], True, EPS, xp)
    return memory_b, memory_n


def episode_scores(
    params: Params,
    method: str,
    base: Array,
    support: Array,
    onehot: Array,
    queries: Array,
    *,
    scale: Array | float | None = None,
) -> Any:
    """Scores (B, Q, C + N) of the queries over the base and then the novel classes.

    Parameters
    ----------
    params : mapping
        The parameters (``gen.*`` for ``"nam"``).
    method : {"cosine", "nam"}
        Feature averaging, or NAM's write/erase.
    base : array, shape (B, C, d)
        Base-class weights of each episode.
    support, onehot, queries : arrays
        Support features (B, S, d), their one-hot novel labels (B, S, N) and the query
        features (B, Q, d).
    scale : float or array, optional
        Default: ``params["scale"]`` for ``"cosine"``, ``params["gen.scale"]`` for
        ``"nam"``.
    """
    xp = namespace_of(support)
    if method == "cosine":
        weights = xp.concat([base, average_novel(support, onehot)], axis=-2)
        default = params["scale"]
    elif method == "nam":
        weights = xp.concat(list(nam_memory(params, base, support, onehot)), axis=-2)
        default = params["gen.scale"]
    else:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return cosine_scores(queries, weights, default if scale is None else scale)
