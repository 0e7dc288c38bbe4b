"""The example plug-in (docs/examples/namcore-bag), installed for real and used end to end.

The package declares one entry point in the group ``namcore.models``; with it on the
path, and no change in namcore, its model must appear in the NumPy, torch and JAX
model packages, train from the CLI with both frameworks, evaluate identically on
NumPy and torch, and pass ``namcore check``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "namcore-bag"

pytest.importorskip("torch")
pytest.importorskip("jax")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example package installed by pip into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "namcore_bag-0.1.0.dist-info" / "entry_points.txt").exists()
    return target


def _run(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_example_plugin_trains_evaluates_and_passes_check(site, tmp_path):
    result = _run(
        site,
        """
        import doctest, json, sys
        import namcore_bag
        from namcore import models
        from namcore.cli import main
        from namcore.models.jax import Bag as JAXBag
        from namcore.models.numpy import Bag as NumPyBag
        from namcore.models.torch import Bag as TorchBag

        assert "bag" in models.names()
        for cls in (NumPyBag, TorchBag, JAXBag):
            assert cls.__name__ == "Bag" and cls._entry is models.get_entry("bag")
        assert doctest.testmod(namcore_bag).failed == 0
        common = ["--task", "reduce", "--model", "bag", "--preset", "smoke", "--steps", "5"]
        assert main(["train", *common, "--backend", "torch", "--out", "run-torch"]) == 0
        assert main(["train", *common, "--backend", "jax", "--out", "run-jax"]) == 0
        scores = {}
        for backend in ("numpy", "torch"):
            assert main(["eval", "run-torch", "--backend", backend, "--size", "64"]) == 0
            with open("run-torch/eval.json") as handle:
                scores[backend] = json.load(handle)
        assert main(["eval", "run-jax", "--backend", "numpy", "--size", "64"]) == 0
        print("SCORES", json.dumps(scores))
        code = main(["check", "--backends", "numpy,array_api_strict,torch,jax",
                     "--dtypes", "float64", "--only", "model bag"])
        sys.exit(code)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "model bag" in result.stdout and "all backends agree" in result.stdout
    scores = json.loads(result.stdout.split("SCORES ", 1)[1].splitlines()[0])
    numpy_splits, torch_splits = scores["numpy"]["splits"], scores["torch"]["splits"]
    assert numpy_splits.keys() == torch_splits.keys() and numpy_splits
    for split in numpy_splits:
        assert numpy_splits[split]["accuracy"] == torch_splits[split]["accuracy"]
    run = json.loads((tmp_path / "run-jax" / "run.json").read_text())
    assert run["model"] == "bag" and run["config"]["model"] == "bag"
