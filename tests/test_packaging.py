"""A wheel built from this tree installs into a fresh virtual environment and imports."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        cwd=out,
    )
    (path,) = out.glob("namcore-*.whl")
    return path


@pytest.mark.slow
def test_wheel_installs_namcore_only_under_one_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"namcore"}
    for module in (
        "namcore/backends/__init__.py",
        "namcore/backends/torch.py",
        "namcore/models/__init__.py",
        "namcore/_agnostic/memory.py",
        "namcore/testing/__init__.py",
    ):
        assert module in names


@pytest.mark.slow
def test_wheel_imports_in_a_fresh_virtual_environment(wheel, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
        ],
        cwd=tmp_path,
    )
    out = _run(
        [
            str(python),
            "-c",
            "import sys, numpy as np, namcore, namcore.backends, namcore.models\n"
            "import importlib.util as u\n"
            "M = namcore.write(np.zeros((2, 3)), np.ones(3), np.ones(2))\n"
            "print(namcore.__version__, namcore.read(M, np.ones(3)).round(6).tolist())\n"
            "print(u.find_spec('backends'), u.find_spec('models'))\n"
            "print(namcore.backends.__file__)\n",
        ],
        cwd=tmp_path,
    )
    first, top_level, backends_file = out.strip().splitlines()
    version, values = first.split(" ", 1)
    assert version != "0.0.0+unknown"
    assert values == "[1.0, 1.0]"
    assert top_level == "None None"
    assert "site-packages" in backends_file
    _run([str(env / "bin" / "namcore"), "check", "--backends", "numpy"], cwd=tmp_path)
