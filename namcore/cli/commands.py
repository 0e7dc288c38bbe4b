"""What each ``namcore`` subcommand does, one function per subcommand.

Each takes the parsed arguments and returns the exit status: 0 on success, 1 when
a check or a run failed, 2 for bad input (with one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

__all__ = [
    "check",
    "evaluate",
    "export",
    "fail",
    "fewshot",
    "info",
    "reproduce",
    "split",
    "train",
]


def fail(command: str, message: str) -> int:
    print(f"namcore {command}: error: {message}", file=sys.stderr)
    return 2


def split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def compile_steps(args: argparse.Namespace) -> str | None:
    """Turn ``--compile-steps`` on for this process and the ones it starts, or say why not."""
    if not args.compile_steps:
        return None
    if args.backend != "torch":
        got = f"--backend {args.backend}" if args.backend else "no --backend"
        return f"--compile-steps needs --backend torch (got {got})"
    from namcore.backends.torch import COMPILE_STEPS_VARIABLE

    if getattr(args, "scheduler", None):
        return (
            "--compile-steps does not reach a dask cluster's workers; set "
            f"{COMPILE_STEPS_VARIABLE}=1 in their environment instead"
        )
    os.environ[COMPILE_STEPS_VARIABLE] = "1"
    return None


def train(args: argparse.Namespace) -> int:
    from namcore.backends.allocator import reuse_unless_disabled
    from namcore.training import TrainingError
    from namcore.training import train as train_run

    refused = compile_steps(args)
    if refused:
        return fail("train", refused)
    reuse_unless_disabled()  # a training process: keep freed memory (XLA on CPU)
    try:
        lines = train_run(
            args.task,
            args.model,
            args.backend,
            args.out,
            preset=args.preset,
            seed=args.seed,
            steps=args.steps,
            resume=args.resume,
            nproc=args.nproc,
        )
    except TrainingError as error:
        return fail("train", str(error))
    except KeyboardInterrupt as interrupt:  # training.Interrupted says the step
        print(f"namcore train: {str(interrupt) or 'interrupted'}", file=sys.stderr)
        return 130
    if lines:
        print(f"done: step {lines[-1]['step']}, run folder {args.out}")
    else:
        print(f"nothing to do: {args.out} is already trained to its last step")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from namcore.training import TrainingError
    from namcore.training.evaluate import evaluate as evaluate_run
    from namcore.training.evaluate import format_table

    try:
        result = evaluate_run(
            args.run,
            args.backend,
            size=args.size,
            chunk=args.chunk,
            scheduler=args.scheduler,
            progress=args.backend == "dask",
        )
    except TrainingError as error:
        return fail("eval", str(error))
    print(format_table(result))
    return 0


def reproduce(args: argparse.Namespace) -> int:
    from namcore.backends.allocator import reuse_unless_disabled
    from namcore.training import TrainingError
    from namcore.training import reproduce as reproduce_grid
    from namcore.training.report import console_table

    refused = compile_steps(args)
    if refused:
        return fail("reproduce", refused)
    reuse_unless_disabled()  # its worker processes do the same
    command = "namcore " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else None
    try:
        summary = reproduce_grid(
            args.out,
            preset=args.preset,
            models=split(args.models),
            task_names=split(args.tasks),
            backend=args.backend,
            eval_backend=args.eval_backend,
            seed=args.seed,
            jobs=args.jobs,
            command=command,
            grid_name=args.grid,
            scheduler=args.scheduler,
        )
    except TrainingError as error:
        return fail("reproduce", str(error))
    except KeyboardInterrupt:
        print("namcore reproduce: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    print()
    print(console_table(summary))
    print(
        f"\nwrote {args.out}/results.md, results.json, accuracy_vs_length.png"
        + (" and step_time_vs_length.png" if "step_times" in summary else "")
        + f" ({summary['wall_s'] / 60:.1f} min)"
    )
    for failure in summary["failures"]:
        print(f"FAILED {failure['task']}/{failure['model']}: {failure['error']}", file=sys.stderr)
    return 1 if summary["failures"] else 0


def info(args: argparse.Namespace | None = None) -> int:
    import namcore
    from namcore import backends

    print(
        f"namcore {namcore.__version__}  (Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()})"
    )
    import numpy

    from namcore import _compat

    print(f"numpy {numpy.__version__}, array-api-compat {_compat.ARRAY_API_COMPAT_VERSION}")
    print()
    print(f"{'backend':<18} {'version':<14} devices")
    for name in backends.NAMES:
        backend = backends.get(name)
        if not backend.is_installed():
            print(f"{name:<18} {'-':<14} not installed")
            continue
        try:
            version = backend.version()
            devices = ", ".join(_device_name(d) for d in backend.devices()) or "none usable"
        except Exception as exc:  # a library that is installed but broken
            version, devices = "?", f"error: {type(exc).__name__}: {exc}"
        print(f"{name:<18} {version:<14} {devices}")
    return 0


def _device_name(device: object) -> str:
    """A device as ``info`` prints it: its own name, or ``default`` for an unnamed one.

    ndonnx's only device is a bare object whose text is ``<... object at 0x...>``.
    """
    if type(device).__str__ is object.__str__ and type(device).__repr__ is object.__repr__:
        return "default"
    return str(device)


def check(args: argparse.Namespace) -> int:
    from namcore import backends
    from namcore._check import check_backends, check_dtypes, format_results, run_checks, tally

    try:  # every name before any work: a bad one is exit 2, never a silent skip
        dtypes = check_dtypes(split(args.dtypes) or [])
        names = check_backends(split(args.backends))
    except ValueError as error:
        return fail("check", str(error))
    for name in names:
        backends.get(name).enable_float64()  # the references are float64
    try:
        results = run_checks(names, dtypes, args.seed, progress=_progress, only=split(args.only))
    except ValueError as error:
        return fail("check", str(error))
    print(file=sys.stderr)
    table, failed = format_results(results, verbose=args.verbose)
    print(table)
    checked, _, reasons = tally(results)
    if not checked:  # a check of nothing is no pass: a CI gate must not go green on it
        why = "; ".join(reasons) or "no backend and dtype to run"
        return fail("check", f"nothing was checked: every cell was skipped ({why})")
    return 1 if failed else 0


def _progress(name: str) -> None:
    print(f"checking {name} ...", file=sys.stderr, flush=True)


class _StepProgress:
    """Shows, on stderr, the steps of a recurrence as ndonnx records them.

    In place on a terminal; elsewhere (a log) a line every tenth of a recurrence.
    """

    def __init__(self) -> None:
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.start = self.last = time.perf_counter()
        self.passes = 0

    def __call__(self, step: int, length: int) -> None:
        if step == 1:
            if not self.passes:
                print(
                    f"namcore export: unrolling the recurrence over {length} steps "
                    "(ndonnx records each one into the graph)",
                    file=self.stream,
                    flush=True,
                )
            self.passes += 1
        now = time.perf_counter()
        text = f"  recurrence {self.passes}: step {step}/{length} ({now - self.start:.0f} s)"
        if self.tty and (now - self.last >= 0.2 or step == length):
            print("\r" + text, end="", file=self.stream, flush=True)
            self.last = now
        elif not self.tty and (step % max(1, length // 10) == 0 or step == length):
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.passes:
            print(file=self.stream)


def _missing(modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` that cannot be imported (``None`` in ``sys.modules`` counts)."""
    import importlib.util

    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a module without a spec: imported, so there
            found = sys.modules.get(module) is not None
        if not found:
            missing.append(module)
    return missing


