"""The ``namcore`` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from namcore import backends, models
from namcore.cli import main


def test_help_explains_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "info" in out and "check" in out and "NumPy float64" in out


def test_info_lists_every_backend(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("namcore ")
    for name in backends.NAMES:
        assert name in out
    assert "cpu" in out


def test_check_passes_and_prints_a_table(capsys):
    assert main(["check", "--backends", "numpy,array_api_strict", "--dtypes", "float32"]) == 0
    out = capsys.readouterr().out
    assert "all backends agree" in out
    columns = (
        "unit",
        "write",
        "write (gated, erase)",
        "read",
        "read (gated)",
        "attention",
        "attention (causal)",
        "attention (erase)",
        "attention (decay)",
        "attention (gated delta)",
        *(f"model {label}" for e in models.entries() for label in e.example_configs()),
    )
    assert "model namtm-nojump" in columns and "model nam-transformer (causal)" in columns
    for column in columns:
        assert column in out
    rows = [line for line in out.splitlines() if line.startswith(("numpy ", "array_api_strict"))]
    assert len(rows) == 2 and all(line.count(" ok") == len(columns) for line in rows)


def test_check_fails_when_a_backend_disagrees(capsys, monkeypatch):
    strict_backend = type(backends.get("array_api_strict"))
    original = strict_backend.read

    def broken_read(self, M, q, p_read, normalize, eps, xp):
        return original(self, M, q, p_read, normalize, eps, xp) * 1.01

    monkeypatch.setattr(strict_backend, "read", broken_read)
    assert main(["check", "--backends", "numpy,array_api_strict", "--dtypes", "float64"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: backends disagree" in out
    assert "read" in out and "FAIL" in out


def test_check_rejects_unknown_backend(capsys):
    assert main(["check", "--backends", "numpy,tensorflow"]) == 2
    assert "unknown backend 'tensorflow'" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "namcore.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip()


def test_check_covers_jax_jit_in_float64(capsys):
    pytest.importorskip("jax")
    # a primitive, attention and one recurrent model are enough to see x64 under jit
    # (the whole table is namcore check's own job; it takes a minute here)
    only = "unit,attention (gated delta),model namtm"
    assert main(["check", "--backends", "jax", "--dtypes", "float64", "--only", only]) == 0
    out = capsys.readouterr().out
    assert "jax (jit)" in out and "skip" not in out


def _help(*command: str) -> None:
    from namcore.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])


@pytest.mark.parametrize(
    ("command", "names"),
    [
        (("check",), lambda: backends.NAMES),
        (("train",), lambda: models.names()),
        (
            ("eval",),
            lambda: __import__("namcore.training.evaluate", fromlist=["_"]).eval_backends(),
        ),
    ],
)
def test_help_lists_every_model_and_backend_name(command, names, capsys):
    _help(*command)
    # argparse wraps lines, also after hyphens ("priority-" / "queue")
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")
    for name in names():
        assert name in text, f"{name!r} missing from `namcore {' '.join(command)} --help`"


def test_a_bad_model_name_lists_the_choices(capsys, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--task", "reduce", "--model", "nope", "--backend", "torch", "--out", out]
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("namcore train: error: unknown model 'nope'") and "namtm-nojump" in err
    assert len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--dtypes", "xyz"], ["--dtypes: unknown dtype 'xyz'", "float16, bfloat16"]),
        (["--dtypes", "int8"], ["'int8' is not a floating dtype", "float32, float64"]),
        (["--dtypes", ""], ["--dtypes '' names no dtype"]),
        (["--backends", ""], ["--backends '' names no backend"]),
        (["--backends", " , "], ["--backends", "names no backend"]),
        (["--only", "no such case"], ["no check case matches 'no such case'", "attention"]),
    ],
)
def test_check_refuses_to_check_nothing(argv, words, capsys):
    assert main(["check", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("namcore check: error:") and len(err.splitlines()) == 1
    assert all(word in err for word in words), err
    assert "agree" not in captured.out


def test_check_of_only_skipped_cells_is_an_error(capsys):
    # NumPy has no bfloat16: every cell is skipped, which must never read as agreement
    assert main(["check", "--backends", "numpy", "--dtypes", "bfloat16", "--only", "unit"]) == 2
    captured = capsys.readouterr()
    assert "all backends agree" not in captured.out and "NOTHING CHECKED" in captured.out
    assert "nothing was checked" in captured.err and "numpy cannot create bfloat16" in captured.err


def test_check_counts_skipped_cells_beside_agreement(capsys):
    argv = ["check", "--backends", "numpy,array_api_strict", "--dtypes", "float32,bfloat16"]
    assert main([*argv, "--only", "unit"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("all backends agree; 2 of 4 cells skipped") and "bfloat16" in last


def test_check_names_the_extra_of_a_missing_backend(capsys, monkeypatch):
    strict_backend = type(backends.get("array_api_strict"))
    monkeypatch.setattr(strict_backend, "is_installed", lambda self: False)
    assert main(["check", "--backends", "array_api_strict"]) == 2
    err = capsys.readouterr().err
    assert "backend 'array_api_strict' is not installed" in err and "namcore[strict]" in err


def test_info_prints_device_names_not_object_reprs(capsys):
    pytest.importorskip("ndonnx")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert " object at 0x" not in out
    assert next(line for line in out.splitlines() if line.startswith("ndonnx ")).endswith(
        " default"
    )


def test_reproduce_refuses_an_unknown_eval_backend_before_any_work(capsys, tmp_path):
    from namcore.training.evaluate import eval_backends

    out = tmp_path / "repro"
    assert main(["reproduce", "--out", str(out), "--eval-backend", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "namcore reproduce: error: unknown --eval-backend 'bogus'; choose from "
        + ", ".join(eval_backends())
    )
    assert "pip install" not in err and not out.exists()


@pytest.mark.parametrize(
    ("argv", "got"),
    [
        (["train", "--task", "reverse", "--model", "lsam", "--backend", "jax"], "--backend jax"),
        (["reproduce"], "no --backend"),
    ],
)
def test_compile_steps_needs_the_torch_backend(argv, got, capsys, tmp_path):
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out), "--compile-steps"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"namcore {argv[0]}: error: --compile-steps needs --backend torch (got {got})"
    assert not out.exists()


def test_compile_steps_is_refused_with_a_dask_scheduler(capsys, tmp_path):
    argv = ["reproduce", "--backend", "torch", "--scheduler", "tcp://127.0.0.1:1"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--compile-steps"]) == 2
    assert "does not reach a dask cluster's workers" in capsys.readouterr().err


def test_train_compile_steps_reaches_the_processes_it_starts(monkeypatch, tmp_path):
    """The flag sets the environment variable (inherited by worker processes) before
    training starts; without it the variable stays unset."""
    from namcore import training
    from namcore.backends.torch import COMPILE_STEPS_VARIABLE

    monkeypatch.setenv(COMPILE_STEPS_VARIABLE, "")  # restored after the test
    seen = []

    def fake_train(*args, **kwargs):
        import os

        seen.append(os.environ.get(COMPILE_STEPS_VARIABLE))
        return []

    monkeypatch.setattr(training, "train", fake_train)
    argv = ["train", "--task", "reverse", "--model", "lsam", "--backend", "torch"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--out", str(tmp_path / "b"), "--compile-steps"]) == 0
    assert seen == ["", "1"]
