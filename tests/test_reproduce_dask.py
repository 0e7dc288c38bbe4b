"""``namcore reproduce --scheduler``: the grid's cells as tasks of a dask.distributed cluster."""

from __future__ import annotations

import pytest

from namcore.training import TrainingError
from namcore.training.reproduce import reproduce

distributed = pytest.importorskip("distributed")

GRID = {
    "preset": "smoke",
    "models": ["lstm", "transformer"],
    "task_names": ["reduce"],
    "backend": "torch",
    "eval_backend": "numpy",
    "progress": False,
}


def by_cell(summary: dict) -> dict[tuple[str, str], dict]:
    return {(run["task"], run["model"]): run for run in summary["runs"]}


def test_grid_on_a_local_cluster_equals_local_runs_and_resumes(tmp_path):
    pytest.importorskip("torch")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        protocol="tcp",
        dashboard_address=None,
        silence_logs=50,
    ) as cluster:
        address = cluster.scheduler_address
        remote = reproduce(tmp_path / "remote", scheduler=address, **GRID)
        again = reproduce(tmp_path / "remote", scheduler=address, **GRID)
    local = reproduce(tmp_path / "local", jobs=1, **GRID)
    assert remote["scheduler"] == address and not remote["failures"]
    assert (
        set(by_cell(remote))
        == set(by_cell(local))
        == {("reduce", "lstm"), ("reduce", "transformer")}
    )
    for cell, run in by_cell(remote).items():
        assert run["splits"] == by_cell(local)[cell]["splits"]  # the same steps, the same scores
        assert by_cell(again)[cell]["train_s"] == run["train_s"]  # resumed: nothing retrained
    assert (tmp_path / "remote" / "results.md").is_file()


def test_a_malformed_scheduler_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TrainingError, match="--scheduler 'nowhere' is not an address"):
        reproduce(tmp_path / "out", scheduler="nowhere", **GRID)
    assert not (tmp_path / "out").exists()
