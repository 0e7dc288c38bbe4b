"""The HAM model against a plain-Python oracle, REINFORCE across frameworks, training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from namcore.models import HAMConfig, forward, init_numpy
from namcore.models.ham import tree_size
from namcore.models.reinforce import path_uniforms, reinforce_loss, reward_to_go


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


def oracle(params, tokens, config, uniform=None):
    """One sample at a time, with the tree kept as a list of leaves and every inner node
    recomputed recursively from them at each use (no partial updates to trust)."""
    P = params
    batch, length = tokens.shape
    n = tree_size(config, length)
    levels = int(math.log2(n))
    k = config.node_size
    logits, log_probs = [], []

    def node(leaves, i):
        if i >= n - 1:
            return leaves[i - (n - 1)]
        pair = np.concatenate([node(leaves, 2 * i + 1), node(leaves, 2 * i + 2)])
        return relu(pair @ P["ham.join.w"] + P["ham.join.b"])

    for b in range(batch):
        emb = P["embed"][tokens[b]]
        if config.memory == "inputs":
            rows = np.concatenate([emb, np.zeros((n - length, config.d_model))])
            leaves = list(relu(rows @ P["ham.embed.w"] + P["ham.embed.b"]))
        else:
            leaves = [P["ham.empty"].copy() for _ in range(n)]

        def dense(name, h, c):
            return np.concatenate([h, c]) @ P[f"{name}.w"] + P[f"{name}.b"]

        def write(h, c):
            gate = sigmoid(dense("ham.write.gate", h, c))
            return gate * sigmoid(dense("ham.write.value", h, c)) + (1 - gate) * h

        h = cell = np.zeros(config.d_model)
        read = np.zeros(k)
        out, lp = [], []
        for t in range(length):
            if config.controller == "lstm":
                g = (
                    np.concatenate([emb[t], read]) @ P["controller.w_x"]
                    + P["controller.b"]
                    + h @ P["controller.w_h"]
                )
                d = config.d_model
                i, f, cand, o = (g[j * d : (j + 1) * d] for j in range(4))
                cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(cand)
                h = sigmoid(o) * np.tanh(cell)
                c = h
            else:
                c = emb[t]
            if config.access == "hard":
                index, total = 0, 0.0
                for level in range(levels):
                    p = sigmoid(dense("ham.search", node(leaves, index), c))[0]
                    right = p > 0.5 if uniform is None else uniform[b, t, level] < p
                    total += math.log(p if right else 1 - p)
                    index = 2 * index + 1 + int(right)
                leaf = index - (n - 1)
                read = leaves[leaf]
                leaves[leaf] = write(read, c)
                lp.append(total)
            else:
                weights = []
                for leaf in range(n):
                    index, weight = 0, 1.0
                    for level in reversed(range(levels)):
                        p = sigmoid(dense("ham.search", node(leaves, index), c))[0]
                        right = (leaf >> level) & 1
                        weight *= p if right else 1 - p
                        index = 2 * index + 1 + right
                    weights.append(weight)
                read = sum(w * v for w, v in zip(weights, leaves, strict=True))
                leaves = [
                    w * write(v, c) + (1 - w) * v for w, v in zip(weights, leaves, strict=True)
                ]
            hidden = relu(np.concatenate([c, read]) @ P["head.hidden.w"] + P["head.hidden.b"])
            out.append(hidden @ P["head.out.w"] + P["head.out.b"])
        logits.append(out)
        log_probs.append(lp)
    return np.asarray(logits), np.asarray(log_probs)


CASES = {
    "lstm-hard": HAMConfig(vocab_size=7, d_model=8, d_node=5),
    "alone-hard": HAMConfig(
        vocab_size=7, d_model=6, controller="none", memory="empty", memory_size=8
    ),
    "lstm-soft": HAMConfig(vocab_size=7, d_model=8, access="soft"),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("sampled", [False, True])
def test_forward_equals_the_oracle(name, sampled):
    config = CASES[name]
    if sampled and config.access == "soft":
        pytest.skip("soft access has no sampled paths")
    params = init_numpy(config, seed=4, dtype=np.float64)
    tokens = np.random.default_rng(0).integers(0, 7, size=(3, 6))
    levels = int(math.log2(tree_size(config, 6)))
    uniform = np.random.default_rng(1).random((3, 6, levels)) if sampled else None
    expected, expected_lp = oracle(params, tokens, config, uniform)
    if config.access == "hard":
        logits, policy = forward(params, tokens, config=config, uniform=uniform, return_policy=True)
        np.testing.assert_allclose(policy.log_prob, expected_lp, rtol=1e-12, atol=1e-12)
        assert policy.entropy.shape == (3, 6) and (policy.entropy > 0).all()
        assert np.all(policy.entropy <= levels * math.log(2) + 1e-12)
    else:
        logits = forward(params, tokens, config=config)
    np.testing.assert_allclose(logits, expected, rtol=1e-10, atol=1e-12)


def test_sampled_paths_differ_from_greedy_and_follow_the_uniforms():
    config = CASES["lstm-hard"]
    params = init_numpy(config, seed=5, dtype=np.float64)
    tokens = np.random.default_rng(2).integers(0, 7, size=(4, 8))
    greedy = forward(params, tokens, config=config)
    right = np.zeros((4, 8, 3))  # u = 0 < p: always right
    left = np.ones((4, 8, 3))  # u = 1 > p: always left
    a, pa = forward(params, tokens, config=config, uniform=right, return_policy=True)
    b, pb = forward(params, tokens, config=config, uniform=left, return_policy=True)
    assert not np.allclose(a, b) and not (np.allclose(a, greedy) and np.allclose(b, greedy))
    assert (pa.log_prob < 0).all() and (pb.log_prob < 0).all()


def test_bad_arguments_are_refused():
    config = CASES["lstm-hard"]
    params = init_numpy(config)
    tokens = np.zeros((2, 5), dtype=np.int64)
    with pytest.raises(ValueError, match=r"uniform must have shape \(batch, length, log2 n\)"):
        forward(params, tokens, config=config, uniform=np.zeros((2, 5, 2)))
    soft = CASES["lstm-soft"]
    with pytest.raises(ValueError, match="need access='hard'"):
        forward(init_numpy(soft), tokens, config=soft, return_policy=True)
    small = HAMConfig(vocab_size=7, d_model=8, memory_size=4)
    with pytest.raises(ValueError, match="memory_size=4 leaves cannot hold an input of 5"):
        forward(init_numpy(small), tokens, config=small)
    for field, value, message in [
        ("access", "both", "access must be"),
        ("controller", "gru", "controller must be"),
        ("memory", "zeros", "memory must be"),
        ("memory_size", 6, "power of two"),
    ]:
        with pytest.raises(ValueError, match=message):
            HAMConfig(vocab_size=7, **{field: value})


def test_the_tree_grows_with_the_input():
    config = HAMConfig(vocab_size=5)
    assert [tree_size(config, n) for n in (1, 2, 3, 8, 9, 46)] == [1, 2, 4, 8, 16, 64]
    assert tree_size(HAMConfig(vocab_size=5, memory="empty", memory_size=4), 9) == 4


# --------------------------------------------------------------------------- REINFORCE
def test_reward_to_go_sums_later_scored_log_likelihoods():
    logp = np.log(np.array([[0.5, 0.25, 0.125, 1.0], [0.1, 0.2, 0.3, 0.4]]))
    scored = np.array([[True, False, True, False], [False, False, False, False]])
    got = reward_to_go(logp, scored)
    first = (np.log(0.5) + np.log(0.125)) / 2
    np.testing.assert_allclose(got[0], [first, np.log(0.125) / 2, np.log(0.125) / 2, 0.0])
    np.testing.assert_array_equal(got[1], 0.0)


def test_reinforce_gradients_agree_between_torch_and_jax(jax_x64):
    """The whole hard-access loss (cross-entropy + REINFORCE) through tree writes."""
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp

    config = HAMConfig(vocab_size=7, d_model=8)
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 7, size=(3, 6))
    targets = rng.integers(0, 7, size=(3, 6))
    mask = np.ones((3, 6), dtype=bool)
    mask[2, 4:] = False
    scored = mask & (np.arange(6) >= 2)
    uniform = path_uniforms(config, seed=1, step=0, shape=(3, 6)).astype(np.float64)
    base = init_numpy(config, seed=6, dtype=np.float64)

    def loss(params, tokens, targets, mask, scored, uniform, xp, log_softmax, take, detach):
        logits, policy = forward(
            params, tokens, mask, config=config, uniform=uniform, return_policy=True
        )
        target_logp = take(log_softmax(logits), targets)
        weight = xp.astype(scored, target_logp.dtype)
        ce = -xp.sum(target_logp * weight) / xp.sum(weight)
        extra, _ = reinforce_loss(
            params, policy, target_logp, mask, scored, stop_gradient=detach, entropy_bonus=0.05
        )
        return ce + extra

    jax = jax_x64
    jp = {k: jnp.asarray(v) for k, v in base.items()}
    j_args = [jnp.asarray(a) for a in (tokens, targets, mask, scored, uniform)]
    j_grads = jax.grad(
        lambda p: loss(
            p,
            *j_args,
            jnp,
            jax.nn.log_softmax,
            lambda lp, y: jnp.take_along_axis(lp, y[..., None], axis=-1)[..., 0],
            jax.lax.stop_gradient,
        )
    )(jp)

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in base.items()}
    t_args = [
        torch.from_numpy(np.ascontiguousarray(a)) for a in (tokens, targets, mask, scored, uniform)
    ]
    value = loss(
        tp,
        *t_args,
        __import__("array_api_compat").array_namespace(t_args[-1]),
        lambda x: torch.log_softmax(x, -1),
        lambda lp, y: lp.gather(-1, y[..., None])[..., 0],
        torch.Tensor.detach,
    )
    value.backward()
    for name, p in tp.items():
        assert p.grad is not None, name
        np.testing.assert_allclose(
            np.asarray(j_grads[name]), p.grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name
        )
    moved = [name for name in tp if float(tp[name].grad.abs().sum()) > 0]
    assert {"ham.search.w", "baseline.w", "ham.join.w", "controller.w_h"} <= set(moved)


def test_path_uniforms_are_fixed_by_seed_and_step():
    config = HAMConfig(vocab_size=5)
    a = path_uniforms(config, 0, 7, (4, 9))
    assert a.shape == (4, 9, 4) and a.dtype == np.float32
    assert np.array_equal(a, path_uniforms(config, 0, 7, (4, 9)))
    assert not np.array_equal(a, path_uniforms(config, 0, 8, (4, 9)))
    assert not np.array_equal(a, path_uniforms(config, 1, 7, (4, 9)))
