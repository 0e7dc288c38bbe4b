"""Fault injection: nothing already written is lost, and every failure is one clear line.

A full disk (``OSError`` ENOSPC) or a kill at every file write of ``train`` and of a
rerun of ``reproduce``; two processes on one folder; corrupt files; Ctrl-C; a real
``SIGKILL`` of ``namcore train`` and of the parent of ``reproduce``'s workers. The
writes are counted through ``os.replace``, which every atomic write ends with.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from namcore.cli import main
from namcore.models import load
from namcore.training import RunFolder, TrainingError, reproduce, train
from namcore.training.lock import FolderLock

pytest.importorskip("torch")

MODEL = "transformer"  # the fastest model to train; the loop is the same for all
RUN = {"preset": "smoke", "steps": 4, "eval_every": 2, "progress": False}


class Killed(BaseException):
    """A kill: like SIGKILL, no ``except Exception`` sees it and nothing after it runs."""


def lines(run: Path) -> list[dict]:
    records = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("elapsed_s")
    return records


def weights(path: Path) -> dict[str, np.ndarray]:
    return load(path)[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def faulty_replace(monkeypatch, inside: Path, n: int, kind: str) -> list[str]:
    """Make the ``n``-th write into ``inside`` (and below) fail with ``kind``:

    - ``"full"``: ``OSError`` ENOSPC instead of the write;
    - ``"kill-before"``: killed before the write, its temporary file left behind;
    - ``"kill-after"``: killed just after the write.

    Returns the list that receives the name of every file written.
    """
    real = os.replace
    written: list[str] = []

    def replace(src, dst, *args, **kwargs):
        if not Path(dst).is_relative_to(inside):
            return real(src, dst, *args, **kwargs)
        written.append(Path(dst).name)
        if len(written) != n:
            return real(src, dst, *args, **kwargs)
        if kind == "full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        if kind == "kill-before":
            shutil.copyfile(src, str(src)[: -len(".tmp")] + "-left.tmp")
            raise Killed(dst)
        real(src, dst, *args, **kwargs)
        raise Killed(dst)

    monkeypatch.setattr(os, "replace", replace)
    return written


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, and the files its writes replace, in order."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    with pytest.MonkeyPatch.context() as patch:
        written = faulty_replace(patch, out, 0, "none")
        train("reduce", MODEL, "torch", out, **RUN)
    return out, written


def test_a_full_disk_or_a_kill_at_any_write_of_train_loses_nothing(
    reference, tmp_path, monkeypatch
):
    ref, written = reference
    assert written.count("optimizer.safetensors") == 2 and len(written) >= 8
    for n in range(1, len(written) + 1):
        # Failing before write n (a full disk, or a kill that leaves its temporary file)
        # is also failing after write n - 1; a kill after the commit and after the last
        # write cover the rest (what a checkpoint does once its optimizer file is in).
        kinds = ["full" if n % 2 else "kill-before"]
        if written[n - 1] == "optimizer.safetensors" or n == len(written):
            kinds.append("kill-after")
        for kind in kinds:
            out = tmp_path / f"{n}-{kind}"
            with monkeypatch.context() as patch:
                faulty_replace(patch, out, n, kind)
                with pytest.raises((TrainingError, Killed)) as failure:
                    train("reduce", MODEL, "torch", out, **RUN)
            if kind == "full":  # one line that names the cause
                message = str(failure.value)
                assert isinstance(failure.value, TrainingError) and "\n" not in message
                assert "No space left on device" in message, message
            # What was committed before the failure is what the folder holds now.
            done = written[: n - 1 if kind != "kill-after" else n]
            committed = 2 * done.count("optimizer.safetensors")
            if committed:
                assert RunFolder(out).recorded_state()["step"] == committed, (n, kind)
            # It resumes, and ends exactly as the uninterrupted run.
            train("reduce", MODEL, "torch", out, resume=True, **RUN)
            assert lines(out) == lines(ref), (n, kind)
            for name in ("last.safetensors", "best.safetensors"):
                a, b = weights(ref / name), weights(out / name)
                assert all(np.array_equal(a[k], b[k]) for k in a), (n, kind, name)
            left = {p.name for p in out.iterdir()} - {p.name for p in ref.iterdir()}
            assert not left, (n, kind, left)  # no temporary or previous file left


def test_a_full_disk_is_one_line_from_the_cli(reference, tmp_path, monkeypatch, capsys):
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    args = ["train", "--task", "reduce", "--model", MODEL, "--backend", "torch"]
    args += ["--out", str(run), "--resume", "--steps", "10"]
    # Writes: run.json (its steps), metrics of step 6, then the link that keeps step 4.
    faulty_replace(monkeypatch, run, 3, "full")
    assert main(args) == 2
    err = capsys.readouterr().err  # the progress bar, then one line
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("namcore train: error:") and err.count("namcore") == 1
    assert "No space left on device" in last and "checkpoint of step 4 is kept" in last
    assert RunFolder(run).recorded_state()["step"] == 4


def _train_args(out: Path, *extra: str) -> list[str]:
    return [
        *("train", "--task", "reduce", "--model", MODEL, "--backend", "torch"),
        *("--preset", "smoke", "--out", str(out), *extra),
    ]


def test_a_second_process_on_a_run_folder_exits_2(reference, tmp_path, capsys):
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    before = snapshot(run)
    with RunFolder(run).lock():  # as another process would hold it
        assert main(_train_args(run, "--resume", "--steps", "6")) == 2
        err = capsys.readouterr().err
        assert main(_train_args(tmp_path / "new", "--steps", "1")) == 0  # others are free
    assert f"{run} is in use by process {os.getpid()}" in err and err.count("\n") == 1
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("edit", "argv", "word"),
    [
        (lambda run: None, ["--steps", "2"], "has reached step 4"),
        (
            lambda run: (run / "metrics.jsonl").write_text('{"step": 2}\n{"step": 4, "lo\n'),
            [],
            "metrics.jsonl line 2 is corrupt",
        ),
        (lambda run: (run / "optimizer.safetensors").unlink(), [], "optimizer.safetensors is"),
    ],
)
def test_bad_input_and_corrupt_files_exit_2_and_change_nothing(
    reference, tmp_path, capsys, edit, argv, word
):
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    edit(run)
    before = snapshot(run)
    assert main(_train_args(run, "--resume", *argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("namcore train: error:") and err.count("\n") == 1
    assert word in err, err
    assert snapshot(run) == before


def test_a_bad_seed_exits_2_and_creates_nothing(tmp_path, capsys):
    assert main(_train_args(tmp_path / "run", "--seed", "-1")) == 2
    err = capsys.readouterr().err
    assert err == "namcore train: error: --seed must be an integer from 0 to 4294967295, got -1\n"
    assert not (tmp_path / "run").exists()


def test_a_missing_dependency_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if not installed
    assert main(_train_args(tmp_path / "run")) == 2
    assert "needs tqdm" in capsys.readouterr().err
    assert main(["reproduce", "--out", str(tmp_path / "r"), "--backend", "torch"]) == 2
    assert "pip install 'namcore[torch]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "r").exists()


def test_ctrl_c_says_where_to_resume_from(tmp_path, capsys, monkeypatch):
    from namcore.training import trainer

    real = trainer.train_batch

    def interrupted_at_7(task, preset, seed, step):
        if step == 7:
            raise KeyboardInterrupt
        return real(task, preset, seed, step)

    run = tmp_path / "run"
    monkeypatch.setattr(trainer, "train_batch", interrupted_at_7)
    assert main(_train_args(run, "--steps", "10")) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "namcore train: interrupted at step 7; rerun with --resume to continue from step 5"
    )
    monkeypatch.setattr(trainer, "train_batch", real)
    assert main(_train_args(run, "--resume")) == 0
    assert [line["step"] for line in lines(run)] == [5, 10]


def test_sigkill_of_train_and_a_second_process_meanwhile(tmp_path, capsys):
    """A real kill at a random moment; meanwhile a second train on the folder exits 2."""
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "namcore.cli", *_train_args(run, "--steps", "2000")]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (run / "metrics.jsonl").is_file() or len(lines(run)) < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert main(_train_args(run, "--resume")) == 2
        assert f"in use by process {process.pid}" in capsys.readouterr().err
        time.sleep(np.random.default_rng().uniform(0, 0.3))
    finally:
        process.kill()
        process.wait()
    saved = RunFolder(run).recorded_state()["step"]
    train("reduce", MODEL, "torch", run, resume=True, steps=saved + 5, progress=False)
    assert [line["step"] for line in lines(run)] == list(range(5, saved + 6, 5))


# -------------------------------------------------------------------------- reproduce
CELL = {"preset": "smoke", "models": [MODEL], "task_names": ["reduce"], "backend": "torch"}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("repro") / "out"
    summary = reproduce(out, **CELL, jobs=1, progress=False)
    assert summary["failures"] == []
    return out, summary


def _cells(summary: dict) -> dict:
    return {(e["task"], e["model"]): e["splits"] for e in summary["runs"]}


def test_reproduce_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.md").write_text("my results")
    argv = ["reproduce", "--out", str(out), "--preset", "smoke", "--models", "lstm"]
    argv += ["--tasks", "reduce", "--backend", "torch"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not a folder of namcore reproduce" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["results.md"]
    assert (out / "results.md").read_text() == "my results"


def test_reproduce_keeps_its_settings_and_its_lock(reproduced, tmp_path, capsys):
    out, _ = reproduced
    before = snapshot(out)
    argv = ["reproduce", "--out", str(out), "--models", MODEL, "--tasks", "reduce"]
    argv += ["--backend", "torch"]
    assert main([*argv, "--preset", "quick"]) == 2
    assert "--preset smoke" in capsys.readouterr().err
    with FolderLock(out):
        assert main([*argv, "--preset", "smoke"]) == 2
    assert f"in use by process {os.getpid()}" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_rerun_whose_cells_fail_keeps_the_report(reproduced, tmp_path):
    out, summary = reproduced
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    cell = copy / "runs" / f"reduce-{MODEL}"
    with RunFolder(cell).lock():  # the cell is still training in another process
        again = reproduce(copy, **CELL, jobs=1, progress=False)
    assert "in use by process" in again["failures"][0]["error"]
    assert _cells(again) == _cells(summary)  # the earlier scores, carried over
    assert again["runs"][0]["from_earlier_call"] is True
    report = json.loads((copy / "results.json").read_text())
    assert _cells(report) == _cells(summary)
    assert "Reproduction of Table 2" in (copy / "results.md").read_text()


def test_a_full_disk_or_a_kill_at_any_write_of_reproduce_loses_nothing(
    reproduced, tmp_path, monkeypatch
):
    out, summary = reproduced
    clean = tmp_path / "clean"
    shutil.copytree(out, clean)
    with monkeypatch.context() as patch:
        written = faulty_replace(patch, clean, 0, "none")
        reproduce(clean, **CELL, jobs=1, progress=False)
    assert {"results.json", "results.md", "eval.json"} <= set(written)
    for n in range(1, len(written) + 1):
        kind = "full" if n % 2 else "kill-before"
        copy = tmp_path / f"{n}"
        shutil.copytree(out, copy)
        with monkeypatch.context() as patch:
            faulty_replace(patch, copy, n, kind)
            try:
                again = reproduce(copy, **CELL, jobs=1, progress=False)
            except (TrainingError, Killed) as error:
                assert "\n" not in str(error)
            else:  # a cell's own write failed: reported, its earlier scores kept
                assert again["failures"] and _cells(again) == _cells(summary)
        report = json.loads((copy / "results.json").read_text())
        assert _cells(report) == _cells(summary), (n, kind)
        again = reproduce(copy, **CELL, jobs=1, progress=False)
        assert again["failures"] == [] and _cells(again) == _cells(summary), (n, kind)


def test_reproduce_workers_exit_with_their_parent(tmp_path):
    """SIGKILL the process that owns the pool: its busy worker exits too."""
    script = textwrap.dedent(
        """
        import os, sys, time
        from namcore.training.cells import _pool

        pool = _pool(1)
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 120)
        time.sleep(120)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the killed parent's resource tracker complains
        text=True,
    ) as parent:
        try:
            worker = int(parent.stdout.readline())
            parent.send_signal(signal.SIGKILL)
            parent.wait()
            deadline = time.monotonic() + 20
            while _alive(worker):
                assert time.monotonic() < deadline, "the worker outlived its parent"
                time.sleep(0.05)
        finally:
            parent.kill()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")
