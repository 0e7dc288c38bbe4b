"""The two training stages, on PyTorch or JAX, over the array-API classifier code.

Stage 1 (:func:`train_stage1`) fits the feature MLP, the base weights and the scale
to the base classes with the cosine classifier. Stage 2 (:func:`train_stage2`) keeps
those fixed and fits the NAM weight generator (the ``p_w`` and ``p_e`` MLPs and its
scale) on episodes where some base classes act as novel ones. Both use Adam (optax
on JAX) with PyTorch's coupled weight decay, and halve the learning rate at two
thirds of the steps. The loss is the same array-API function on either library; the
parameters go in and come back as NumPy float32 arrays.

Examples
--------
>>> import numpy as np
>>> from namcore.fewshot.classifier import init_params
>>> params = init_params(n_pixels=4, hidden=8, dim=4, n_base=2, gate_hidden=4, seed=0)
>>> x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
>>> y = (x[:, 0] > 0.5).astype(int)
>>> trained = train_stage1(params, x, y, "torch", steps=5, batch=8, lr=1e-2,
...                        weight_decay=0.0, seed=0)  # doctest: +SKIP
>>> sorted(trained) == sorted(params)  # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .classifier import cosine_scores, cross_entropy, episode_scores, features
from .episodes import training_episodes

__all__ = ["FRAMEWORKS", "stage2_batch", "train_stage1", "train_stage2"]

#: The libraries that can train.
FRAMEWORKS = ("torch", "jax")

Loss = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
Batches = Callable[[int], dict[str, np.ndarray]]


def _stage1_loss(params: Mapping[str, Any], batch: Mapping[str, Any]) -> Any:
    logits = cosine_scores(features(params, batch["x"]), params["base.w"], params["scale"])
    return cross_entropy(logits, batch["onehot"])


def _stage2_loss(params: Mapping[str, Any], batch: Mapping[str, Any]) -> Any:
    scores = episode_scores(
        params, "nam", batch["base"], batch["support"], batch["onehot"], batch["queries"]
    )
    return cross_entropy(scores, batch["targets"])


def _lr(lr: float, step: int, steps: int) -> float:
    return lr * (0.5 if step >= (2 * steps) // 3 else 1.0)


def _bar(steps: int, desc: str, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=steps, desc=desc, dynamic_ncols=True, leave=False)


def _fit_torch(
    loss_fn: Loss, params: dict[str, np.ndarray], names: list[str], batches: Batches, **kw: Any
) -> dict[str, np.ndarray]:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # These matrices are too small to gain from threads, and on a busy machine the
        # threads' synchronisation costs ten times the work; restored below.
        torch.set_num_threads(1)
    try:
        return _torch_loop(loss_fn, params, names, batches, device, **kw)
    finally:
        torch.set_num_threads(threads)


def _torch_loop(
    loss_fn: Loss,
    params: dict[str, np.ndarray],
    names: list[str],
    batches: Batches,
    device: Any,
    **kw: Any,
) -> dict[str, np.ndarray]:
    import torch

    tensors = {
        k: torch.tensor(v, device=device, requires_grad=k in names) for k, v in params.items()
    }
    optimizer = torch.optim.Adam(
        [tensors[k] for k in names], lr=kw["lr"], weight_decay=kw["weight_decay"]
    )
    bar = _bar(kw["steps"], kw["desc"], kw["progress"])
    for step in range(kw["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = _lr(kw["lr"], step, kw["steps"])
        batch = {k: torch.from_numpy(v).to(device) for k, v in batches(step).items()}
        loss = loss_fn(tensors, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if bar is not None:
            bar.update()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
    if bar is not None:
        bar.close()
    return {k: v.detach().cpu().numpy().copy() for k, v in tensors.items()}


def _fit_jax(
    loss_fn: Loss, params: dict[str, np.ndarray], names: list[str], batches: Batches, **kw: Any
) -> dict[str, np.ndarray]:
    import jax
    import jax.numpy as jnp
    import optax

    trainable = {k: jnp.asarray(v) for k, v in params.items() if k in names}
    frozen = {k: jnp.asarray(v) for k, v in params.items() if k not in names}
    tx = optax.chain(optax.add_decayed_weights(kw["weight_decay"]), optax.scale_by_adam())
    state = tx.init(trainable)

    def step_fn(train: Any, state: Any, batch: Any, lr: Any) -> Any:
        loss, grads = jax.value_and_grad(lambda p: loss_fn({**frozen, **p}, batch))(train)
        direction, state = tx.update(grads, state, train)
        train = optax.apply_updates(train, jax.tree.map(lambda d: -lr * d, direction))
        return train, state, loss

    step_jit = jax.jit(step_fn)
    bar = _bar(kw["steps"], kw["desc"], kw["progress"])
    for step in range(kw["steps"]):
        batch = {k: jnp.asarray(v) for k, v in batches(step).items()}
        lr = jnp.float32(_lr(kw["lr"], step, kw["steps"]))
        trainable, state, loss = step_jit(trainable, state, batch, lr)
        if bar is not None:
            bar.update()
            bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
    if bar is not None:
        bar.close()
    out = {k: np.array(v) for k, v in frozen.items()}
    out.update({k: np.array(v) for k, v in trainable.items()})
    return {k: out[k] for k in params}


def _fit(framework: str, *args: Any, **kw: Any) -> dict[str, np.ndarray]:
    if framework == "torch":
        return _fit_torch(*args, **kw)
    if framework == "jax":
        return _fit_jax(*args, **kw)
    raise ValueError(
        f"cannot train with backend {framework!r}; choose from {', '.join(FRAMEWORKS)}"
    )


def train_stage1(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    framework: str,
    *,
    steps: int,
    batch: int,
    lr: float,
    weight_decay: float,
    seed: int,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Fit ``feat.*``, ``base.w`` and ``scale`` to the base images ``x`` (N, pixels), ``y``.

    Returns every parameter (the others unchanged) as NumPy float32 arrays.
    """
    n_classes = params["base.w"].shape[0]
    eye = np.eye(n_classes, dtype=np.float32)

    def batches(step: int) -> dict[str, np.ndarray]:
        idx = np.random.default_rng((seed, 303, step)).integers(0, len(y), batch)
        return {"x": x[idx], "onehot": eye[y[idx]]}

    names = [k for k in params if k.startswith("feat.") or k in ("base.w", "scale")]
    return _fit(
        framework,
        _stage1_loss,
        params,
        names,
        batches,
        steps=steps,
        lr=lr,
        weight_decay=weight_decay,
        desc=f"stage 1 ({framework})",
        progress=progress,
    )


