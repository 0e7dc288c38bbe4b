"""``namcore reproduce --grid lra``: Table 1's grid on ListOps, its report and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from namcore.cli import main
from namcore.training import reproduce
from namcore.training.lra import LRA_MODELS, LRA_PLAN, STEP_TIME_LENGTHS
from namcore.training.paper import TABLE1, TABLE1_MODELS
from namcore.training.presets import get_preset
from namcore.training.report import lra_markdown, speedups
from namcore.training.reproduce import GRIDS

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def test_grid_plan_and_the_papers_numbers():
    assert GRIDS["lra"] == (LRA_MODELS, ("listops",))
    assert set(LRA_MODELS) == {m for _, m in TABLE1_MODELS}
    assert LRA_PLAN["quick"] == ("listops-short", "quick")
    assert LRA_PLAN["paper"] == ("listops", "lra-paper")
    paper = get_preset("lra-paper")
    assert paper.batch_size * paper.steps == 96_000 and paper.eval_size == 2_000
    assert max(STEP_TIME_LENGTHS["lra-paper"]) == 2000
    assert TABLE1["listops"]["transformer"] == {"accuracy": 29.75, "speedup": 1.0}
    assert TABLE1["listops"]["linear-transformer"] == {"accuracy": 36.5, "speedup": 2.59}
    assert TABLE1["listops"]["nam-transformer"] == {"accuracy": 36.1, "speedup": 2.66}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("lra")
    summary = reproduce(
        out,
        preset="smoke",
        grid_name="lra",
        backend="torch",
        eval_backend="numpy",
        jobs=1,
        progress=False,
        command="namcore reproduce --grid lra --preset smoke",
    )
    return out, summary


def test_smoke_grid_writes_table1_and_the_step_times(smoke):
    out, summary = smoke
    assert summary["failures"] == [] and summary["grid"] == "lra"
    assert [(e["task"], e["model"]) for e in summary["runs"]] == [
        ("listops-short", m) for m in LRA_MODELS
    ]
    for entry in summary["runs"]:
        assert set(entry["splits"]) == {"train", "val", "test"}
        assert 0.0 <= entry["splits"]["test"]["accuracy"] <= 1.0
    assert set(summary["step_times"]) == set(LRA_MODELS)
    for times in summary["step_times"].values():
        assert list(times) == ["32", "64"] and all(t > 0 for t in times.values())
    assert all(r == 1.0 for r in speedups(summary)["transformer"].values())
    assert json.loads((out / "results.json").read_text()) == summary
    text = (out / "results.md").read_text()
    assert text.startswith("# Table 1: LRA ListOps, preset `smoke`")
    assert "namcore reproduce --grid lra --preset smoke" in text
    assert "expressions of 32–128 tokens" in text
    row = next(line for line in text.splitlines() if line.startswith("| NAM Transformer |"))
    test = 100 * summary["runs"][1]["splits"]["test"]["accuracy"]
    assert f"**{test:.1f}** (36.1)" in row and "(2.66x)" in row
    assert "| 64 |" in text
    for png in ("step_time_vs_length.png", "accuracy_vs_length.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(Path(e["run_dir"]).is_dir() for e in summary["runs"])


def test_markdown_marks_failed_lengths_and_runs():
    split = {"accuracy": 0.5, "by_length": {}}
    entry = {
        "task": "listops-short",
        "splits": {"val": split, "test": split},
        "train_s": 10.0,
        "parameters": 1234,
        "best_step": 5,
        "steps": 10,
    }
    summary = {
        "grid": "lra",
        "preset": "quick",
        "command": None,
        "machine": {"cpu": "cpu", "cpu_count": 2, "platform": "linux", "python": "3.11"},
        "backend": "jax",
        "eval_backend": "jax",
        "versions": {"jax": "0"},
        "wall_s": 30.0,
        "jobs": 1,
        "seed": 0,
        "preset_values": get_preset("quick").to_dict(),
        "runs": [{**entry, "model": "transformer"}, {**entry, "model": "linear-transformer"}],
        "failures": [{"task": "listops-short", "model": "nam-transformer", "error": "boom"}],
        "step_times": {
            "transformer": {"64": 0.4, "512": None},
            "linear-transformer": {"64": 0.1, "512": 0.2},
        },
    }
    text = lra_markdown(summary)
    assert "| Linear Transformer | **50.0** (36.5) | 50.0 | — (2.59x) | 1.00x |" in text
    assert "| 64 | 400 (1.00x) | 100 (4.00x) |" in text
    assert "| 512 | failed | 200 (—) |" in text
    assert "- listops-short / nam-transformer: boom" in text


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--models", "gpt"], "unknown model 'gpt'"),
        (["--tasks", "listops-long"], "unknown task 'listops-long'"),
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--backend", "numpy"], "cannot train with backend 'numpy'"),
    ],
)
def test_cli_errors_exit_2_and_create_nothing(tmp_path, capsys, argv, word):
    out = tmp_path / "lra"
    assert main(["reproduce", "--grid", "lra", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("namcore reproduce: error:") and word in err
    assert len(err.splitlines()) == 1 and not out.exists()
