"""Episodes of generalized few-shot learning, their metrics and 95% confidence intervals.

A test episode (:func:`evaluation_episodes`) draws ``way`` novel classes, ``shot`` support
and ``queries`` query images of each, and as many base queries (held-out images of
the base classes). A training episode of stage 2 (:func:`training_episodes`) has no novel
class to use, so, as in Gidaris & Komodakis, ``way`` base classes play the novel ones
and are left out of the base weights of that episode.

Labels of an episode's queries run over the base classes first (``0..C-1``) and then
the episode's novel classes (``C..C+way-1``), the order of
:func:`~namcore.fewshot.classifier.episode_scores`.

Examples
--------
>>> import numpy as np
>>> labels = np.repeat(np.arange(4), 10)
>>> ep = evaluation_episodes(labels, np.repeat(np.arange(3), 5), n_episodes=2, way=2, shot=1,
...                    queries=3, seed=0)
>>> ep.support.shape, ep.onehot.shape, ep.novel_queries.shape, ep.base_queries.shape
((2, 2), (2, 2, 2), (2, 6), (2, 6))
>>> interval(np.array([0.5, 0.7, 0.6]))
(0.6, 0.11316)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "METRICS",
    "Episodes",
    "episode_metrics",
    "interval",
    "evaluation_episodes",
    "training_episodes",
]

#: The metrics of an episode, in report order: accuracy on novel queries among the
#: novel classes, on base queries among the base classes, on all queries among all
#: classes; the share of novel queries called a base class ("base false positives")
#: and of base queries called a novel class ("novel false positives").
METRICS = ("novel", "base", "both", "base_false_positives", "novel_false_positives")


@dataclass(frozen=True)
class Episodes:
    """Indices of a batch of episodes (B episodes), into the arrays they were drawn from.

    Parameters
    ----------
    support : ndarray (B, way * shot)
        Support images.
    onehot : ndarray (B, way * shot, way)
        Their one-hot labels among the episode's novel classes (float32).
    novel_queries, novel_labels : ndarray (B, way * queries)
        Novel query images and their labels among the episode's novel classes.
    base_queries, base_labels : ndarray (B, n_base_queries)
        Base query images and their labels among the episode's base classes.
    base_classes : ndarray (B, C) or None
        The base classes kept in each episode (training episodes); None: all of them.
    """

    support: np.ndarray
    onehot: np.ndarray
    novel_queries: np.ndarray
    novel_labels: np.ndarray
    base_queries: np.ndarray
    base_labels: np.ndarray
    base_classes: np.ndarray | None = None

    def subset(self, part: slice) -> Episodes:
        """The episodes ``part`` of this batch."""
        kept = None if self.base_classes is None else self.base_classes[part]
        return Episodes(
            self.support[part],
            self.onehot[part],
            self.novel_queries[part],
            self.novel_labels[part],
            self.base_queries[part],
            self.base_labels[part],
            kept,
        )


def _pick(
    rng: np.random.Generator, by_class: list[np.ndarray], classes: np.ndarray, shot: int, q: int
) -> tuple[np.ndarray, np.ndarray]:
    """``shot`` support and ``q`` query indices of each class, distinct within a class."""
    support, query = [], []
    for c in classes:
        chosen = rng.choice(by_class[c], shot + q, replace=False)
        support.append(chosen[:shot])
        query.append(chosen[shot:])
    return np.concatenate(support), np.concatenate(query)


def _check(by_class: list[np.ndarray], way: int, need: int, what: str) -> None:
    if len(by_class) < way:
        raise ValueError(
            f"{what}: {way}-way episodes need {way} classes, there are {len(by_class)}"
        )
    smallest = min(len(idx) for idx in by_class)
    if smallest < need:
        raise ValueError(f"{what}: a class has {smallest} images, an episode needs {need}")


def evaluation_episodes(
    novel_labels: np.ndarray,
    base_labels: np.ndarray,
    *,
    n_episodes: int,
    way: int,
    shot: int,
    queries: int,
    seed: int,
) -> Episodes:
    """Test episodes: ``way`` novel classes and ``way * queries`` base queries each.

    ``novel_labels`` and ``base_labels`` are the labels of the novel images and of the
    held-out base images; the base queries are drawn uniformly from the latter.
    """
    rng = np.random.default_rng((seed, 101, way, shot))
    by_class = [np.flatnonzero(novel_labels == c) for c in range(int(novel_labels.max()) + 1)]
    _check(by_class, way, shot + queries, "test episodes")
    eye = np.eye(way, dtype=np.float32)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "o", "nq", "nl", "bq", "bl")}
    for _ in range(n_episodes):
        classes = rng.choice(len(by_class), way, replace=False)
        s, nq = _pick(rng, by_class, classes, shot, queries)
        bq = rng.choice(len(base_labels), way * queries, replace=False)
        rows["s"].append(s)
        rows["o"].append(np.repeat(eye, shot, axis=0))
        rows["nq"].append(nq)
        rows["nl"].append(np.repeat(np.arange(way), queries))
        rows["bq"].append(bq)
        rows["bl"].append(base_labels[bq])
    s, o, nq, nl, bq, bl = (np.stack(v) for v in rows.values())
    return Episodes(s, o, nq, nl, bq, bl)


def training_episodes(
    labels: np.ndarray, *, n_episodes: int, way: int, shot: int, queries: int, seed: int, step: int
) -> Episodes:
    """Stage-2 episodes from base images: ``way`` base classes act as novel classes.

    The other ``C - way`` classes are the episode's base classes (``base_classes``,
    ascending; labels are positions in it), with ``way * queries`` base queries drawn
    from their images. The same ``(seed, step)`` gives the same episodes.
    """
    rng = np.random.default_rng((seed, 202, step))
    n_classes = int(labels.max()) + 1
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    _check(by_class, way + 1, shot + queries, "training episodes")
    eye = np.eye(way, dtype=np.float32)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "o", "nq", "nl", "bq", "bl", "bc")}
    for _ in range(n_episodes):
        fake = rng.choice(n_classes, way, replace=False)
        kept = np.setdiff1d(np.arange(n_classes), fake)
        s, nq = _pick(rng, by_class, fake, shot, queries)
        pool = np.flatnonzero(np.isin(labels, kept))
        bq = rng.choice(pool, way * queries, replace=False)
        rows["s"].append(s)
        rows["o"].append(np.repeat(eye, shot, axis=0))
        rows["nq"].append(nq)
        rows["nl"].append(np.repeat(np.arange(way), queries))
        rows["bq"].append(bq)
        rows["bl"].append(np.searchsorted(kept, labels[bq]))
        rows["bc"].append(kept)
    s, o, nq, nl, bq, bl, bc = (np.stack(v) for v in rows.values())
    return Episodes(s, o, nq, nl, bq, bl, bc)


def episode_metrics(scores: np.ndarray, n_base: int, ep: Episodes) -> dict[str, np.ndarray]:
    """Each metric of :data:`METRICS` per episode (B,), from scores (B, Q, C + N).

    The queries of ``scores`` are the novel queries first, then the base queries.

    Examples
    --------
    >>> scores = np.array([[[0.9, 0.1, 0.5], [0.1, 0.2, 0.8]]])   # C=2 base, N=1 novel
    >>> ep = Episodes(np.zeros((1, 1), int), np.ones((1, 1, 1)), np.zeros((1, 1), int),
    ...               np.zeros((1, 1), int), np.zeros((1, 1), int), np.zeros((1, 1), int))
    >>> [float(v[0]) for v in episode_metrics(scores, 2, ep).values()]
    [1.0, 0.0, 0.0, 1.0, 1.0]
    """
    n_novel_q = ep.novel_labels.shape[1]
    novel, base = scores[:, :n_novel_q, :], scores[:, n_novel_q:, :]
    novel_all = np.argmax(novel, axis=-1)
    base_all = np.argmax(base, axis=-1)
    right_novel = novel_all == ep.novel_labels + n_base
    right_base = base_all == ep.base_labels
    return {
        "novel": np.mean(np.argmax(novel[..., n_base:], -1) == ep.novel_labels, axis=1),
        "base": np.mean(np.argmax(base[..., :n_base], -1) == ep.base_labels, axis=1),
        "both": np.mean(np.concatenate([right_novel, right_base], axis=1), axis=1),
        "base_false_positives": np.mean(novel_all < n_base, axis=1),
        "novel_false_positives": np.mean(base_all >= n_base, axis=1),
    }


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval: ``1.96 * std / sqrt(n)``.

    ``std`` is the sample standard deviation (``ddof=1``); one value has no interval
    (half-width 0). Both are rounded to 5 decimals.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        raise ValueError("interval: no values")
    half = 1.96 * float(np.std(values, ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    return round(float(np.mean(values)), 5), round(half, 5)
