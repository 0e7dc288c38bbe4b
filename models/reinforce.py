r"""REINFORCE for hard-attention HAM: the score-function loss, written once for every framework.

A hard HAM access samples a root-to-leaf path at each step ``t``; the path is not
differentiable, so its SEARCH decisions learn from the reward they lead to. With
``ℓ_s = log p(y_s)`` the log-likelihood of the target at a scored position ``s`` and
``N`` the number of scored positions of the sample, the reward of step ``t`` is the
reward-to-go

.. math:: R_t = \frac{1}{N} \sum_{s \ge t,\ s \text{ scored}} \ell_s

(an access can only change outputs at its own and later steps). A learned baseline
``b_t = w_b \cdot c_t + b`` (the ``baseline`` parameters of the model, on the
controller state with its gradient stopped) predicts it, and

.. math::

    \mathcal{L} = -\frac{1}{B} \sum_{b, t} (R_t - b_t)\, \log \pi(\text{path}_t)
        + \lambda_b \overline{(b_t - R_t)^2} - \beta\, \overline{H_t}

over real steps, where :math:`H_t` is the entropy of the path's branch decisions
(the bonus keeps SEARCH from saturating early). The cross-entropy of the outputs is
added by the caller; every continuous part (EMBED, JOIN, WRITE, the controller, the
head) learns from it along the sampled path.

The framework's stop-gradient is passed in (``torch.Tensor.detach``,
``jax.lax.stop_gradient``), so this one function serves both training engines.
:data:`REINFORCE` is the :class:`~namcore.models.LossHook` the HAM entries declare:
the engines draw the path uniforms of each step with :func:`path_uniforms`, run the
forward with ``return_policy=True`` and add :func:`reinforce_loss`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from namcore import _compat
from namcore._typing import Array

from .config import HAMConfig
from .entry import LossHook
from .ham import tree_size

__all__ = [
    "BASELINE_WEIGHT",
    "REINFORCE",
    "path_uniforms",
    "reinforce_loss",
    "reward_to_go",
    "sampled_access",
]

#: Weight of the baseline's squared error in the loss.
BASELINE_WEIGHT = 0.5


def reward_to_go(target_logp: Array, loss_mask: Array) -> Any:
    """``R_t``: the mean scored log-likelihood from step ``t`` on, per sample (B, L).

    Examples
    --------
    >>> import numpy as np
    >>> logp = np.array([[-1.0, -2.0, -3.0, -4.0]])
    >>> reward_to_go(logp, np.array([[False, True, True, False]])).tolist()  # -0.0: -4 * 0
    [[-2.5, -2.5, -1.5, -0.0]]
    """
    xp = _compat.array_namespace(target_logp)
    weight = xp.astype(loss_mask, target_logp.dtype)
    count = xp.clip(xp.sum(weight, axis=1, keepdims=True), min=1.0)
    scored = target_logp * weight / count
    return xp.flip(xp.cumulative_sum(xp.flip(scored, axis=1), axis=1), axis=1)


def reinforce_loss(
    params: Mapping[str, Any],
    policy: Array,
    target_logp: Array,
    mask: Array,
    loss_mask: Array,
    *,
    stop_gradient: Callable[[Any], Any],
    entropy_bonus: float,
    baseline_weight: float = BASELINE_WEIGHT,
) -> tuple[Any, dict[str, Any]]:
    """The REINFORCE loss of one batch and its parts.

    Parameters
    ----------
    params : mapping
        The model's parameters (``baseline.w``, ``baseline.b`` are read).
    policy : namcore.models.ham.Policy
        From a forward pass with ``return_policy=True``.
    target_logp : array (B, L)
        Log-probability the model gives each target token.
    mask, loss_mask : bool arrays (B, L)
        Real steps, and the scored ones.
    stop_gradient : callable
        The framework's stop-gradient.
    entropy_bonus : float
        ``β``, the weight of the mean path entropy.
    baseline_weight : float
        ``λ_b``, the weight of the baseline's squared error.

    Returns
    -------
    loss : array ()
    parts : dict
        ``policy``, ``baseline``, ``entropy`` and the mean ``reward`` (arrays ()).
    """
    xp = _compat.array_namespace(target_logp)
    reward = stop_gradient(reward_to_go(target_logp, loss_mask))
    state = stop_gradient(policy.controller)
    baseline = (xp.matmul(state, params["baseline.w"]) + params["baseline.b"])[..., 0]
    advantage = stop_gradient(reward - baseline)
    real = xp.astype(mask, target_logp.dtype)
    steps = xp.clip(xp.sum(real), min=1.0)
    batch = target_logp.shape[0]
    policy_term = -xp.sum(advantage * policy.log_prob * real) / batch
    baseline_term = xp.sum((baseline - reward) ** 2 * real) / steps
    entropy = xp.sum(policy.entropy * real) / steps
    loss = policy_term + baseline_weight * baseline_term - entropy_bonus * entropy
    reward_mean = xp.sum(reward[:, 0]) / batch
    return loss, {
        "policy": policy_term,
        "baseline": baseline_term,
        "entropy": entropy,
        "reward": reward_mean,
    }


def sampled_access(config: Any) -> bool:
    """Whether ``config`` is a model trained with REINFORCE (a hard-access HAM)."""
    return isinstance(config, HAMConfig) and config.access == "hard"


def path_uniforms(config: Any, seed: int, step: int, shape: tuple[int, int]) -> Any:
    """The uniforms that sample the paths of training step ``step`` (NumPy, float32).

    ``shape`` is the batch's ``(B, L)``; the result is ``(B, L, log2 n)`` for the tree
    of that length. They depend only on ``(seed, step)``, so a resumed run samples
    what an uninterrupted one does, in either framework.
    """
    levels = tree_size(config, shape[1]).bit_length() - 1
    rng = np.random.default_rng([seed, step, 0x4A4D])
    return rng.random((*shape, levels), dtype=np.float32)


def _draw(config: Any, seed: int, step: int, shape: tuple[int, int]) -> dict[str, Any]:
    return {"uniform": path_uniforms(config, seed, step, shape)}


def _hook_loss(
    params: Mapping[str, Any],
    aux: Array,
    target_logp: Array,
    mask: Array,
    loss_mask: Array,
    *,
    stop_gradient: Callable[[Any], Any],
    preset: Any,
) -> Any:
    loss, _ = reinforce_loss(
        params,
        aux,
        target_logp,
        mask,
        loss_mask,
        stop_gradient=stop_gradient,
        entropy_bonus=preset.entropy_bonus,
    )
    return loss


#: The REINFORCE loss hook of hard-access HAM (the ``ham`` and ``ham-soft`` entries;
#: it applies to ``access="hard"`` only).
REINFORCE = LossHook(
    applies=sampled_access,
    draw=_draw,
    options={"return_policy": True},
    loss=_hook_loss,
)
