"""The PyTorch training engine: Adam with clipping, at the learning rate it is given."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from namcore.models import ModelConfig, entry_for
from namcore.models import torch as models_torch

from .engine import active_hook
from .errors import TrainingError
from .presets import Preset

__all__ = ["TorchDDPEngine", "TorchEngine"]


class TorchEngine:
    """Model, optimiser and one training step in PyTorch (float32, CPU or CUDA).

    Implements :class:`~namcore.training.engine.Engine`.

    Parameters
    ----------
    config : ModelConfig
        The model to train.
    preset : Preset
        Optimiser settings (weight decay, clipping, the hook's settings); the
        learning rate of each step is passed to :meth:`train_step`.
    seed : int
        Seed of the parameter initialisation.

    Examples
    --------
    >>> from namcore.training import get_preset, model_config
    >>> from namcore.training.data import train_batch
    >>> preset = get_preset("smoke")
    >>> engine = TorchEngine(model_config("lstm", "reduce", preset), preset, seed=0)
    >>> batch = train_batch("reduce", preset, seed=0, step=0)
    >>> loss, accuracy = engine.train_step(
    ...     batch.inputs, batch.targets, batch.mask, batch.loss_mask, preset.lr_at(0), 0
    ... )
    >>> engine.predict(batch.inputs, batch.mask).shape == batch.inputs.shape
    True
    """

    framework = "torch"

    def __init__(self, config: ModelConfig, preset: Preset, seed: int) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        cls = getattr(models_torch, entry_for(config).class_name)
        self.model = cls(config, seed=seed, device=self.device)
        self.preset, self.seed, self.config = preset, seed, config
        self.hook = active_hook(config)
        self.names = [name for name, _ in self.model.named_parameters()]
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=preset.lr, weight_decay=preset.weight_decay
        )

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

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
        runs with the arrays the hook draws for ``step`` and adds the hook's loss.
        """
        x, y, m, lm = (self._tensor(a) for a in (inputs, targets, mask, loss_mask))
        self.model.train()
        if self.hook is not None:
            drawn = self.hook.draw(self.config, self.seed, step, inputs.shape)
            extra = {name: self._tensor(value) for name, value in drawn.items()}
            logits, aux = self.model(x, m, **extra, **self.hook.options)
            logp = torch.log_softmax(logits.float(), -1).gather(-1, y[..., None])[..., 0]
            loss = -logp[lm].mean()  # the cross-entropy, from the log-probs the hook needs
            total = loss + self.hook.loss(
                self.model.params(),
                aux,
                logp,
                m,
                lm,
                stop_gradient=torch.Tensor.detach,
                preset=self.preset,
            )
        else:
            logits = self.model(x, m)
            loss = total = torch.nn.functional.cross_entropy(logits[lm].float(), y[lm])
        self._update(total, lr)
        return float(loss.detach()), float(_correct(logits, y, lm).float().mean())

    def _update(self, loss: torch.Tensor, lr: float) -> None:
        """Backpropagate ``loss``, clip the gradients' global norm, take an Adam step at ``lr``."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.preset.clip)
        self.optimizer.step()

    @torch.no_grad()
    def predict(self, inputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Predicted token ids (N, L)."""
        self.model.eval()
        logits: torch.Tensor = self.model(self._tensor(inputs), self._tensor(mask))
        ids: np.ndarray = logits.argmax(-1).cpu().numpy()
        return ids

    def params(self) -> dict[str, np.ndarray]:
        """The parameters as NumPy arrays under the shared names."""
        return {name: p.detach().cpu().numpy().copy() for name, p in self.model.named_parameters()}

    def optimizer_arrays(self) -> dict[str, np.ndarray]:
        """Adam's state as named arrays: ``<param>/<key>`` (``step``, ``exp_avg``, ...)."""
        state = self.optimizer.state_dict()["state"]
        arrays: dict[str, np.ndarray] = {}
        for index, entries in state.items():
            for key, value in entries.items():
                tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
                arrays[f"{self.names[index]}/{key}"] = tensor.detach().cpu().numpy().copy()
        return arrays

    def load(self, params: dict[str, np.ndarray], optimizer: dict[str, np.ndarray]) -> None:
        """Restore parameters and Adam's state written by :meth:`optimizer_arrays`."""
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(torch.from_numpy(np.asarray(params[name])))
        state: dict[int, dict[str, Any]] = {}
        expected = {n for n in optimizer}
        for index, name in enumerate(self.names):
            entries = {
                key.split("/", 1)[1]: torch.from_numpy(np.array(value))
                for key, value in optimizer.items()
                if key.split("/", 1)[0] == name
            }
            if not entries:
                raise ValueError(f"the optimizer state has no entry for parameter {name!r}")
            state[index] = {
                k: (v if k == "step" else v.to(self.device)) for k, v in entries.items()
            }
            expected -= {f"{name}/{k}" for k in entries}
        if expected:
            raise ValueError(f"unknown optimizer state entries: {sorted(expected)[:3]}")
        full = self.optimizer.state_dict()
        self.optimizer.load_state_dict({"state": state, "param_groups": full["param_groups"]})


class TorchDDPEngine(TorchEngine):
    """:class:`TorchEngine` as one rank of a ``DistributedDataParallel`` group.

    Every rank gets the whole batch (the same ``(seed, step)`` draw) and trains on its
    contiguous share of the rows. A share's loss is its summed token cross-entropy
    divided by the *global* token count, times the world size (which DDP's gradient
    averaging divides out), so the gradient is the one-process gradient. Models with
    a loss hook are refused. See :mod:`namcore.training.distributed`.
    """

    def __init__(self, config: ModelConfig, preset: Preset, seed: int) -> None:
        super().__init__(config, preset, seed)
        if self.hook is not None:
            raise TrainingError(
                f"data-parallel training does not support {type(config).__name__}'s loss "
                "hook yet; train it with --nproc 1"
            )
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        # Wrapped at the first step, which every rank reaches together (the wrapper's
        # construction is a collective), after rank 0's restored state is loaded.
        self.ddp: torch.nn.Module | None = None

    def train_step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        loss_mask: np.ndarray,
        lr: float,
        step: int = 0,
    ) -> tuple[float, float]:
        """One synchronised Adam step; the global (cross-entropy, sequence accuracy)."""
        import torch.distributed as dist

        rows = inputs.shape[0]
        if rows % self.world:
            raise TrainingError(f"the batch of {rows} rows does not split over {self.world} ranks")
        part = slice(self.rank * rows // self.world, (self.rank + 1) * rows // self.world)
        total = max(int(loss_mask.sum()), 1)
        x, y, m, lm = (self._tensor(a[part]) for a in (inputs, targets, mask, loss_mask))
        self.model.train()
        if self.ddp is None:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model)
        logits = self.ddp(x, m)
        summed = torch.nn.functional.cross_entropy(logits[lm].float(), y[lm], reduction="sum")
        self._update(summed * (self.world / total), lr)
        correct = _correct(logits, y, lm).sum()
        stats = torch.stack([summed.detach().double(), correct.double()]).cpu()
        dist.all_reduce(stats)
        return float(stats[0]) / total, float(stats[1]) / rows


@torch.no_grad()
def _correct(logits: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Per sequence: whether every scored position is predicted right."""
    return ((logits.argmax(-1) == targets) | ~loss_mask).all(dim=1)
