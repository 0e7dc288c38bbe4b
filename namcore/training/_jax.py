"""The JAX training engine: optax Adam with clipping, at the learning rate it is given."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from namcore.models import ModelConfig
from namcore.models import jax as models_jax

from .engine import active_hook
from .errors import TrainingError
from .presets import Preset

__all__ = ["JAXEngine", "JAXShardedEngine"]

_BUCKET = 8  # pad batches to a multiple of this width: fewer shapes, fewer compilations
# The optimiser state of runs written while the schedule lived in the optax chain: its
# own step count (always Adam's), dropped when such a run is resumed.
_LEGACY_SCHEDULE_COUNT = "[3].count"


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

    Implements :class:`~namcore.training.engine.Engine`.

    Parameters
    ----------
    config : ModelConfig
        The model to train.
    preset : Preset
        Optimiser settings (weight decay, clipping, the hook's settings); the
        learning rate of each step is passed to :meth:`train_step`, a traced argument
        of the jitted step (one compilation for every rate).
    seed : int
        Seed of the parameter initialisation.

    Examples
    --------
    >>> from namcore.training import get_preset, model_config
    >>> from namcore.training.data import train_batch
    >>> preset = get_preset("smoke")
    >>> engine = JAXEngine(model_config("lstm", "reduce", preset), preset, seed=0)
    >>> batch = train_batch("reduce", preset, seed=0, step=0)
    >>> loss, accuracy = engine.train_step(
    ...     batch.inputs, batch.targets, batch.mask, batch.loss_mask, preset.lr_at(0), 0
    ... )
    >>> engine.predict(batch.inputs, batch.mask).shape == batch.inputs.shape
    True
    """

    framework = "jax"

    def __init__(self, config: ModelConfig, preset: Preset, seed: int) -> None:
        self.config, self.seed, self.preset = config, seed, preset
        self.hook = active_hook(config)
        self.params_ = models_jax.init(config, seed)
        # Adam's direction; train_step scales it by -lr.
        self.tx = optax.chain(
            optax.clip_by_global_norm(preset.clip),
            optax.add_decayed_weights(preset.weight_decay),
            optax.scale_by_adam(),
        )
        # Committed like the parameters, so that a fresh run and a resumed one (whose
        # state comes from disk) call the same compiled step.
        self.opt_state = jax.device_put(self.tx.init(self.params_), jax.devices()[0])
        self._step = jax.jit(self._step_fn)
        self._predict = jax.jit(self._predict_fn)

    def _step_fn(
        self,
        params: Any,
        opt_state: Any,
        x: Any,
        y: Any,
        m: Any,
        lm: Any,
        lr: Any,
        drawn: dict[str, Any],
    ) -> Any:
        hook = self.hook

        def loss_fn(p: Any) -> Any:
            if hook is None:
                logits = models_jax.apply(p, x, m, config=self.config)
            else:
                logits, aux = models_jax.apply(p, x, m, config=self.config, **drawn, **hook.options)
            logp = jax.nn.log_softmax(logits.astype(jnp.float32))
            target_logp = jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
            weight = lm.astype(jnp.float32)
            loss = -jnp.sum(target_logp * weight) / jnp.maximum(jnp.sum(weight), 1.0)
            total = loss
            if hook is not None:
                total = loss + hook.loss(
                    p,
                    aux,
                    target_logp,
                    m,
                    lm,
                    stop_gradient=jax.lax.stop_gradient,
                    preset=self.preset,
                )
            return total, (loss, logits)

        (_, (loss, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        direction, opt_state = self.tx.update(grads, opt_state, params)
        updates = jax.tree.map(lambda d: -lr * d, direction)
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
        """One Adam step at learning rate ``lr``; returns (cross-entropy, sequence accuracy).

        A model whose entry declares an active loss hook (hard-access HAM's REINFORCE)
        runs with the arrays the hook draws for ``step`` (for the bucketed width) and
        adds the hook's loss.
        """
        x, y, m, lm = self._place(_inputs(inputs, targets, mask, loss_mask))
        drawn: dict[str, Any] = {}
        if self.hook is not None:
            shape = (int(x.shape[0]), int(x.shape[1]))
            drawn = {
                name: jnp.asarray(value)
                for name, value in self.hook.draw(self.config, self.seed, step, shape).items()
            }
        self.params_, self.opt_state, loss, acc = self._step(
            self.params_, self.opt_state, x, y, m, lm, jnp.float32(lr), drawn
        )
        return float(loss), float(acc)

    def _place(self, arrays: list[Any]) -> list[Any]:
        """Where a step's arrays go: as they are (one device)."""
        return arrays

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
        """Restore parameters and the optax state written by :meth:`optimizer_arrays`.

        A state written while the schedule was part of the optax chain (before the
        learning rate became an argument of the step) loads too: its extra step count
        is dropped.
        """
        device = jax.devices()[0]
        optimizer = {k: v for k, v in optimizer.items() if k != _LEGACY_SCHEDULE_COUNT}
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


class JAXShardedEngine(JAXEngine):
    """:class:`JAXEngine` with each batch's rows split over ``n_devices`` devices.

    Parameters and the optimiser state are replicated on a one-axis mesh ``("data",)``
    of the first ``n_devices`` devices; XLA inserts the reductions of the loss and the
    gradients, so a step is the one-device step up to rounding. See
    :mod:`namcore.training.distributed`.
    """

    def __init__(self, config: ModelConfig, preset: Preset, seed: int, n_devices: int) -> None:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        devices = jax.devices()[:n_devices]
        if len(devices) < n_devices:
            raise TrainingError(f"--nproc {n_devices}: JAX sees only {len(devices)} device(s)")
        mesh = Mesh(np.array(devices), ("data",))
        self._replicated = NamedSharding(mesh, PartitionSpec())
        self._rows = NamedSharding(mesh, PartitionSpec("data"))
        self.n_devices = n_devices
        super().__init__(config, preset, seed)
        self._replicate()

    def _replicate(self) -> None:
        self.params_ = jax.device_put(self.params_, self._replicated)
        self.opt_state = jax.device_put(self.opt_state, self._replicated)

    def _place(self, arrays: list[Any]) -> list[Any]:
        rows = int(arrays[0].shape[0])
        if rows % self.n_devices:
            raise TrainingError(
                f"the batch of {rows} rows does not split over {self.n_devices} devices"
            )
        return [jax.device_put(a, self._rows) for a in arrays]

    def load(self, params: dict[str, np.ndarray], optimizer: dict[str, np.ndarray]) -> None:
        """Restore as :meth:`JAXEngine.load`, then replicate over the mesh."""
        super().load(params, optimizer)
        self._replicate()
