"""Scoring both classifiers on the same test episodes, with 95% confidence intervals.

The classifier code is the array-API code of :mod:`namcore.fewshot.classifier`; it
runs here on NumPy (float32), whichever library trained the parameters, so PyTorch
and JAX runs are scored by one implementation.

Examples
--------
>>> from namcore.fewshot.classifier import init_params
>>> rng = np.random.default_rng(0)
>>> p = init_params(n_pixels=4, hidden=4, dim=3, n_base=4, gate_hidden=2, seed=0)
>>> base = rng.random((20, 3)).astype(np.float32), np.repeat(np.arange(4), 5)
>>> novel = rng.random((30, 3)).astype(np.float32), np.repeat(np.arange(5), 6)
>>> out = evaluate(p, base, novel, way=5, shot=1, queries=2, episodes=10, seed=0)
>>> sorted(out["cosine"]), out["nam"]["novel"]["episodes"]
(['base', 'base_false_positives', 'both', 'novel', 'novel_false_positives'], 10)
>>> sorted(out)
['cosine', 'gates', 'nam', 'nam_minus_cosine']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .classifier import METHODS, episode_scores, gates
from .episodes import METRICS, episode_metrics, evaluation_episodes, interval

__all__ = ["evaluate"]


def evaluate(
    params: Mapping[str, np.ndarray],
    base: tuple[np.ndarray, np.ndarray],
    novel: tuple[np.ndarray, np.ndarray],
    *,
    way: int,
    shot: int,
    queries: int,
    episodes: int,
    seed: int,
    chunk: int = 50,
    progress: bool = False,
) -> dict[str, Any]:
    """Metrics of the cosine and NAM classifiers on ``episodes`` test episodes.

    Parameters
    ----------
    params : mapping of ndarray
        Trained parameters (stage 1 and the stage-2 generator of this shot count).
    base, novel : (features, labels)
        Features (N, d) and labels of the held-out base images and of the novel images.
    way, shot, queries : int
        Episode shape; each episode has ``way * queries`` novel and as many base queries.
    episodes : int
        Number of episodes; both methods see the same ones.
    seed : int
        Seed of the episodes.
    chunk : int
        Episodes scored at once.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    dict
        ``{method: {metric: {"mean", "ci95", "episodes"}}}`` for each method of
        :data:`~namcore.fewshot.classifier.METHODS` and metric of
        :data:`~namcore.fewshot.episodes.METRICS`; ``"nam_minus_cosine"``: the same for
        the per-episode difference of the two (a paired interval); and ``"gates"``: the
        mean ``p_write`` and ``p_erase`` of the NAM generator over the support examples.
    """
    ep = evaluation_episodes(
        novel[1], base[1], n_episodes=episodes, way=way, shot=shot, queries=queries, seed=seed
    )
    w = np.asarray(params["base.w"], dtype=np.float32)
    per: dict[str, dict[str, list[np.ndarray]]] = {m: {k: [] for k in METRICS} for m in METHODS}
    p_w, p_e = [], []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc=f"episodes, {shot}-shot", dynamic_ncols=True, leave=False)
    for start in range(0, episodes, chunk):
        part = slice(start, min(start + chunk, episodes))
        sub = ep.subset(part)
        support = novel[0][sub.support]
        queries_f = np.concatenate([novel[0][sub.novel_queries], base[0][sub.base_queries]], 1)
        weights = np.broadcast_to(w, (support.shape[0], *w.shape))
        for method in METHODS:
            scores = episode_scores(params, method, weights, support, sub.onehot, queries_f)
            for key, values in episode_metrics(np.asarray(scores), w.shape[0], sub).items():
                per[method][key].append(values)
        gw, ge = gates(params, support)
        p_w.append(np.asarray(gw).ravel())
        p_e.append(np.asarray(ge).ravel())
        if bar is not None:
            bar.update(part.stop - part.start)
    if bar is not None:
        bar.close()
    out: dict[str, Any] = {}
    for method in METHODS:
        out[method] = {}
        for key in METRICS:
            mean, half = interval(np.concatenate(per[method][key]))
            out[method][key] = {"mean": mean, "ci95": half, "episodes": episodes}
    # Both methods score the same episodes: the interval of their per-episode
    # difference is narrower than either method's own and tells whether they differ.
    out["nam_minus_cosine"] = {}
    for key in METRICS:
        diff = np.concatenate(per["nam"][key]) - np.concatenate(per["cosine"][key])
        mean, half = interval(diff)
        out["nam_minus_cosine"][key] = {"mean": mean, "ci95": half, "episodes": episodes}
    out["gates"] = {
        "p_write": round(float(np.mean(np.concatenate(p_w))), 4),
        "p_erase": round(float(np.mean(np.concatenate(p_e))), 4),
    }
    return out
