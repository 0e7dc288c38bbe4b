"""mypy over namcore's source tree: ``python -m namcore.testing._typecheck`` (a developer tool).

``pyproject.toml`` installs the repository's folders ``backends/`` and ``models/`` as
the packages ``namcore.backends`` and ``namcore.models`` (``[tool.setuptools]
package-dir``). mypy finds modules by their paths and cannot follow the import hook
of an editable install, so plain ``mypy`` calls ``backends/_base.py`` the module
``backends._base`` and finds no ``namcore.backends`` at all. This runs mypy with the
settings of ``[tool.mypy]`` on the files it lists (``files``), each one named after
the module it installs as, and prints what ``mypy`` prints.

Run it from the repository root (where ``pyproject.toml`` is)::

    python -m namcore.testing._typecheck

Arguments go to mypy as they are (``--no-incremental``, ``--strict``...). Files given
there replace the list of ``[tool.mypy]``; modules of the folders left out are then
not found, so name all three (``namcore backends models``) to check with other
settings. The exit status is mypy's: 0 when clean, 1 with errors, 2 when mypy could
not run.

Examples
--------
>>> installed_module("backends._base", {"backends": "namcore.backends"})
'namcore.backends._base'
>>> installed_module("namcore.ham", {"backends": "namcore.backends"})
'namcore.ham'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["installed_module", "main", "package_folders"]


def package_folders(pyproject: Path) -> dict[str, str]:
    """``{folder module: package}`` of ``[tool.setuptools] package-dir`` in ``pyproject``.

    A folder is written as a module name, e.g. ``{"backends": "namcore.backends"}``;
    packages that live in the folder of their own name are left out.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # mypy depends on tomli on Python 3.10
        import tomli as tomllib

    with open(pyproject, "rb") as handle:
        setuptools = tomllib.load(handle).get("tool", {}).get("setuptools", {})
    folders = {}
    for package, folder in setuptools.get("package-dir", {}).items():
        module = str(folder).strip("/").replace("/", ".")
        if package and module != package:
            folders[module] = package
    return folders


def installed_module(module: str, folders: Mapping[str, str]) -> str:
    """The name ``module`` (named after its path by mypy) has once installed."""
    for folder, package in folders.items():
        if module == folder or module.startswith(folder + "."):
            return package + module[len(folder) :]
    return module


def main(argv: Sequence[str] | None = None) -> int:
    """Run mypy as described above; return its exit status."""
    from mypy import build, util
    from mypy.errors import CompileError
    from mypy.fscache import FileSystemCache
    from mypy.main import process_options
    from mypy.modulefinder import BuildSource

    pyproject = Path("pyproject.toml")
    if not pyproject.is_file():
        print("run this from the repository root (no pyproject.toml here)", file=sys.stderr)
        return 2
    folders = package_folders(pyproject)
    fscache = FileSystemCache()
    args = list(sys.argv[1:] if argv is None else argv)
    sources, options = process_options(args, stdout=sys.stdout, stderr=sys.stderr, fscache=fscache)
    renamed = [
        BuildSource(s.path, installed_module(s.module, folders), s.text, s.base_dir, s.followed)
        for s in sources
    ]
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    messages: list[str] = []

    def flush(_path: str | None, new: list[str], serious: bool) -> None:
        messages.extend(new)
        stream = sys.stderr if serious else sys.stdout
        for message in new:
            stream.write((formatter.colorize(message) if options.color_output else message) + "\n")
        stream.flush()

    blockers = False
    try:
        build.build(renamed, options, None, flush, fscache, sys.stdout, sys.stderr)
    except CompileError:
        blockers = True
    n_errors, _, n_files = util.count_stats(messages)
    if n_errors:
        print(
            formatter.format_error(
                n_errors, n_files, len(sources), blockers=blockers, use_color=options.color_output
            )
        )
    elif not blockers:
        print(formatter.format_success(len(sources), options.color_output))
    return 2 if blockers else (1 if n_errors else 0)


if __name__ == "__main__":
    sys.exit(main())