def export(args: argparse.Namespace) -> int:
    missing = _missing(("ndonnx", "onnx", "safetensors"))
    if missing:
        return fail(
            "export",
            f"ONNX export needs {', '.join(missing)}, not installed here: "
            "pip install 'namcore[onnx]'",
        )
    from namcore.export import export_onnx

    progress = _StepProgress()
    try:
        spec = export_onnx(
            args.run,
            args.out,
            kind=args.kind,
            length=args.length,
            dtype=args.dtype,
            matmul_guards=not args.no_matmul_guards,
            overwrite=args.overwrite,
            progress=progress,
        )
    except (OSError, ValueError, TypeError, ImportError) as error:
        message = str(error).splitlines()[0].removeprefix("export: ")
        for api, flag in (
            ("overwrite=True", "--overwrite"),
            ("length=N", "--length N"),
            ("kind='sequence'", "--kind sequence"),
            ("kind='step'", "--kind step"),
        ):
            message = message.replace(api, flag)
        return fail("export", message)
    finally:
        progress.close()
    print(f"wrote {args.out} ({spec.kind} graph)")
    for title, items in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        print(f"  {title}:")
        for name, (shape, dtype) in items.items():
            print(f"    {name:<13} {dtype:<8} ({', '.join(map(str, shape))})")
    return 0


def fewshot(args: argparse.Namespace) -> int:
    from namcore.backends.allocator import reuse_unless_disabled
    from namcore.fewshot import run
    from namcore.training import TrainingError
    from namcore.training.engine import require_modules

    reuse_unless_disabled()
    command = "namcore " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["fewshot"] else None
    try:
        require_modules(("tqdm", "matplotlib"), "training", "namcore fewshot")
        results = run(
            args.data,
            args.preset,
            args.backend,
            args.out,
            seed=args.seed,
            overwrite=args.overwrite,
            progress=True,
            command=command,
        )
    except (TrainingError, ImportError) as error:
        return fail("fewshot", str(error).splitlines()[0])
    except KeyboardInterrupt:
        print("namcore fewshot: interrupted; nothing was written", file=sys.stderr)
        return 130
    for shots, row in results["results"].items():
        print(f"{shots}:")
        for method in ("cosine", "nam"):
            cells = ", ".join(
                f"{key} {100 * row[method][key]['mean']:.1f} ± {100 * row[method][key]['ci95']:.1f}"
                for key in ("novel", "base", "both", "base_false_positives")
            )
            print(f"  {method:<7} {cells}")
        diff = row["nam_minus_cosine"]["base_false_positives"]
        print(
            f"  NAM - cosine, base false positives: {100 * diff['mean']:+.1f} "
            f"± {100 * diff['ci95']:.1f} (paired)"
        )
    print(f"wrote {args.out}/results.json, results.md and fewshot.png ({results['wall_s']:.0f} s)")
    return 0
