"""The ``namcore`` command line: ``info``, ``check``, ``train``, ``eval``, ``reproduce`` and
``export``."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

_DESCRIPTION = """\
namcore: Neural Attention Memory primitives on every array library.

commands:
  info    show namcore's version, the array libraries it found and their devices
  check   run every primitive on every installed library and compare the results
          with a NumPy float64 reference; exits with status 1 on any disagreement
  train   train a model on an algorithmic task with PyTorch or JAX (resumable)
  eval    score a trained run on every split, on any backend
  reproduce
          train and score the grid of models x tasks; results beside the paper
  export onnx
          write a trained model's inference graph (or its streaming step) as ONNX
"""

_EPILOG = """\
examples:
  namcore info
  namcore check
  namcore check --backends numpy,torch --dtypes float32
  namcore train --task reduce --model namtm --backend torch --preset quick --out runs/r1
  namcore eval runs/r1 --backend numpy
  namcore eval runs/r1 --backend dask --size 100000 --scheduler tcp://host:8786
  namcore reproduce --preset quick --out runs/repro
  namcore reproduce --preset quick --tasks reduce --models namtm,lstm --out runs/demo
  namcore export onnx runs/r1 --out model.onnx --length 20
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="namcore",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_info, _add_check, _add_train, _add_eval, _add_reproduce, _add_export):
        add(sub)
    return parser


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)


