"""``namcore reproduce``: the grid, its resumption, the report and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from namcore.cli import main
from namcore.training import TrainingError, reproduce, train
from namcore.training.paper import PAPER_MODELS, TABLE2
from namcore.training.report import by_length, console_table, markdown
from namcore.training.reproduce import GRID_MODELS, GRID_TASKS, HAM_MODELS, HAM_TASKS, grid

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def test_grid_is_the_whole_product_longest_first():
    cells = grid()
    assert {(c.task, c.model) for c in cells} == {(t, m) for t in GRID_TASKS for m in GRID_MODELS}
    assert len(cells) == len(GRID_TASKS) * len(GRID_MODELS) == 40
    costs = [c.cost for c in cells]
    assert costs == sorted(costs, reverse=True)
    assert (cells[0].task, cells[0].model) == ("scan", "namtm")
    assert [(c.task, c.model) for c in grid(["lstm", "lstm"], ["add"])] == [("add", "lstm")]


def test_ham_grid_and_the_asked_order():
    cells = grid(name="ham")
    assert {(c.task, c.model) for c in cells} == {(t, m) for t in HAM_TASKS for m in HAM_MODELS}
    asked = grid(["lstm", "ham"], ["sort", "reverse"], longest_first=False)
    assert [(c.task, c.model) for c in asked] == [
        ("sort", "lstm"),
        ("sort", "ham"),
        ("reverse", "lstm"),
        ("reverse", "ham"),
    ]
    with pytest.raises(TrainingError, match="unknown grid 'nam'"):
        grid(name="nam")


@pytest.mark.parametrize(
    ("models", "task_names", "word"),
    [
        (["bogus"], None, "bogus"),
        (None, ["fib"], "fib"),
        ([], None, "at least one"),
    ],
)
def test_grid_refuses_unknown_names(models, task_names, word):
    with pytest.raises(TrainingError, match=word):
        grid(models, task_names)


def test_paper_table_holds_the_published_numbers():
    # Spot checks against Table 2 of the paper (arXiv 2302.09422).
    assert TABLE2["reduce"]["od_hard"]["lstm"] == 63.6
    assert TABLE2["add"]["od_hard"]["namtm"] == 71.5
    assert TABLE2["scan"]["test"]["lsam"] == 14.9
    assert TABLE2["reverse"]["od_hard"]["transformer"] == 19.0
    ours = {m for _, m in PAPER_MODELS if m is not None}
    assert ours <= set(GRID_MODELS)
    for rows in TABLE2.values():
        for row in rows.values():
            assert len(row) == len(PAPER_MODELS)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    summary = reproduce(
        out,
        preset="smoke",
        models=["lstm", "namtm"],
        task_names=["reduce"],
        backend="torch",
        eval_backend="numpy",
        jobs=1,
        progress=False,
        command="namcore reproduce --preset smoke",
    )
    return out, summary


def test_reproduce_writes_runs_and_report(smoke):
    out, summary = smoke
    assert summary["failures"] == []
    assert [(e["task"], e["model"]) for e in summary["runs"]] == [
        ("reduce", "lstm"),
        ("reduce", "namtm"),
    ]
    for entry in summary["runs"]:
        run = Path(entry["run_dir"])
        assert (run / "best.safetensors").is_file() and (run / "eval.json").is_file()
        assert json.loads((run / "eval.json").read_text())["backend"] == "numpy"
        assert set(entry["splits"]) == {"train", "id", "od_easy", "od_hard", "od_extra"}
        assert entry["steps"] == 20 and 1 <= entry["best_step"] <= 20
        assert entry["parameters"] > 0
        lengths = by_length(entry)
        assert list(lengths) == list(range(1, 23))  # train 1-10 plus every test length
    assert json.loads((out / "results.json").read_text()) == summary
    text = (out / "results.md").read_text()
    assert "namcore reproduce --preset smoke" in text
    assert "| reduce | OD-hard |" in text and "(63.6)" in text and "(100)" in text
    assert (out / "accuracy_vs_length.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = console_table(summary)
    assert "NAM-TM" in table and "reduce OD-hard" in table


def test_markdown_shows_our_numbers_beside_the_papers(smoke):
    _, summary = smoke
    entry = next(e for e in summary["runs"] if e["model"] == "lstm")
    ours = 100 * entry["splits"]["od_hard"]["accuracy"]
    row = next(
        line for line in markdown(summary).splitlines() if line.startswith("| reduce | OD-hard |")
    )
    assert f"**{ours:.1f}** (63.6)" in row


def test_reproduce_again_resumes_without_training(smoke):
    out, summary = smoke
    before = {
        e["model"]: (Path(e["run_dir"]) / "last.safetensors").read_bytes() for e in summary["runs"]
    }
    again = reproduce(
        out,
        preset="smoke",
        models=["lstm", "namtm"],
        task_names=["reduce"],
        backend="torch",
        eval_backend="torch",
        jobs=1,
        progress=False,
    )
    for entry in again["runs"]:
        assert (Path(entry["run_dir"]) / "last.safetensors").read_bytes() == before[entry["model"]]
        old = next(e for e in summary["runs"] if e["model"] == entry["model"])
        assert entry["train_s"] == old["train_s"]  # nothing was trained
        assert entry["splits"]["od_hard"]["accuracy"] == old["splits"]["od_hard"]["accuracy"]


def test_parallel_jobs_give_the_same_runs(smoke, tmp_path):
    _, summary = smoke
    parallel = reproduce(
        tmp_path,
        preset="smoke",
        models=["lstm", "namtm"],
        task_names=["reduce"],
        backend="torch",
        eval_backend="numpy",
        jobs=2,
        progress=False,
    )
    assert parallel["failures"] == [] and parallel["jobs"] == 2
    for a, b in zip(summary["runs"], parallel["runs"], strict=True):
        assert a["model"] == b["model"] and a["splits"] == b["splits"]


def test_a_failing_cell_is_reported_and_the_others_still_run(tmp_path):
    train(
        "reduce",
        "lstm",
        "torch",
        tmp_path / "runs" / "reduce-lstm",
        preset="smoke",
        steps=2,
        progress=False,
    )
    kept = (tmp_path / "runs" / "reduce-lstm" / "last.safetensors").read_bytes()
    # The folder holds a smoke run, so training it with another preset must refuse.
    summary = reproduce(
        tmp_path,
        preset="quick",
        models=["lstm"],
        task_names=["reduce"],
        backend="torch",
        jobs=1,
        progress=False,
    )
    assert summary["runs"] == []
    assert "preset 'smoke'" in summary["failures"][0]["error"]
    assert (tmp_path / "runs" / "reduce-lstm" / "last.safetensors").read_bytes() == kept
    assert "Runs that failed" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--models", "gpt"], "unknown model 'gpt'"),
        (["--tasks", "fib"], "unknown task 'fib'"),
        (["--preset", "huge"], "unknown preset"),
        (["--backend", "numpy"], "cannot train with backend 'numpy'"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--seed", "-1"], "--seed must be an integer from 0"),
    ],
)
def test_cli_errors_exit_2_and_create_nothing(tmp_path, capsys, argv, word):
    out = tmp_path / "repro"
    assert main(["reproduce", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("namcore reproduce: error:") and word in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_refuses_a_file_as_out(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("mine")
    assert (
        main(
            [
                "reproduce",
                "--out",
                str(target),
                "--models",
                "lstm",
                "--tasks",
                "reduce",
                "--preset",
                "smoke",
                "--backend",
                "torch",
            ]
        )
        == 2
    )
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "mine"


@pytest.mark.parametrize(
    "models", [["namtm", "lstm"], ["namtm", "lstm", "transformer", "nam-transformer", "lsam"]]
)
def test_plot_of_one_task_keeps_title_and_legend_inside(tmp_path, monkeypatch, models):
    """One panel is narrower than the title's line (and a legend of many models)."""
    import matplotlib.pyplot as plt

    from namcore.training.report import plot

    split = {"accuracy": 0.9, "by_length": {"5": 1.0, "10": 0.8}}
    runs = [{"task": "reduce", "model": m, "splits": {"id": split}} for m in models]
    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep the figure to measure it
    plot({"preset": "quick", "runs": runs}, tmp_path / "accuracy_vs_length.png")
    (fig,) = drawn
    renderer, box = fig.canvas.get_renderer(), fig.bbox
    assert "accuracy against length" in fig.get_suptitle()
    for artist in [*fig.texts, *fig.legends]:  # the title is one of the figure's texts
        extent = artist.get_window_extent(renderer)
        assert extent.x0 >= 0 and extent.x1 <= box.width, (artist, extent)
        assert extent.y0 >= 0 and extent.y1 <= box.height, (artist, extent)
    monkeypatch.undo()
    plt.close(fig)


def test_reproduce_refuses_an_unknown_eval_backend_before_training(tmp_path):
    from namcore.training import TrainingError, reproduce

    with pytest.raises(TrainingError, match="unknown --eval-backend 'bogus'; choose from numpy"):
        reproduce(tmp_path / "out", eval_backend="bogus", backend="torch")
    assert not (tmp_path / "out").exists()
