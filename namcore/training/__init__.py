"""Training the models on the algorithmic tasks, on PyTorch or JAX, and evaluating them.

- :mod:`namcore.training.presets`: the ``smoke``, ``quick`` and ``paper`` presets and
  :func:`model_config`;
- :mod:`namcore.training.trainer`: :func:`train`, resumable and deterministic;
- :mod:`namcore.training.engine`: the :class:`~namcore.training.engine.Engine`
  protocol the PyTorch and JAX engines implement, and :data:`FRAMEWORKS`;
- :mod:`namcore.training.run_folder`: :class:`RunFolder`, the files of a run
  (description, metrics, checkpoints, resumption, best-checkpoint selection);
- :mod:`namcore.training.lock`: the OS lock that keeps two processes off one folder;
- :mod:`namcore.training.scoring`: the one chunked evaluation loop;
- :mod:`namcore.training.evaluate`: :func:`evaluate`, a saved run on any backend;
- :mod:`namcore.training.reproduce`: :func:`reproduce`, the grid of models x tasks (its
  folder rules in :mod:`namcore.training.reproduce_folder`), and
  :mod:`namcore.training.report`, its ``results.md`` and plot beside the paper's Table 2
  (:mod:`namcore.training.paper`).

Importing this package imports neither torch nor jax.
"""

from __future__ import annotations

from .engine import FRAMEWORKS, Engine
from .errors import Interrupted, TrainingError
from .evaluate import evaluate
from .presets import PRESETS, Preset, get_preset, model_config
from .reproduce import reproduce
from .run_folder import RunFolder
from .trainer import train

__all__ = [
    "FRAMEWORKS",
    "Interrupted",
    "PRESETS",
    "Engine",
    "Preset",
    "RunFolder",
    "TrainingError",
    "evaluate",
    "get_preset",
    "model_config",
    "reproduce",
    "train",
]
