"""Sizes and schedules of a few-shot run: the ``smoke`` and ``quick`` presets.

``smoke`` is for tests (seconds); ``quick`` is the documented run (minutes on a CPU):
64 base classes, 5-way 1-shot and 5-shot test episodes from 20 novel classes, 600
episodes each.

Examples
--------
>>> get_preset("quick").episodes
600
>>> get_preset("nope")
Traceback (most recent call last):
...
ValueError: unknown preset 'nope'; choose from smoke, quick
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "FewShotPreset", "get_preset"]


@dataclass(frozen=True)
class FewShotPreset:
    """One preset.

    Parameters
    ----------
    name : str
        Its name.
    n_base, n_novel, base_train, base_test, novel_per_class : int
        Sizes of the synthetic data (classes, images per class of each split); the
        digits data set has its own sizes.
    hidden, dim, gate_hidden : int
        Width of the feature MLP, feature dimension, width of the ``p_w``/``p_e`` MLPs.
    stage1_steps, stage1_batch : int
        Stage 1: Adam steps and images per step.
    stage2_steps, stage2_batch : int
        Stage 2 (per shot count): Adam steps and episodes per step.
    lr : float
        Adam's learning rate (halved at two thirds of each stage).
    weight_decay : float
        L2 penalty of stage 1.
    way, queries : int
        Novel classes per episode and queries per novel class; as many base queries.
    shots : tuple of int
        The shot counts evaluated (one stage-2 training each).
    episodes : int
        Test episodes per shot count.
    """

    name: str
    n_base: int
    n_novel: int
    base_train: int
    base_test: int
    novel_per_class: int
    hidden: int
    dim: int
    gate_hidden: int
    stage1_steps: int
    stage1_batch: int
    stage2_steps: int
    stage2_batch: int
    lr: float
    weight_decay: float
    way: int
    queries: int
    shots: tuple[int, ...]
    episodes: int


PRESETS: dict[str, FewShotPreset] = {
    "smoke": FewShotPreset(
        name="smoke",
        n_base=12,
        n_novel=6,
        base_train=25,
        base_test=8,
        novel_per_class=12,
        hidden=32,
        dim=16,
        gate_hidden=8,
        stage1_steps=30,
        stage1_batch=32,
        stage2_steps=6,
        stage2_batch=2,
        lr=3e-3,
        weight_decay=5e-4,
        way=5,
        queries=3,
        shots=(1, 5),
        episodes=12,
    ),
    "quick": FewShotPreset(
        name="quick",
        n_base=64,
        n_novel=20,
        base_train=200,
        base_test=40,
        novel_per_class=60,
        hidden=256,
        dim=128,
        gate_hidden=64,
        stage1_steps=3000,
        stage1_batch=128,
        stage2_steps=600,
        stage2_batch=8,
        lr=1e-3,
        weight_decay=5e-4,
        way=5,
        queries=15,
        shots=(1, 5),
        episodes=600,
    ),
}


def get_preset(name: str) -> FewShotPreset:
    """The preset called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
