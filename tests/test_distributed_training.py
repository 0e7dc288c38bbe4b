"""Data-parallel training (namcore.training.distributed): N ways equal one way.

Each case runs in a fresh interpreter from a script file: torch's spawned ranks
re-import the main module, and JAX needs its host-device count before it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from namcore.training import TrainingError, train

SCRIPT = """
import json, sys
from namcore.training import TrainingError, train

if __name__ == "__main__":
    runs = {}
    for name, kwargs in json.loads(sys.argv[1]).items():
        try:
            runs[name] = train(progress=False, **kwargs)
        except TrainingError as error:
            runs[name] = str(error)
    print(json.dumps(runs))
"""


def run_script(tmp_path, cases: dict, env: dict[str, str] | None = None) -> dict:
    script = tmp_path / "runs.py"
    script.write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def common(tmp_path, name: str, backend: str, **extra) -> dict:
    return {
        "task": "reduce",
        "model": "lstm",
        "backend": backend,
        "out": str(tmp_path / name),
        "preset": "smoke",
        "steps": 20,
        "eval_every": 10,
        **extra,
    }


def assert_same_metrics(got: list[dict], expected: list[dict]) -> None:
    assert [line["step"] for line in got] == [line["step"] for line in expected]
    for a, b in zip(got, expected, strict=True):
        for key, value in b.items():
            if key != "elapsed_s":
                assert a[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_two_torch_processes_equal_one_and_resume_with_another_count(tmp_path):
    pytest.importorskip("torch")
    runs = run_script(
        tmp_path,
        {
            "one": common(tmp_path, "one", "torch"),
            "two": common(tmp_path, "two", "torch", nproc=2),
            "cut": common(tmp_path, "cut", "torch", nproc=2, stop_after=10),
            "resumed": common(tmp_path, "cut", "torch", resume=True),
            "hook": common(tmp_path, "hook", "torch", nproc=2, model="ut"),
        },
    )
    assert_same_metrics(runs["two"], runs["one"])
    assert_same_metrics(runs["cut"] + runs["resumed"], runs["one"])
    assert "rank" in runs["hook"] and "loss hook" in runs["hook"]
    assert not (tmp_path / "hook" / "optimizer.safetensors").exists()
    written = {p.name for p in (tmp_path / "two").iterdir()}
    assert {"run.json", "metrics.jsonl", "last.safetensors", "best.safetensors"} <= written


def test_jax_two_host_devices_equal_one(tmp_path):
    pytest.importorskip("jax")
    runs = run_script(
        tmp_path,
        {
            "one": common(tmp_path, "one", "jax"),
            "two": common(tmp_path, "two", "jax", nproc=2),
            "three": common(tmp_path, "three", "jax", nproc=3),
        },
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=3", "JAX_PLATFORMS": "cpu"},
    )
    assert_same_metrics(runs["two"], runs["one"])
    assert "does not split over 3 devices" in runs["three"]  # the smoke batch is 8 rows


def test_bad_nproc_is_refused_before_anything_is_written(tmp_path):
    for bad in (0, -2, 1.5, True):
        with pytest.raises(TrainingError, match="--nproc must be a positive integer"):
            train("reduce", "lstm", "jax", tmp_path / "run", preset="smoke", nproc=bad)
    assert not (tmp_path / "run").exists()


def test_jax_without_enough_devices_names_the_flag(tmp_path):
    jax = pytest.importorskip("jax")
    wanted = jax.device_count() + 1
    with pytest.raises(TrainingError, match="xla_force_host_platform_device_count"):
        train("reduce", "lstm", "jax", tmp_path / "run", preset="smoke", nproc=wanted)
    assert not (tmp_path / "run").exists()


def test_cli_refuses_a_bad_nproc(tmp_path, capsys):
    from namcore.cli import main

    args = ["train", "--task", "reduce", "--model", "lstm", "--backend", "torch"]
    code = main([*args, "--preset", "smoke", "--out", str(tmp_path / "r"), "--nproc", "0"])
    assert code == 2
    assert "--nproc must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_torchrun_launches_the_same_run(tmp_path):
    pytest.importorskip("torch")
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    one = train(progress=False, **common(tmp_path, "one", "torch", eval_every=5))  # the CLI's
    launch = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "namcore.cli"]
    args = ["--task", "reduce", "--model", "lstm", "--backend", "torch", "--preset", "smoke"]
    result = subprocess.run(
        [*launch, "train", *args, "--steps", "20", "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "two" / "metrics.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert_same_metrics(lines, one)


def test_a_rank_that_dies_stops_the_others_with_one_line(tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "die.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, time
            import torch.distributed as dist
            from namcore.training import TrainingError
            from namcore.training.distributed import launch_torch

            def work(**kwargs):
                if dist.get_rank() == 1:
                    os._exit(3)  # killed mid-run, no exception
                dist.barrier()  # rank 0 waits for a rank that never comes
                return []

            if __name__ == "__main__":
                start = time.time()
                try:
                    launch_torch(2, work, {})
                except TrainingError as error:
                    print(f"{time.time() - start:.0f}", error)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    seconds, message = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert message.startswith("rank 1 of 2 died (exit code 3)"), message
    assert int(seconds) < 120  # not the group's 30-minute timeout
