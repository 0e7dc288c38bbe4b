r"""The HAM model: a controller with a Hierarchical Attentive Memory, one access per token.

The memory is a :mod:`namcore.ham` tree with ``n`` leaves of width ``k``. At step
``t`` (one input token ``x_t``, embedding ``e_t``):

.. math::

    c_t &= \mathrm{LSTM}([e_t : r_{t-1}],\ c_{t-1})
        \quad (\text{or } c_t = e_t \text{ without a controller}) \\
    a_t &= \text{the leaf reached from the root, going right at node } h
        \text{ with } \mathrm{SEARCH}(h, c_t) = \sigma(W_S [h : c_t] + b_S) \\
    r_t &= h_{a_t}, \qquad
    y_t = W_o\,\mathrm{ReLU}(W_y [c_t : r_t] + b_y) + b_o \\
    h_{a_t} &\leftarrow \mathrm{WRITE}(r_t, c_t) = T\,H + (1 - T)\,r_t, \quad
        H = \sigma(W_H [r_t : c_t] + b_H),\ T = \sigma(w_T [r_t : c_t] + b_T)

and the ancestors of :math:`a_t` are recomputed with
:math:`\mathrm{JOIN}(h_l, h_r) = \mathrm{ReLU}(W_J [h_l : h_r] + b_J)`. The leaves
start as :math:`\mathrm{EMBED}(e_i) = \mathrm{ReLU}(W_E e_i + b_E)` of the inputs
(``EMBED(0)`` past the input and at padding), or as one learned vector.

Design choices where the HAM paper's text was not available (documented in
``docs/ham.md``): the controller state that drives SEARCH and WRITE is the one
*after* reading the current token, so that a query token can steer its own access;
the read feeds the output at the same step and the controller at the next; the
networks are one layer each, with biases.

With ``access="hard"`` a plain forward pass descends greedily (right when
``SEARCH > 1/2``); passing ``uniform`` samples every branch instead (right when
``uniform < SEARCH``), and ``return_policy=True`` also returns what REINFORCE needs
(:func:`namcore.models.reinforce.reinforce_loss`). ``access="soft"`` is DHAM: the
read is the leaves' mean under the path probabilities, and every leaf is written in
proportion to its weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from namcore import ham
from namcore._typing import Array, Namespace

from . import cells
from . import layers as L
from . import spec as P
from .config import HAMConfig

__all__ = ["Policy", "forward", "specs", "tree_size"]


@dataclass(frozen=True)
class Policy:
    """What a hard-access forward pass returns for REINFORCE, all batch-major.

    Attributes
    ----------
    log_prob : array (B, L)
        Log-probability of the path taken at each step.
    entropy : array (B, L)
        Sum of the Bernoulli entropies of the branch decisions on that path.
    controller : array (B, L, d_model)
        The controller state ``c_t`` that chose the path (the learned baseline's input).
    """

    log_prob: Any
    entropy: Any
    controller: Any


def specs(config: HAMConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of a HAM model."""
    d, k = config.d_model, config.node_size
    out = P.embedding("embed", config.vocab_size, d)
    if config.memory == "inputs":
        out |= P.dense("ham.embed", d, k)
    else:
        out["ham.empty"] = P.Spec((k,), "uniform", 1.0)
    out |= P.dense("ham.join", 2 * k, k)
    out |= P.dense("ham.search", k + d, 1)
    out |= P.dense("ham.write.value", k + d, k)
    out |= P.dense("ham.write.gate", k + d, 1)
    if config.controller == "lstm":
        out |= P.recurrent("controller", "lstm", d + k, d)
    if config.access == "hard":
        out |= P.dense("baseline", d, 1)
    out |= P.dense("head.hidden", d + k, d)
    out |= P.dense("head.out", d, config.output_size)
    return out


def tree_size(config: HAMConfig, length: int) -> int:
    """Number of leaves for inputs of ``length`` tokens (``ValueError`` if they do not fit)."""
    n = config.memory_size or 1 << max(length - 1, 0).bit_length()
    if config.memory == "inputs" and n < length:
        raise ValueError(
            f"HAM: memory_size={n} leaves cannot hold an input of {length} "
            "tokens (memory='inputs' puts one token per leaf)"
        )
    return n


def _pair(params: L.Params, prefix: str, h: Array, c: Array, xp: Namespace) -> Any:
    """``[h : c] @ w + b`` with ``h`` and ``c`` broadcast against each other."""
    w = params[f"{prefix}.w"]
    k = h.shape[-1]
    return xp.matmul(h, w[:k, :]) + xp.matmul(c, w[k:, :]) + params[f"{prefix}.b"]


class _Networks:
    """JOIN, SEARCH and WRITE of one parameter set, as :mod:`namcore.ham` expects them."""

    def __init__(self, params: L.Params, xp: Namespace) -> None:
        self.params, self.xp = params, xp

    def join(self, left: Array, right: Array) -> Any:
        xp = self.xp
        return L.relu(_pair(self.params, "ham.join", left, right, xp), xp)

    def search(self, h: Array, c: Array) -> Any:
        return L.sigmoid(_pair(self.params, "ham.search", h, c, self.xp), self.xp)[..., 0]

    def write(self, h: Array, c: Array) -> Any:
        xp = self.xp
        value = L.sigmoid(_pair(self.params, "ham.write.value", h, c, xp), xp)
        gate = L.sigmoid(_pair(self.params, "ham.write.gate", h, c, xp), xp)
        return gate * value + (1.0 - gate) * h


def _bernoulli_entropy(p: Array, xp: Namespace, eps: float = 1e-12) -> Any:
    q = 1.0 - p
    return -(p * xp.log(xp.clip(p, min=eps)) + q * xp.log(xp.clip(q, min=eps)))


def _initial_tree(
    params: L.Params,
    x: Array,
    mask: Array,
    ctx: L.Context,
    config: HAMConfig,
    n: int,
    nets: _Networks,
) -> Any:
    xp = ctx.xp
    batch, length = mask.shape
    k = config.node_size
    if config.memory == "empty":
        leaves = ctx.zeros((batch, n, k)) + params["ham.empty"]
    else:
        e = x * ctx.floats(mask)[..., None]
        if n > length:
            e = xp.concat([e, ctx.zeros((batch, n - length, x.shape[-1]))], axis=1)
        leaves = L.relu(L.dense(params, "ham.embed", e, xp), xp)
    return ham.build(leaves, nets.join)


def forward(
    params: L.Params,
    tokens: Array,
    mask: Array = None,
    *,
    config: HAMConfig,
    uniform: Array = None,
    return_policy: bool = False,
) -> Any:
    """Logits ``(B, L, output_size)`` of a HAM model for integer ``tokens`` (B, L).

    Parameters
    ----------
    uniform : array (B, L, log2 n), optional
        Hard access only: uniform [0, 1) samples of the branch decisions, one per tree
        level and step; given, every branch is sampled (training), otherwise greedy.
    return_policy : bool
        Hard access only: return ``(logits, Policy)``.
    """
    ctx, mask = L.context(params, tokens, mask, "HAM")
    xp = ctx.xp
    batch, length = tokens.shape
    if batch is None or length is None:
        raise ValueError(
            "HAM: the tree size follows the input length, which must be "
            "concrete (no symbolic graph inputs)"
        )
    hard = config.access == "hard"
    if not hard and (uniform is not None or return_policy):
        raise ValueError("HAM: `uniform` and `return_policy` need access='hard'")
    n = tree_size(config, length)
    levels = n.bit_length() - 1
    if uniform is not None and tuple(uniform.shape) != (batch, length, levels):
        raise ValueError(
            f"HAM: uniform must have shape (batch, length, log2 n) = "
            f"{(batch, length, levels)}, got {tuple(uniform.shape)}"
        )
    nets = _Networks(params, xp)
    x = L.embed(params, "embed", tokens, xp)
    tree = _initial_tree(params, x, mask, ctx, config, n, nets)
    lstm = config.controller == "lstm"
    state: tuple[Any, ...] = ()
    if lstm:
        w_h, w_x, b = (params[f"controller.{name}"] for name in ("w_h", "w_x", "b"))
        state = (ctx.zeros((batch, config.d_model)), ctx.zeros((batch, config.d_model)))
    read = ctx.zeros((batch, config.node_size))
    xs = [L.time_major(a, xp) for a in (x, mask)]
    if uniform is not None:
        xs.append(L.time_major(xp.astype(uniform, ctx.dtype), xp))

    def step(carry, inputs):
        state, tree, read = carry
        x_t, m_t, *u_t = inputs
        new_state: tuple[Any, ...]
        extras: tuple[Any, ...]
        if lstm:
            gates = xp.matmul(xp.concat([x_t, read], axis=-1), w_x) + b + xp.matmul(state[0], w_h)
            new_state = cells.lstm_cell(gates, state[1], xp)
            c = new_state[0]
        else:
            new_state, c = (), x_t
        if hard:
            access = ham.hard_access(tree, c, nets.search, uniform=u_t[0] if u_t else None)
            r = access.value
            new_tree = ham.write(tree, access.leaf, nets.write(r, c), nets.join)
            extras = (access.log_prob, xp.sum(_bernoulli_entropy(access.p_right, xp), axis=-1))
        else:
            weights, r = ham.soft_access(tree, c, nets.search)
            leaves = tree[:, n - 1 :, :]
            new_tree = ham.soft_write(tree, weights, nets.write(leaves, c[:, None, :]), nets.join)
            extras = ()
        carry = (
            tuple(L.keep_where(m_t, a, s, xp) for a, s in zip(new_state, state, strict=True)),
            L.keep_where(m_t, new_tree, tree, xp),
            L.keep_where(m_t, r, read, xp),
        )
        return carry, (c, r, *extras)

    _, outputs = L.run_scan(ctx, step, (state, tree, read), tuple(xs))
    c, r, *extras = (L.time_major(a, xp) for a in outputs)
    hidden = L.relu(L.dense(params, "head.hidden", xp.concat([c, r], axis=-1), xp), xp)
    logits = L.dense(params, "head.out", hidden, xp)
    if return_policy:
        return logits, Policy(log_prob=extras[0], entropy=extras[1], controller=c)
    return logits