def stage2_batch(
    params: Mapping[str, np.ndarray],
    feats: np.ndarray,
    labels: np.ndarray,
    *,
    n_episodes: int,
    way: int,
    shot: int,
    queries: int,
    seed: int,
    step: int,
) -> dict[str, np.ndarray]:
    """The arrays of one stage-2 step: support, one-hot, queries, base weights, targets.

    Queries are the novel queries then the base queries; ``targets`` are one-hot over
    the episode's kept base classes and then its ``way`` stand-in novel classes.

    Examples
    --------
    >>> from namcore.fewshot.classifier import init_params
    >>> p = init_params(n_pixels=4, hidden=4, dim=3, n_base=6, gate_hidden=2, seed=0)
    >>> feats = np.random.default_rng(0).random((60, 3)).astype(np.float32)
    >>> b = stage2_batch(p, feats, np.repeat(np.arange(6), 10), n_episodes=2, way=2,
    ...                  shot=1, queries=3, seed=0, step=0)
    >>> {k: v.shape for k, v in b.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'support': (2, 2, 3), 'onehot': (2, 2, 2), 'queries': (2, 12, 3), 'base': (2, 4, 3),
     'targets': (2, 12, 6)}
    """
    ep = training_episodes(
        labels, n_episodes=n_episodes, way=way, shot=shot, queries=queries, seed=seed, step=step
    )
    assert ep.base_classes is not None
    n_kept = ep.base_classes.shape[1]
    eye = np.eye(n_kept + way, dtype=np.float32)
    targets = np.concatenate([eye[ep.novel_labels + n_kept], eye[ep.base_labels]], axis=1)
    queries_idx = np.concatenate([ep.novel_queries, ep.base_queries], axis=1)
    return {
        "support": feats[ep.support],
        "onehot": ep.onehot,
        "queries": feats[queries_idx],
        "base": params["base.w"][ep.base_classes],
        "targets": targets,
    }


def train_stage2(
    params: dict[str, np.ndarray],
    feats: np.ndarray,
    labels: np.ndarray,
    framework: str,
    *,
    way: int,
    shot: int,
    queries: int,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Fit the NAM generator (``gen.*``) on episodes of the base features ``feats`` (N, d).

    The features, base weights and stage-1 scale stay as they are. Returns every
    parameter as NumPy float32 arrays.
    """

    def batches(step: int) -> dict[str, np.ndarray]:
        return stage2_batch(
            params,
            feats,
            labels,
            n_episodes=batch,
            way=way,
            shot=shot,
            queries=queries,
            seed=seed + 1000 * shot,
            step=step,
        )

    names = [k for k in params if k.startswith("gen.")]
    return _fit(
        framework,
        _stage2_loss,
        params,
        names,
        batches,
        steps=steps,
        lr=lr,
        weight_decay=0.0,
        desc=f"stage 2, {shot}-shot ({framework})",
        progress=progress,
    )
