"""Scoring a run on Dask: a large generated test set, one task per chunk, on any cluster.

Each chunk of a split is one Dask task that generates its own samples (from a seed
derived from the task, split and chunk index, so nothing but a few integers and the
weights travels to the workers), runs namcore's NumPy model on them and returns
per-length counts of right and total samples. The counts are summed on the client.
One task per chunk keeps the graph small: running the model on Dask arrays instead
would make tens of tasks per time step of the recurrence.

The scores depend on ``size`` and ``chunk`` (which samples are drawn), never on the
scheduler or the number of workers.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from namcore import tasks

from .data import split_task
from .scoring import Counts, length_counts, merge_counts

__all__ = ["chunk_seed", "score_chunk", "score_splits"]


def chunk_seed(task: str, split: str, index: int) -> int:
    """Seed of chunk ``index`` of ``split``: the same on every machine."""
    return zlib.crc32(f"eval:{task}:{split}:chunk{index}".encode())


def score_chunk(
    params: Mapping[str, np.ndarray], config: Any, task: str, split: str, count: int, index: int
) -> Counts:
    """Generate chunk ``index`` (``count`` samples) of ``split`` and score the model on it.

    Returns ``{length: (right, total)}``.
    """
    from namcore.models import forward

    low, high = tasks.splits(task)[split]
    batch = split_task(task, split).generate(count, low, high, seed=chunk_seed(task, split, index))
    predictions = np.argmax(forward(params, batch.inputs, batch.mask, config=config), axis=-1)
    return length_counts(predictions, batch)


def score_splits(
    task: str,
    splits: list[str],
    params: Mapping[str, np.ndarray],
    config: Any,
    *,
    size: int,
    chunk: int,
    scheduler: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score every split on ``size`` generated samples, in chunks of ``chunk``, with Dask.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        ``None``: Dask's local threaded scheduler. A string: the address of a
        ``dask.distributed`` scheduler (``"tcp://host:8786"``) to connect to. A
        ``Client``: use it as it is.
    progress : bool
        Show Dask's own progress bar (``dask.diagnostics.ProgressBar`` locally,
        ``distributed.progress`` on a cluster).
    """
    import dask

    weights = dask.delayed(dict(params), pure=True, traverse=False)
    jobs: list[tuple[str, Any]] = []
    for split in splits:
        for index, start in enumerate(range(0, size, chunk)):
            count = min(chunk, size - start)
            jobs.append(
                (
                    split,
                    dask.delayed(score_chunk, pure=True)(
                        weights, config, task, split, count, index
                    ),
                )
            )
    parts = _compute([job for _, job in jobs], scheduler, progress)
    return {
        split: merge_counts([p for (name, _), p in zip(jobs, parts, strict=True) if name == split])
        for split in splits
    }


def _compute(jobs: list[Any], scheduler: Any, progress: bool) -> list[Counts]:
    import dask

    if scheduler is None:
        if not progress:
            return list(dask.compute(*jobs, scheduler="threads"))
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*jobs, scheduler="threads"))
    from distributed import Client
    from distributed import progress as show_progress

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.compute(jobs)
        if progress:
            show_progress(futures)
            print()
        return list(client.gather(futures))
    finally:
        if client is not scheduler:
            client.close()
