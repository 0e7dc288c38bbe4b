"""The per-backend model classes, built lazily from the registry's entries.

Each backend package (:mod:`namcore.models.numpy`, ``.cupy``, ``.torch``, ``.jax``)
answers attribute lookups of a model's class name (``LSAM``, or a plug-in's
``Bag``) with a class made on first use from the model's entry, so a model
registered by an installed package appears in every backend with no change in
namcore.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from .entry import ModelEntry
from .registry import class_entries

__all__ = ["check_config", "class_doc", "config_ref", "lazy_classes"]


def check_config(cls: type, config: Any) -> None:
    """``TypeError`` unless ``config`` is the config class of the model class ``cls``."""
    expected = cls._entry.config  # type: ignore[attr-defined]
    if type(config) is not expected:
        got = type(config)
        owner = next((e.class_name for e in class_entries().values() if e.config is got), None)
        hint = f" (a {owner} model: use {owner} instead)" if owner else ""
        raise TypeError(f"{cls.__name__} takes a {expected.__name__}, got {got.__name__}{hint}")


def lazy_classes(
    namespace: MutableMapping[str, Any],
    make: Callable[[ModelEntry], type],
    names: Sequence[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a backend package whose globals are ``namespace``.

    ``make(entry)`` builds the class of one entry; it is called once per class name
    (again only if the entry was replaced). ``__all__`` is the class names of every
    registered model followed by ``names``.
    """
    module = namespace["__name__"]
    cache: dict[str, type] = {}

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            return [*class_entries(), *names]
        entry = class_entries().get(name)
        if entry is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        cls = cache.get(name)
        if cls is None or cls._entry is not entry:  # type: ignore[attr-defined]
            cls = cache[name] = make(entry)
        return cls

    def __dir__() -> list[str]:
        return sorted({*namespace, *class_entries()})

    return __getattr__, __dir__


def config_ref(entry: ModelEntry) -> str:
    """A Sphinx reference to ``entry``'s config class (built-ins under namcore.models)."""
    cls = entry.config
    module = "namcore.models" if cls.__module__.startswith("namcore.models") else cls.__module__
    return f":class:`~{module}.{cls.__qualname__}`"


def class_doc(summary: str, base: type) -> str:
    """A model class's docstring: ``summary`` and the parameters of ``base``."""
    return summary + "\n\n" + (base.__doc__ or "").split("\n", 2)[-1]
