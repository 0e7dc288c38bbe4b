"""NAM as a classifier's memory: generalized few-shot learning, NAM against cosine.

The paper's abstract says that on N-way K-shot learning NAM is "more effective at
reducing false positives compared to the baseline cosine classifier". :func:`run`
measures that claim: it trains a feature MLP and a cosine classifier on the base
classes (stage 1), then NAM's weight generator on episodes (stage 2), and scores both
classifiers on the same 5-way 1-shot and 5-shot test episodes over base and novel
classes together.

- :mod:`~namcore.fewshot.data`: the procedural stroke images and scikit-learn's digits;
- :mod:`~namcore.fewshot.classifier`: both classifiers, written against the array API;
- :mod:`~namcore.fewshot.episodes`: episodes, metrics and 95% confidence intervals;
- :mod:`~namcore.fewshot.train`: the two stages on PyTorch or JAX;
- :mod:`~namcore.fewshot.evaluate` and :mod:`~namcore.fewshot.report`: scoring and
  the files.

Importing this package imports neither torch nor jax.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from namcore.training.errors import TrainingError

from .data import DATASETS, FewShotData, digits, synthetic
from .presets import PRESETS, FewShotPreset, get_preset
from .report import FILES
from .train import FRAMEWORKS

__all__ = ["DATASETS", "FILES", "FRAMEWORKS", "PRESETS", "check_out", "run"]

_NEEDS = {"torch": ("torch",), "jax": ("jax", "optax")}


def check_out(out: str | Path, *, overwrite: bool = False) -> None:
    """``TrainingError`` unless results may be written into the folder ``out``.

    ``out`` may be missing or empty; a folder holding anything needs ``overwrite``
    (which replaces the report's files and leaves everything else alone).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_out(folder / "new")
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> check_out(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: --out ... is not empty; pass --overwrite ...
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise TrainingError(
            f"--out {out} is not empty; pass --overwrite to replace its results or "
            "choose an empty or new folder"
        )


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (one set to None in ``sys.modules`` cannot)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_arguments(data: str, preset: str, backend: str, seed: int) -> FewShotPreset:
    if data not in DATASETS:
        raise TrainingError(f"unknown data set {data!r}; choose from {', '.join(DATASETS)}")
    if preset not in PRESETS:
        raise TrainingError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if backend not in FRAMEWORKS:
        raise TrainingError(
            f"cannot train with backend {backend!r}; choose from {', '.join(FRAMEWORKS)}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TrainingError(f"seed must be a non-negative int, got {seed!r}")
    missing = [m for m in _NEEDS[backend] if not _installed(m)]
    if data == "digits" and not _installed("sklearn"):
        raise TrainingError(
            "the digits data set needs scikit-learn, which is not installed: "
            "pip install 'namcore[fewshot]'"
        )
    if missing:
        raise TrainingError(
            f"backend {backend!r} needs {', '.join(missing)}, not installed: "
            f"pip install 'namcore[{backend}]'"
        )
    return get_preset(preset)


def _load(data: str, p: FewShotPreset, seed: int) -> FewShotData:
    if data == "digits":
        return digits(seed=seed)
    return synthetic(
        n_base=p.n_base,
        n_novel=p.n_novel,
        base_train=p.base_train,
        base_test=p.base_test,
        novel_per_class=p.novel_per_class,
        seed=seed,
    )


def run(
    data: str = "synthetic",
    preset: str = "quick",
    backend: str = "torch",
    out: str | Path | None = None,
    *,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Train both stages, score cosine and NAM on test episodes, write the report.

    Parameters
    ----------
    data : {"synthetic", "digits"}
        The procedural stroke images (64 base, 20 novel classes at ``quick``), or
        scikit-learn's digits (0-4 base, 5-9 novel; needs ``namcore[fewshot]``).
    preset : {"smoke", "quick"}
        Sizes and schedules (:mod:`namcore.fewshot.presets`).
    backend : {"torch", "jax"}
        The library that trains; scoring runs the same array-API code on NumPy.
    out : path-like, optional
        Folder for ``results.json``, ``results.md`` and ``fewshot.png``; nothing is
        written when None. It must be missing or empty unless ``overwrite``.
    seed : int
        Seed of the data, the initialisation and the episodes.
    overwrite : bool
        Replace the report files of a folder that is not empty.
    progress : bool
        tqdm bars for the training stages and the test episodes.
    command : str, optional
        The command line, recorded in the report.

    Returns
    -------
    dict
        The contents of ``results.json``: the settings, stage 1's base accuracy and,
        per shot count, each method's metrics (``mean`` and ``ci95``) and NAM's mean
        gates. The trained parameters are not kept; :mod:`namcore.fewshot.train`
        trains and returns them.

    Raises
    ------
    TrainingError
        A bad argument, a missing library, or an ``out`` that may not be written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "fs"
    >>> results = run("synthetic", "smoke", "torch", folder)  # doctest: +SKIP
    >>> sorted(results["results"]), sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
    (['1-shot', '5-shot'], ['fewshot.png', 'results.json', 'results.md'])
    >>> run("cifar", "smoke")
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: unknown data set 'cifar'; choose from synthetic, digits
    """
    from .classifier import features, init_params
    from .evaluate import evaluate
    from .report import write_all
    from .train import train_stage1, train_stage2

    p = _check_arguments(data, preset, backend, seed)
    if out is not None:
        check_out(out, overwrite=overwrite)
    start = time.perf_counter()
    ds = _load(data, p, seed)
    params = init_params(
        n_pixels=ds.n_pixels,
        hidden=p.hidden,
        dim=p.dim,
        n_base=ds.n_base,
        gate_hidden=p.gate_hidden,
        seed=seed,
    )
    params = train_stage1(
        params,
        ds.base_train_x,
        ds.base_train_y,
        backend,
        steps=p.stage1_steps,
        batch=p.stage1_batch,
        lr=p.lr,
        weight_decay=p.weight_decay,
        seed=seed,
        progress=progress,
    )
    train_f = features(params, ds.base_train_x)
    base = (features(params, ds.base_test_x), ds.base_test_y)
    novel = (features(params, ds.novel_x), ds.novel_y)
    stage1 = _base_accuracy(params, base)
    way = min(p.way, ds.n_novel)
    train_way = min(p.way, ds.n_base // 2)
    rows: dict[str, Any] = {}
    for shot in p.shots:
        trained = train_stage2(
            params,
            train_f,
            ds.base_train_y,
            backend,
            way=train_way,
            shot=shot,
            queries=p.queries,
            steps=p.stage2_steps,
            batch=p.stage2_batch,
            lr=p.lr,
            seed=seed,
            progress=progress,
        )
        rows[f"{shot}-shot"] = evaluate(
            trained,
            base,
            novel,
            way=way,
            shot=shot,
            queries=p.queries,
            episodes=p.episodes,
            seed=seed,
            progress=progress,
        )
    import namcore

    results: dict[str, Any] = {
        "namcore_version": namcore.__version__,
        "data": data,
        "preset": preset,
        "backend": backend,
        "seed": seed,
        "command": command,
        "setup": {
            "n_base": ds.n_base,
            "n_novel": ds.n_novel,
            "image_shape": list(ds.image_shape),
            "base_train_images": len(ds.base_train_y),
            "way": way,
            "train_way": train_way,
            "queries_per_class": p.queries,
            "base_queries": way * p.queries,
            "episodes": p.episodes,
            "features": f"MLP {ds.n_pixels}-{p.hidden}-{p.dim} (ReLU hidden layer)",
            "evaluated_with": "numpy",
        },
        "stage1": {"base_test_accuracy": round(stage1, 5)},
        "results": rows,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    if out is not None:
        write_all(results, out)
    return results


def _base_accuracy(params: dict[str, Any], base: tuple[Any, Any]) -> float:
    """Stage 1's accuracy on held-out base images (cosine classifier, base classes only)."""
    from .classifier import cosine_scores

    scores = cosine_scores(base[0], params["base.w"], params["scale"])
    return float((scores.argmax(-1) == base[1]).mean())
