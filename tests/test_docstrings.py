"""The examples in public docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "namcore.memory",
    "namcore.attention",
    "namcore.backends",
    "namcore._io",
    "namcore.testing._compare",
    "namcore.testing",
    "namcore.models",
    "namcore.models.config",
    "namcore.models.params",
    "namcore.models.serialization",
    "namcore.models.numpy",
    "namcore.models.torch",
    "namcore.models.jax",
    "namcore.ham",
    "namcore.export",
    "namcore.training.reinforce",
    "namcore._agnostic.delta",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.endswith((".torch", ".jax")):
        pytest.importorskip(name.rsplit(".", 1)[1])
    if name == "namcore.export":
        pytest.importorskip("ndonnx")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
