"""The arguments of each ``namcore`` subcommand, with choices taken from the registries.

Model names come from :func:`namcore.models.names` (plug-ins included), backends
from :data:`namcore.backends.NAMES`, tasks, presets and grids from their modules,
so the help never lists a name that does not exist or misses one that does. Names
are checked by the command itself, which answers a bad one with a single line
naming the choices and exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from . import commands

__all__ = ["SUBCOMMANDS", "BadArgument"]


class BadArgument(Exception):
    """An argument refused while parsing; its text is the one line ``main`` prints.

    :func:`namcore.cli.main` prints it on stderr and returns 2, as the commands do
    for the names they check themselves.
    """


class _EvalBackend(argparse.Action):
    """``--eval-backend``: one of the evaluation backends, checked before any training.

    An unknown name lists the choices (it is not an extra to install); a known one
    that is not installed names its extra.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        from namcore.training import TrainingError
        from namcore.training.evaluate import require_eval_backend

        try:
            require_eval_backend(str(values), option_string or self.dest)
        except TrainingError as error:
            raise BadArgument(f"{parser.prog}: error: {error}") from None
        setattr(namespace, self.dest, values)


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


def _add_info(sub: Any) -> None:
    info = sub.add_parser(
        "info",
        help="versions and devices of namcore and each backend",
        description="Show versions of namcore and of each array library, "
        "and the devices each one sees.",
    )
    info.set_defaults(handler=commands.info)


def _add_check(sub: Any) -> None:
    from namcore import backends

    check = sub.add_parser(
        "check",
        help="compare every primitive and model on every backend with NumPy float64",
        description="Run each primitive (unit, write, read, and attention: plain, causal, "
        "with erase, decay and the gated delta rule) and a small configuration of each "
        "registered model on every installed backend (JAX also under jax.jit) from the "
        "same NumPy inputs, and compare with the NumPy float64 result. Prints a backend "
        "x case table and exits with status 1 if any backend disagrees.",
    )
    check.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends (default: all installed with a device), from: "
        + _names(backends.NAMES),
    )
    check.add_argument(
        "--dtypes",
        default="float32,float64",
        help="comma-separated dtypes to check (default: float32,float64)",
    )
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    check.add_argument(
        "--only",
        default=None,
        help="comma-separated parts of case names: run only the matching cases "
        "(e.g. 'model bag' for one model, 'attention' for attention's forms)",
    )
    check.add_argument(
        "--verbose",
        action="store_true",
        help="also print the per-backend error table of every case",
    )
    check.set_defaults(handler=commands.check)


def _add_compile_steps(parser: Any) -> None:
    parser.add_argument(
        "--compile-steps",
        action="store_true",
        help="--backend torch only: run the LSAM, NAM-TM and GRU steps through "
        "torch.compile (TorchBackend.compile_steps; about 0.43x the eager training step "
        "time at d_model 64 and 0.7x at 256, after a first step that compiles for 5 to 40 s)",
    )


def _add_train(sub: Any) -> None:
    from namcore import models, tasks
    from namcore.training import FRAMEWORKS, PRESETS

    train = sub.add_parser(
        "train",
        help="train a model on a task (PyTorch or JAX)",
        description="Train a model on an algorithmic task. The run folder gets run.json, "
        "metrics.jsonl (one line per evaluation), last/best/optimizer "
        "checkpoints (safetensors, written atomically); --resume continues it "
        "exactly. Errors exit with status 2 and change nothing on disk.",
    )
    train.add_argument(
        "--task", required=True, metavar="TASK", help="one of: " + _names(tasks.NAMES)
    )
    train.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="one of: " + _names(models.names()) + " (plug-ins included)",
    )
    train.add_argument("--backend", required=True, help="one of: " + _names(FRAMEWORKS))
    train.add_argument(
        "--preset",
        default=None,
        help=_names(PRESETS) + " (default: quick, or the run's own on --resume)",
    )
    train.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    train.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    train.add_argument(
        "--steps", type=int, default=None, help="total optimiser steps (default: the preset's)"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel ways: torch processes (gloo on CPU, NCCL on GPUs; under "
        "torchrun, its group) or JAX devices (host devices on a CPU); each step's batch "
        "is split, so results match --nproc 1 (default 1)",
    )
    _add_compile_steps(train)
    train.set_defaults(handler=commands.train)


def _add_eval(sub: Any) -> None:
    from namcore.training.evaluate import eval_backends

    evaluate = sub.add_parser(
        "eval",
        help="score a trained run on every split",
        description="Load the best (else last) checkpoint of a run on a backend, score it "
        "on every split of its task, print a table and write RUN/eval.json "
        "(accuracy per split and per input length).",
    )
    evaluate.add_argument("run", help="run folder written by namcore train")
    evaluate.add_argument(
        "--backend",
        default="numpy",
        help="one of: " + _names(eval_backends()) + " (default numpy)",
    )
    evaluate.add_argument(
        "--size", type=int, default=None, help="samples per split (default: the run's eval size)"
    )
    evaluate.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="samples per Dask task (--backend dask; default 1024)",
    )
    evaluate.add_argument(
        "--scheduler",
        default=None,
        help="dask.distributed scheduler address, e.g. tcp://host:8786 "
        "(--backend dask; default: local threads)",
    )
    evaluate.set_defaults(handler=commands.evaluate)


