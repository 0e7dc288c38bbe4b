"""Data-parallel training on the frameworks' own machinery: torch DDP and JAX sharding.

The global batch stays the preset's and the data of step ``s`` stays fixed by
``(seed, s)``; only the rows are split. So an ``N``-way run takes the same steps as a
one-way run, and its metrics agree within float rounding.

- **torch**: ``N`` processes in a ``torch.distributed`` group (gloo on the CPU, NCCL on
  GPUs), launched by :func:`launch_torch` (``namcore train --nproc N``) or by
  ``torchrun`` (a ``WORLD_SIZE`` in the environment: :func:`join_torchrun`). Each
  rank runs :class:`~namcore.training._torch.TorchDDPEngine`,
  ``DistributedDataParallel`` over its contiguous share of the rows. Rank 0 alone
  evaluates and writes the run folder; it sends the others the run's settings and the
  restored state before the first step (:func:`share`), so ``--resume`` works whatever
  ``N`` wrote the checkpoint.
- **JAX**: one process, the batch's rows sharded over ``N`` devices of a mesh and the
  parameters replicated (:class:`~namcore.training._jax.JAXShardedEngine`); XLA inserts
  the reductions. On a
  CPU, ``N`` host devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
  before JAX starts (:func:`prepare_jax` sets it when JAX is not imported yet).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import TrainingError

__all__ = [
    "active",
    "join_torchrun",
    "launch_torch",
    "prepare_jax",
    "rank",
    "share",
]

_HOST_DEVICES = "--xla_force_host_platform_device_count"


def active() -> bool:
    """Whether this process is one rank of a torch.distributed group of several."""
    if "torch.distributed" not in sys.modules:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a group)."""
    if not active():
        return 0
    import torch.distributed as dist

    return int(dist.get_rank())


def share(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (``broadcast_object_list``); ``value`` itself alone."""
    if not active():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _check_nproc(nproc: int) -> None:
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise TrainingError(f"--nproc must be a positive integer, got {nproc!r}")


def join_torchrun() -> bool:
    """Join the group ``torchrun`` describes in the environment; whether there is one."""
    if active() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return active()
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(minutes=30))
    return True


def _worker(index: int, nproc: int, folder: str, train: Callable[..., Any], kwargs: dict) -> None:
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(index % torch.cuda.device_count())
    else:  # the cores split between the ranks, as torchrun's OMP_NUM_THREADS=1 intends
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    dist.init_process_group(
        backend,
        init_method=f"file://{folder}/store",
        rank=index,
        world_size=nproc,
        timeout=timedelta(minutes=30),
    )
    try:
        lines = train(**{**kwargs, "progress": kwargs.get("progress", True) and index == 0})
        if index == 0:
            Path(folder, "lines.json").write_text(json.dumps(lines))
    finally:
        dist.destroy_process_group()


def launch_torch(nproc: int, train: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run ``train(**kwargs)`` in ``nproc`` processes of one group; rank 0's result.

    A rank that fails stops the others (``torch.multiprocessing`` terminates them),
    and the failure becomes a one-line :class:`TrainingError`; the checkpoints rank 0
    committed before stay resumable.
    """
    _check_nproc(nproc)
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="namcore-ddp-") as folder:
        try:
            mp.start_processes(
                _worker,
                args=(nproc, folder, train, kwargs),
                nprocs=nproc,
                join=True,
                start_method="spawn",
            )
        except mp.ProcessRaisedException as error:
            last = str(error).strip().splitlines()[-1]
            raise TrainingError(f"rank {error.error_index} of {nproc} failed: {last}") from None
        except mp.ProcessExitedException as error:
            raise TrainingError(
                f"rank {error.error_index} of {nproc} died (exit code {error.exit_code}); "
                "the other ranks were stopped, and the last checkpoint written stays resumable"
            ) from None
        return json.loads(Path(folder, "lines.json").read_text())


def prepare_jax(nproc: int) -> None:
    """Ask for ``nproc`` host devices if JAX has not started; refuse if it has too few."""
    _check_nproc(nproc)
    if nproc == 1:
        return
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if _HOST_DEVICES not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_HOST_DEVICES}={nproc}".strip()
    import jax

    if jax.device_count() < nproc:
        raise TrainingError(
            f"--nproc {nproc}: JAX sees {jax.device_count()} device(s); on a CPU start Python "
            f"with XLA_FLAGS={_HOST_DEVICES}={nproc} (set before JAX is imported)"
        )


def engine_factory(backend: str, factory: Callable[..., Any], nproc: int) -> Callable[..., Any]:
    """The engine factory of a data-parallel run (``factory`` itself for one process)."""
    if backend == "torch" and active():
        from ._torch import TorchDDPEngine

        return TorchDDPEngine
    if backend == "jax" and nproc > 1:
        from ._jax import JAXShardedEngine

        return lambda config, preset, seed: JAXShardedEngine(config, preset, seed, nproc)
    return factory


class Handoff:
    """What rank 0 sends the other ranks once, before the first step: the plan or its error."""

    def __init__(self) -> None:
        self.sent = not active()

    def send(self, run: Any, config: Any, start: int, end: int, engine: Any) -> None:
        """The run's settings, its first and last step and the restored state."""
        if self.sent:
            return
        state = (engine.params(), engine.optimizer_arrays()) if start else (None, None)
        share(("plan", run, config, start, end, *state))
        self.sent = True

    def fail(self, error: BaseException) -> None:
        """Tell the waiting ranks that rank 0 stopped before the first step."""
        if not self.sent:
            share(("error", str(error) or type(error).__name__))
            self.sent = True


def follow(factory: Callable[..., Any], task: str) -> list[dict[str, Any]]:
    """A rank other than 0: train in step with rank 0, writing and scoring nothing."""
    from .data import train_batch

    kind, *payload = share(None)
    if kind == "error":
        raise TrainingError(f"rank 0 stopped: {payload[0]}")
    run, config, start, end, params, optimizer = payload
    engine = factory(config, run.values, run.seed)
    if params is not None:
        engine.load(params, optimizer)
    for step in range(start, end):
        batch = train_batch(task, run.values, run.seed, step)
        lr = run.values.lr_at(step)
        engine.train_step(batch.inputs, batch.targets, batch.mask, batch.loss_mask, lr, step)
    return []
