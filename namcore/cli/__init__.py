"""The ``namcore`` command line: ``info``, ``check``, ``train``, ``eval``, ``reproduce``,
``export`` and ``fewshot``.

:mod:`~namcore.cli.arguments` declares each subcommand's arguments and
:mod:`~namcore.cli.commands` runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .arguments import SUBCOMMANDS, BadArgument

__all__ = ["build_parser", "main"]

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
  fewshot few-shot learning with NAM as the classifier's memory, against the
          cosine classifier: accuracies and base false positives
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
  namcore fewshot --data synthetic --preset quick --backend torch --out runs/fewshot
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``namcore`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="namcore",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``namcore`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BadArgument as error:  # one line and status 2, as the commands answer
        print(error, file=sys.stderr)
        return 2
    if args.version:
        import namcore

        print(namcore.__version__)
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return int(handler(args))