def _add_reproduce(sub: Any) -> None:
    from namcore.training import FRAMEWORKS, PRESETS
    from namcore.training.evaluate import eval_backends
    from namcore.training.reproduce import GRIDS

    repro = sub.add_parser(
        "reproduce",
        help="train and score a grid of models x tasks; report beside Table 2 (Table 1 for lra)",
        description="Train every model on every task (one run folder each under OUT/runs, "
        "resumable), score them, and write OUT/results.md (our sequence accuracy "
        "beside the paper's Table 2), OUT/results.json and "
        "OUT/accuracy_vs_length.png. Running it again on the same OUT resumes.",
    )
    repro.add_argument(
        "--preset",
        default="quick",
        help=_names(PRESETS) + " (default quick)",
    )
    repro.add_argument("--out", required=True, help="output folder, e.g. runs/repro")
    grids = "; ".join(
        f"{name}: {_names(grid_models)} on {_names(grid_tasks)}"
        for name, (grid_models, grid_tasks) in GRIDS.items()
    )
    repro.add_argument(
        "--grid",
        default=next(iter(GRIDS)),
        choices=tuple(GRIDS),
        help=f"{grids} (default: {next(iter(GRIDS))})",
    )
    repro.add_argument(
        "--models", default=None, help="comma-separated models (default: the grid's)"
    )
    repro.add_argument("--tasks", default=None, help="comma-separated tasks (default: the grid's)")
    repro.add_argument(
        "--backend",
        default=None,
        help="training backend, " + _names(FRAMEWORKS) + " (default: jax if installed)",
    )
    repro.add_argument(
        "--eval-backend",
        default=None,
        action=_EvalBackend,
        help="backend of the final scoring, one of: "
        + _names(eval_backends())
        + " (default: the training backend)",
    )
    repro.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    repro.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs trained at once, one process each (default: CPUs, at most 4)",
    )
    repro.add_argument(
        "--scheduler",
        default=None,
        help="run each cell as a task on the dask.distributed cluster at this address "
        "(tcp://HOST:PORT; --out must be on a filesystem every worker sees)",
    )
    _add_compile_steps(repro)
    repro.set_defaults(handler=commands.reproduce)


def _add_export(sub: Any) -> None:
    from namcore.export import MAX_LENGTH

    export = sub.add_parser(
        "export",
        help="export a trained model (ONNX through ndonnx)",
        description="Export a trained model. The only format is ONNX: namcore's model code "
        "runs on ndonnx arrays, which record the graph.",
    )
    formats = export.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="write the inference graph or streaming step as an .onnx file",
        description="Write RUN's best (else last) checkpoint as an ONNX model. Models "
        "that can stream (causal LSAM, the causal NAM Transformer) export a streaming "
        "step by default (token and memory state in, prediction and new state out); "
        "other models export the whole forward pass (tokens and mask in, "
        "logits out), with a fixed --length for the recurrent ones.",
    )
    onnx.add_argument("run", help="run folder written by namcore train, or a .safetensors file")
    onnx.add_argument("--out", required=True, help="the .onnx file to write (not a folder)")
    onnx.add_argument(
        "--kind",
        default=None,
        choices=("step", "sequence"),
        help="streaming step or whole sequence (default: step if the model can stream)",
    )
    onnx.add_argument(
        "--length",
        type=int,
        default=None,
        help="sequence length of a recurrent model's sequence graph, at most "
        f"{MAX_LENGTH} (every step is recorded into the graph; progress on stderr)",
    )
    onnx.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    onnx.add_argument(
        "--no-matmul-guards",
        action="store_true",
        help="replace ndonnx's If guard around each matmul by the matmul: "
        "faster, exact unless an input has a zero-sized dimension",
    )
    onnx.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    onnx.set_defaults(handler=commands.export)


def _add_fewshot(sub: Any) -> None:
    from namcore.fewshot import DATASETS, FILES, FRAMEWORKS, PRESETS

    fewshot = sub.add_parser(
        "fewshot",
        help="few-shot learning: NAM against the cosine classifier (base false positives)",
        description="Generalized few-shot learning with NAM as the classifier's memory: "
        "train a feature MLP and a cosine classifier on the base classes, then NAM's "
        "write/erase generator on episodes, and score both classifiers on the same "
        "5-way 1-shot and 5-shot test episodes (novel, base and both accuracies and "
        "base false positives, with 95% confidence intervals). Writes "
        + ", ".join(f"OUT/{name}" for name in FILES)
        + ". Errors exit with status 2 and write nothing.",
    )
    fewshot.add_argument(
        "--data", default="synthetic", help=_names(DATASETS) + " (default synthetic)"
    )
    fewshot.add_argument("--preset", default="quick", help=_names(PRESETS) + " (default quick)")
    fewshot.add_argument(
        "--backend",
        default="torch",
        help="training backend, " + _names(FRAMEWORKS) + " (default torch)",
    )
    fewshot.add_argument("--out", required=True, help="output folder, e.g. runs/fewshot")
    fewshot.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    fewshot.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an --out folder that is not empty",
    )
    fewshot.set_defaults(handler=commands.fewshot)


#: One function per subcommand adding its parser to the subparsers, in help order.
SUBCOMMANDS = (
    _add_info,
    _add_check,
    _add_train,
    _add_eval,
    _add_reproduce,
    _add_export,
    _add_fewshot,
)
