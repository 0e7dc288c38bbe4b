"""The examples in every module's docstrings run and print what they say.

The modules are found by walking the installed packages, so a new module is checked
without being listed here. A module that needs a framework which is not installed
(torch, jax, ndonnx, ...) is skipped with the framework's name; a module without any
example passes.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable, Iterator
from types import ModuleType

import pytest

# namcore.backends and namcore.models are installed from the repository's folders
# backends/ and models/ (pyproject.toml's package-dir): in an editable install they are
# not under namcore's own folder, where pkgutil looks, so they are walked as roots too.
ROOTS = ("namcore", "namcore.backends", "namcore.models")


def _walk(path: Iterable[str], prefix: str) -> Iterator[str]:
    """Names of the modules and packages under ``path``, found without importing them.

    ``__main__`` modules are left out: importing one runs its program.
    """
    for info in pkgutil.iter_modules(path, prefix):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        yield info.name
        if info.ispkg:
            spec = info.module_finder.find_spec(info.name)  # a FileFinder: no import
            if spec is not None and spec.submodule_search_locations is not None:
                yield from _walk(spec.submodule_search_locations, info.name + ".")


def module_names() -> list[str]:
    """Every module of the installed namcore packages (importing none of them)."""
    names: set[str] = set()
    for root in ROOTS:
        spec = importlib.util.find_spec(root)  # imports the parent package only
        assert spec is not None and spec.submodule_search_locations is not None, root
        names.add(root)
        names.update(_walk(spec.submodule_search_locations, root + "."))
    return sorted(names)


def test_the_walk_finds_modules_of_every_root():
    names = module_names()
    for root in ROOTS:
        assert any(name.startswith(root + ".") for name in names), root
    assert "namcore.backends._base" in names and "namcore.memory" in names


def _import(name: str) -> ModuleType:
    """Import ``name``; skip (visibly) when an optional framework it needs is missing."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "namcore":
            pytest.skip(f"{name} needs {missing}, which is not installed")
        raise


@pytest.mark.parametrize("name", module_names())
def test_docstring_examples(name, tmp_path, monkeypatch):
    module = _import(name)
    monkeypatch.chdir(tmp_path)  # examples that save files leave them here
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
