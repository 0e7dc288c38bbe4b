"""The JAX training engine: optax Adam with clipping and a step learning-rate schedule."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from namcore.models import ModelConfig
from namcore.models import jax as models_jax

from .presets import Preset
from .reinforce import path_uniforms, reinforce_loss, sampled_access

__all__ = ["JAXEngine"]

_BUCKET = 8  # pad batches to a multiple of this width: fewer shapes, fewer compilations


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    extra = width - a.shape[1]
    return a if extra == 0 else np.pad(a, ((0, 0), (0, extra)))


def _inputs(*arrays: np.ndarray) -> list[Any]:
    width = -(-arrays[0].shape[1] // _BUCKET) * _BUCKET
    out = []
    for a in arrays:
        a = _pad(a, width)
        out.append(jnp.asarray(a.astype(np.int32) if a.dtype != np.bool_ else a))
    return out


class JAXEngine:
    """Parameters, optax state and a jitted training step (float32).

    Parameters
    ----------
    config : ModelConfig
        The model to train.
    preset : Preset
        Optimiser settings; the learning-rate schedule lives in the optax state count.
    seed : int
        Seed of the parameter initialisation.
    """

    framework = "jax"

    def __init__(self, config: ModelConfig, preset: Preset, seed: int) -> None:
        self.config, self.seed, self.preset = config, seed, preset
        self.sampled = sampled_access(config)
        self.params_ = models_jax.init(config, seed)

        def schedule(count: Any) -> Any:
            return preset.lr * preset.lr_decay ** (count // preset.decay_every)

        self.tx = optax.chain(
            optax.clip_by_global_norm(preset.clip),
            optax.add_decayed_weights(preset.weight_decay),
            optax.scale_by_adam(),
            optax.scale_by_learning_rate(schedule),
        )
        # Committed like the parameters, so that a fresh run and a resumed one (whose
        # state comes from disk) call the same compiled step.
        self.opt_state = jax.device_put(self.tx.init(self.params_), jax.devices()[0])
        self._step = jax.jit(self._step_fn)
        self._predict = jax.jit(self._predict_fn)

    def _step_fn(
        self, params: Any, opt_state: Any, x: Any, y: Any, m: Any, lm: Any, u: Any = None
    ) -> Any:
        def loss_fn(p: Any) -> Any:
            if u is None:
                logits = models_jax.apply(p, x, m, config=self.config)
            else:
                logits, policy = models_jax.apply(
                    p, x, m, config=self.config, uniform=u, return_policy=True
                )
            logp = jax.nn.log_softmax(logits.astype(jnp.float32))
            target_logp = jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
            weight = lm.astype(jnp.float32)
            loss = -jnp.sum(target_logp * weight) / jnp.maximum(jnp.sum(weight), 1.0)
            total = loss
            if u is not None:
                extra, _ = reinforce_loss(
                    p,
                    policy,
                    target_logp,
                    m,
                    lm,
                    stop_gradient=jax.lax.stop_gradient,
                    entropy_bonus=self.preset.entropy_bonus,
                )
                total = loss + extra
            return total, (loss, logits)

        (_, (loss, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = self.tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        correct = jnp.all((jnp.argmax(logits, -1) == y) | ~lm, axis=1)
        return params, opt_state, loss, jnp.mean(correct.astype(jnp.float32))

    def _predict_fn(self, params: Any, x: Any, m: Any) -> Any:
        return jnp.argmax(models_jax.apply(params, x, m, config=self.config), axis=-1)

    def train_step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        loss_mask: np.ndarray,
        lr: float,
        step: int = 0,
    ) -> tuple[float, float]:
        """One step; ``lr`` is ignored (the schedule is in the optax state).

        A hard-access HAM samples its paths with the uniforms of ``step`` (drawn for
        the bucketed width) and adds the REINFORCE loss.
        """
        del lr
        x, y, m, lm = _inputs(inputs, targets, mask, loss_mask)
        extra = ()
        if self.sampled:
            extra = (jnp.asarray(path_uniforms(self.config, self.seed, step, x.shape)),)
        self.params_, self.opt_state, loss, acc = self._step(
            self.params_, self.opt_state, x, y, m, lm, *extra
        )
        return float(loss), float(acc)

    def predict(self, inputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Predicted token ids (N, L)."""
        x, m = _inputs(inputs, mask)
        return np.asarray(self._predict(self.params_, x, m))[:, : inputs.shape[1]]

    def params(self) -> dict[str, np.ndarray]:
        """The parameters as NumPy arrays under the shared names."""
        return {name: np.array(value) for name, value in self.params_.items()}

    def _named_leaves(self) -> tuple[list[str], list[Any], Any]:
        leaves, treedef = jax.tree_util.tree_flatten_with_path(self.opt_state)
        names = [jax.tree_util.keystr(path) for path, _ in leaves]
        return names, [leaf for _, leaf in leaves], treedef

    def optimizer_arrays(self) -> dict[str, np.ndarray]:
        """The optax state pytree flattened with ``jax.tree_util`` into named arrays."""
        names, leaves, _ = self._named_leaves()
        return {name: np.array(leaf) for name, leaf in zip(names, leaves, strict=True)}

    def load(self, params: dict[str, np.ndarray], optimizer: dict[str, np.ndarray]) -> None:
        """Restore parameters and the optax state written by :meth:`optimizer_arrays`."""
        device = jax.devices()[0]
        self.params_ = {
            name: jax.device_put(jnp.asarray(params[name], dtype=value.dtype), device)
            for name, value in self.params_.items()
        }
        names, leaves, treedef = self._named_leaves()
        if set(names) != set(optimizer):
            missing = sorted(set(names) - set(optimizer))[:3]
            extra = sorted(set(optimizer) - set(names))[:3]
            raise ValueError(
                f"the optimizer state does not fit this model and optimizer "
                f"(missing {missing}, unexpected {extra})"
            )
        restored = [
            jax.device_put(jnp.asarray(optimizer[name], dtype=leaf.dtype), device)
            for name, leaf in zip(names, leaves, strict=True)
        ]
        self.opt_state = jax.tree_util.tree_unflatten(treedef, restored)
