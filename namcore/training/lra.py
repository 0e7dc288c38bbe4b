"""The ``lra`` grid of :mod:`~namcore.training.reproduce`: Table 1's encoders on ListOps.

The three encoders (:data:`LRA_MODELS`) train with shared hyperparameters on the task
and preset :data:`LRA_PLAN` picks, and :func:`step_times` times a training step of
each at several sequence lengths, for the speed ratios beside the paper's Table 1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from namcore import tasks

from .engine import engine_class
from .presets import get_preset, model_config

__all__ = ["LRA_MODELS", "LRA_PLAN", "STEP_TIME_LENGTHS", "step_times"]

#: The LRA grid (``--grid lra``): Table 1's three encoders, with shared hyperparameters.
LRA_MODELS: tuple[str, ...] = ("transformer", "nam-transformer", "linear-transformer")
#: What ``--grid lra --preset NAME`` trains: (ListOps task, preset). Only ``paper`` uses
#: LRA's lengths (500–2000, with :data:`~namcore.training.presets.LRA_PRESETS`'s
#: ``lra-paper``); the CPU presets train ``listops-short`` (lengths 32–128).
LRA_PLAN: dict[str, tuple[str, str]] = {
    "smoke": ("listops-short", "smoke"),
    "quick": ("listops-short", "quick"),
    "paper": ("listops", "lra-paper"),
}
#: Padded sequence lengths of :func:`step_times`, by the preset the grid trains with.
STEP_TIME_LENGTHS: dict[str, tuple[int, ...]] = {
    "smoke": (32, 64),
    "quick": (64, 128, 256, 512, 1024),
    "lra-paper": (256, 512, 1024, 2000),
}


def step_times(
    models: Sequence[str],
    task: str,
    preset: str,
    backend: str,
    lengths: Sequence[int],
    *,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """Seconds per training step of each model, at each padded sequence length.

    Each model gets the config :func:`~namcore.training.presets.model_config` builds
    for ``task`` and ``preset`` (learned positions widened to the length when needed)
    and trains on a random batch of the preset's size with every position real: one
    step to warm up (JAX compiles), then the median of ``repeats`` steps. A length that
    fails (out of memory) gets None.

    Returns
    -------
    dict
        ``{model: {str(length): seconds or None}}``.

    Examples
    --------
    >>> times = step_times(["nam-transformer"], "listops-short", "smoke", "torch", [16])
    >>> list(times["nam-transformer"]), times["nam-transformer"]["16"] > 0
    (['16'], True)
    """
    p = get_preset(preset)
    factory = engine_class(backend)
    rng = np.random.default_rng(seed)
    vocab = tasks.get(task).vocab_size
    out: dict[str, dict[str, float | None]] = {}
    for model in models:
        base = model_config(model, task, p)
        out[model] = {}
        for length in lengths:
            config = base
            if (
                getattr(config, "positions", None) == "learned"
                and getattr(config, "max_length", length) < length
            ):
                config = config.replace(max_length=length)
            inputs = rng.integers(len(tasks.SPECIALS), vocab, size=(p.batch_size, length))
            mask = np.ones(inputs.shape, dtype=bool)
            loss_mask = np.zeros(inputs.shape, dtype=bool)
            loss_mask[:, -2] = True
            seconds: list[float] = []
            try:
                engine = factory(config, p, seed)
                for step in range(repeats + 1):
                    start = time.perf_counter()
                    engine.train_step(inputs, inputs, mask, loss_mask, p.lr, step)
                    seconds.append(time.perf_counter() - start)
            except (MemoryError, RuntimeError, ValueError):
                out[model][str(length)] = None
                continue
            out[model][str(length)] = float(np.median(seconds[1:]))
    return out
