"""The repository's promises: README commands, CI entry point, no framework imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n```", text, re.S)
    assert match, f"README has no command after <!-- {marker} -->"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [
        ln for ln in lines if ln and not ln.startswith("#") and not ln.startswith(("set ", "cd "))
    ]
    assert commands == [_readme_command("test-command")]


def test_readme_commands_pin_torch_through_constraints():
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==\d", constraints, re.M)
    for marker in ("main-command", "test-command"):
        assert "-c constraints.txt" in _readme_command(marker)


def _run_python(code: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_namcore_imports_no_framework(tmp_path):
    out = _run_python(
        "import sys, numpy as np, namcore, namcore.backends, namcore.testing\n"
        "M = namcore.write(np.zeros((2, 3)), np.ones(3), np.ones(2))\n"
        "namcore.read(M, np.ones(3)); namcore.backends.installed()\n"
        "heavy = ('torch', 'jax', 'cupy', 'jaxlib', 'ndonnx', 'onnxruntime', 'dask')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n",
        tmp_path,
    )
    assert out.strip() == "[]"


def test_editable_install_maps_the_top_level_folders(tmp_path):
    # Run from an unrelated directory so the repository is not on sys.path.
    out = _run_python(
        "import namcore.backends, namcore.models, importlib.util as u\n"
        "print(namcore.backends.__file__); print(namcore.models.__file__)\n"
        "print(u.find_spec('backends'), u.find_spec('models'))\n",
        tmp_path,
    )
    backends_file, models_file, top_level = out.strip().splitlines()
    assert Path(backends_file).parent.name == "backends"
    assert Path(models_file).parent.name == "models"
    assert top_level == "None None", "a top-level backends/models package is importable"
