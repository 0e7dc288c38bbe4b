"""Training presets (``smoke``, ``quick``, ``paper``) and the model configs they build.

A :class:`Preset` fixes the model width, the optimiser, the schedule, the length
curriculum and the evaluation sets. :func:`model_config` turns a model name, a task
and a preset into the model's config.

Examples
--------
>>> from namcore.training.presets import get_preset, model_config
>>> get_preset("quick").lr
0.003
>>> cfg = model_config("namtm-nojump", "reduce", "smoke")
>>> cfg.jump, cfg.d_model
(False, 16)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from namcore import tasks
from namcore.models import ModelConfig, get_entry

__all__ = ["LRA_PRESETS", "PRESETS", "Preset", "get_preset", "model_config"]


@dataclass(frozen=True)
class Preset:
    """Sizes and schedule of one training run.

    Parameters
    ----------
    name : str
        Preset name.
    d_model, n_heads, n_layers, n_tapes, tape_length : int
        Model sizes (heads for LSAM and Transformers, tapes for NAM-TM).
    batch_size, steps : int
        Training batch size and number of optimiser steps.
    lr : float
        Initial learning rate of Adam.
    lr_decay : float
        Step schedule: the learning rate is ``lr * lr_decay ** (step // decay_every)``.
    decay_every : int
        Steps between two decays.
    weight_decay : float
        Adam's (coupled, PyTorch-style) weight decay.
    clip : float
        Maximum global gradient norm.
    curriculum_steps : int
        The longest training length grows linearly from ``curriculum_start`` to the
        split's longest over these first steps (0: no curriculum).
    eval_every : int
        Steps between evaluations; a checkpoint is written at every evaluation.
    eval_size : int
        Samples per evaluation split.
    curriculum_start : int
        Longest training length at step 0 of the curriculum (at least the split's
        shortest length).
    entropy_bonus : float
        Weight of the path-entropy bonus of REINFORCE (hard-access HAM only).
    """

    name: str
    d_model: int
    n_heads: int
    n_layers: int
    n_tapes: int
    tape_length: int
    batch_size: int
    steps: int
    lr: float
    lr_decay: float
    decay_every: int
    weight_decay: float
    clip: float
    curriculum_steps: int
    eval_every: int
    eval_size: int
    curriculum_start: int = 3
    entropy_bonus: float = 0.01

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) optimiser step ``step``."""
        return self.lr * self.lr_decay ** (step // self.decay_every)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping of the fields."""
        return dataclasses.asdict(self)


PRESETS: dict[str, Preset] = {
    # Seconds on a laptop: enough to exercise every code path, not to learn.
    "smoke": Preset(
        "smoke",
        d_model=16,
        n_heads=2,
        n_layers=1,
        n_tapes=2,
        tape_length=16,
        batch_size=8,
        steps=20,
        lr=3e-3,
        lr_decay=0.98,
        decay_every=10,
        weight_decay=0.0,
        clip=1.0,
        curriculum_steps=6,
        eval_every=5,
        eval_size=32,
    ),
    # Sized for a 2-core CPU: NAM-TM solves reduce in about 1,500 steps (docs/training.md).
    "quick": Preset(
        "quick",
        d_model=64,
        n_heads=4,
        n_layers=2,
        n_tapes=4,
        tape_length=32,
        batch_size=64,
        steps=1500,
        lr=3e-3,
        lr_decay=0.98,
        decay_every=100,
        weight_decay=0.0,
        clip=1.0,
        curriculum_steps=500,
        eval_every=250,
        eval_size=512,
    ),
    # The paper's section 6.1 (ICLR): Adam 1e-4, weight decay lr/2, StepLR 0.98 per
    # epoch of 25,600 samples (200 steps of 128), clip 0.5, 100 epochs; for a GPU.
    "paper": Preset(
        "paper",
        d_model=512,
        n_heads=8,
        n_layers=2,
        n_tapes=8,
        tape_length=32,
        batch_size=128,
        steps=20000,
        lr=1e-4,
        lr_decay=0.98,
        decay_every=200,
        weight_decay=5e-5,
        clip=0.5,
        curriculum_steps=0,
        eval_every=200,
        eval_size=2048,
    ),
}


#: Presets of the LRA grid alone (``namcore reproduce --grid lra --preset paper`` trains
#: with ``lra-paper``). ``lra-paper`` follows the NAM authors' LRA ListOps setup
#: (width 256, 4 heads, 4 layers, MLP 1024) at LRA's batch of 32 for 3,000 steps: 96,000
#: fresh training samples (LRA's training set size, each seen once) and LRA's 2,000
#: samples per evaluation split. Adam at a step-decayed rate replaces LRA's warm-up and
#: inverse-square-root schedule.
LRA_PRESETS: dict[str, Preset] = {
    "lra-paper": Preset(
        "lra-paper",
        d_model=256,
        n_heads=4,
        n_layers=4,
        n_tapes=8,
        tape_length=32,
        batch_size=32,
        steps=3000,
        lr=5e-4,
        lr_decay=0.98,
        decay_every=100,
        weight_decay=0.0,
        clip=1.0,
        curriculum_steps=0,
        eval_every=500,
        eval_size=2000,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (of :data:`PRESETS` or :data:`LRA_PRESETS`).

    ``ValueError`` naming the choices otherwise.
    """
    found = PRESETS.get(name) or LRA_PRESETS.get(name)
    if found is None:
        choices = ", ".join([*PRESETS, *LRA_PRESETS])
        raise ValueError(f"unknown preset {name!r}; choose from {choices}")
    return found


def model_config(model: str, task: str, preset: str | Preset) -> ModelConfig:
    """The config of model ``model`` for task ``task`` at the sizes of ``preset``.

    The model's registry entry decides (:meth:`~namcore.models.ModelEntry.config_for`):
    by default a model gets ``vocab_size`` from the task and ``d_model`` from the
    preset.

    Parameters
    ----------
    model : str
        A registered model name (:func:`namcore.models.names`).
    task : str
        A task name of :mod:`namcore.tasks`; fixes ``vocab_size``.
    preset : str or Preset

    Returns
    -------
    ModelConfig
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    return get_entry(model).config_for(tasks.get(task), p)