def _add_info(sub: Any) -> None:
    info = sub.add_parser(
        "info",
        help="versions and devices of namcore and each backend",
        description="Show versions of namcore and of each array library, "
        "and the devices each one sees.",
    )
    info.set_defaults(handler=lambda args: _info())


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
        "--verbose",
        action="store_true",
        help="also print the per-backend error table of every case",
    )
    check.set_defaults(handler=_check)


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
        choices=models.names(),
        metavar="MODEL",
        help="one of: " + _names(models.names()) + " (plug-ins included)",
    )
    train.add_argument(
        "--backend", required=True, choices=FRAMEWORKS, help="one of: " + _names(FRAMEWORKS)
    )
    train.add_argument(
        "--preset",
        default=None,
        choices=tuple(PRESETS),
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
    train.set_defaults(handler=_train)


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
    evaluate.set_defaults(handler=_eval)


def _add_reproduce(sub: Any) -> None:
    from namcore.training import FRAMEWORKS, PRESETS
    from namcore.training.evaluate import eval_backends
    from namcore.training.reproduce import GRIDS

    repro = sub.add_parser(
        "reproduce",
        help="train and score a grid of models x tasks; report beside Table 2",
        description="Train every model on every task (one run folder each under OUT/runs, "
        "resumable), score them, and write OUT/results.md (our sequence accuracy "
        "beside the paper's Table 2), OUT/results.json and "
        "OUT/accuracy_vs_length.png. Running it again on the same OUT resumes.",
    )
    repro.add_argument(
        "--preset",
        default="quick",
        choices=tuple(PRESETS),
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
        choices=FRAMEWORKS,
        help="training backend, " + _names(FRAMEWORKS) + " (default: jax if installed)",
    )
    repro.add_argument(
        "--eval-backend",
        default=None,
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
    repro.set_defaults(handler=_reproduce)


def _add_export(sub: Any) -> None:
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
    onnx.add_argument("--out", required=True, help="the .onnx file to write")
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
        help="sequence length of a recurrent model's sequence graph",
    )
    onnx.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    onnx.add_argument(
        "--no-matmul-guards",
        action="store_true",
        help="replace ndonnx's If guard around each matmul by the matmul: "
        "faster, exact unless an input has a zero-sized dimension",
    )
    onnx.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    onnx.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("ndonnx") is None:
        return _fail("export", "ONNX export needs ndonnx: pip install 'namcore[onnx]'")
    from namcore.export import export_onnx

    try:
        spec = export_onnx(
            args.run,
            args.out,
            kind=args.kind,
            length=args.length,
            dtype=args.dtype,
            matmul_guards=not args.no_matmul_guards,
            overwrite=args.overwrite,
        )
    except (OSError, ValueError, TypeError) as error:
        message = str(error).splitlines()[0].removeprefix("export: ")
        for api, flag in (
            ("overwrite=True", "--overwrite"),
            ("length=N", "--length N"),
            ("kind='sequence'", "--kind sequence"),
        ):
            message = message.replace(api, flag)
        return _fail("export", message)
    print(f"wrote {args.out} ({spec.kind} graph)")
    for title, items in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        print(f"  {title}:")
        for name, (shape, dtype) in items.items():
            print(f"    {name:<13} {dtype:<8} ({', '.join(map(str, shape))})")
    return 0


def _fail(command: str, message: str) -> int:
    print(f"namcore {command}: error: {message}", file=sys.stderr)
    return 2


def _train(args: argparse.Namespace) -> int:
    from namcore.training import TrainingError, train

    try:
        lines = train(
            args.task,
            args.model,
            args.backend,
            args.out,
            preset=args.preset,
            seed=args.seed,
            steps=args.steps,
            resume=args.resume,
        )
    except TrainingError as error:
        return _fail("train", str(error))
    if lines:
        print(f"done: step {lines[-1]['step']}, run folder {args.out}")
    else:
        print(f"nothing to do: {args.out} is already trained to its last step")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from namcore.training import TrainingError
    from namcore.training.evaluate import evaluate, format_table

    try:
        result = evaluate(
            args.run,
            args.backend,
            size=args.size,
            chunk=args.chunk,
            scheduler=args.scheduler,
            progress=args.backend == "dask",
        )
    except TrainingError as error:
        return _fail("eval", str(error))
    print(format_table(result))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from namcore.training import TrainingError, reproduce
    from namcore.training.report import console_table

    command = "namcore " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else None
    try:
        summary = reproduce(
            args.out,
            preset=args.preset,
            models=_split(args.models),
            task_names=_split(args.tasks),
            backend=args.backend,
            eval_backend=args.eval_backend,
            seed=args.seed,
            jobs=args.jobs,
            command=command,
            grid_name=args.grid,
        )
    except TrainingError as error:
        return _fail("reproduce", str(error))
    print()
    print(console_table(summary))
    print(
        f"\nwrote {args.out}/results.md, results.json and accuracy_vs_length.png "
        f"({summary['wall_s'] / 60:.1f} min)"
    )
    for failure in summary["failures"]:
        print(f"FAILED {failure['task']}/{failure['model']}: {failure['error']}", file=sys.stderr)
    return 1 if summary["failures"] else 0


def _info() -> int:
    import namcore
    from namcore import backends

    print(
        f"namcore {namcore.__version__}  (Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()})"
    )
    import array_api_compat
    import numpy

    print(f"numpy {numpy.__version__}, array-api-compat {array_api_compat.__version__}")
    print()
    print(f"{'backend':<18} {'version':<14} devices")
    for name in backends.NAMES:
        backend = backends.get(name)
        if not backend.is_installed():
            print(f"{name:<18} {'-':<14} not installed")
            continue
        try:
            version = backend.version()
            devices = ", ".join(str(d) for d in backend.devices()) or "none usable"
        except Exception as exc:  # a library that is installed but broken
            version, devices = "?", f"error: {type(exc).__name__}: {exc}"
        print(f"{name:<18} {version:<14} {devices}")
    return 0


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _check(args: argparse.Namespace) -> int:
    from namcore import backends
    from namcore._check import format_results, run_checks
    from namcore.testing import usable_backends

    names = _split(args.backends)
    for name in names or []:
        if name not in backends.NAMES:
            print(
                f"namcore check: unknown backend {name!r}; choose from {', '.join(backends.NAMES)}",
                file=sys.stderr,
            )
            return 2
    if "jax" in (names or usable_backends()):
        import jax  # float64 references need x64; this is our own process

        jax.config.update("jax_enable_x64", True)
    dtypes = _split(args.dtypes) or ["float32"]
    results = run_checks(names, dtypes, args.seed, progress=_progress)
    print(file=sys.stderr)
    table, failed = format_results(results, verbose=args.verbose)
    print(table)
    return 1 if failed else 0


def _progress(name: str) -> None:
    print(f"checking {name} ...", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``namcore`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        import namcore

        print(namcore.__version__)
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return int(handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
