"""The model registry: built-in models and plug-ins, looked up by name or config.

A model is a :class:`~namcore.models.ModelEntry`. The built-in ones
(:mod:`namcore.models.builtin`) and those of installed packages are found the same
way, through the entry-point group ``namcore.models``: each entry point names a
``ModelEntry``, and its name is the model's name on the command line. A package
declares one in its ``pyproject.toml``::

    [project.entry-points."namcore.models"]
    bag = "my_package.models:BAG"

:func:`register` adds one in the running process instead. Discovery happens once,
at the first lookup, never at ``import namcore``. A plug-in that fails to load is
skipped with a :class:`PluginWarning` naming it; namcore keeps working.

Examples
--------
>>> from namcore.models import LSAMConfig, entry_for, get_entry, names
>>> names()[:3]
('lsam', 'namtm', 'namtm-nojump')
>>> get_entry("namtm-nojump").class_name
'NAMTM'
>>> entry_for(LSAMConfig(vocab_size=10)).label
'LSAM'
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from importlib import metadata
from typing import Any

from .config import ModelConfig
from .entry import ModelEntry

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginWarning",
    "class_entries",
    "config_class",
    "config_from_dict",
    "entries",
    "entry_for",
    "get_entry",
    "names",
    "register",
    "unregister",
]

#: The entry-point group where packages declare their models.
ENTRY_POINT_GROUP = "namcore.models"

# Checkpoint names of earlier namcore versions.
_LEGACY_MODEL_NAMES = {"nam_transformer": "nam-transformer"}

_entries: dict[str, ModelEntry] = {}
_discovered = False
_discovering = False
_lock = threading.RLock()


class PluginWarning(RuntimeWarning):
    """A package's ``namcore.models`` entry point could not be loaded."""


def register(entry: ModelEntry, *, replace: bool = False) -> ModelEntry:
    """Add a model to the registry of this process; returns ``entry``.

    Parameters
    ----------
    entry : ModelEntry
        The model. Its name must be new (unless ``replace``); an entry sharing its
        config class with another must share its specs, forward and class name.
    replace : bool
        Replace a registered entry of the same name.

    Raises
    ------
    TypeError
        ``entry`` is not a :class:`ModelEntry`.
    ValueError
        The name is taken, or the entry conflicts with one of the same config or
        class name.
    """
    if not isinstance(entry, ModelEntry):
        raise TypeError(f"register: expected a ModelEntry, got {type(entry).__name__}")
    with _lock:
        _discover()
        _add(entry, replace=replace)
    return entry


def unregister(name: str) -> ModelEntry:
    """Remove model ``name`` from this process's registry; returns its entry.

    Its classes in the backend packages disappear with it. ``ValueError`` for an
    unknown name.
    """
    with _lock:
        entry = get_entry(name)
        del _entries[name]
    return entry


def _add(entry: ModelEntry, *, replace: bool) -> None:
    old = _entries.get(entry.name)
    if old is entry:
        return
    if old is not None and not replace:
        raise ValueError(
            f"register: a model named {entry.name!r} is already registered "
            f"(config {old.config.__name__}); pass replace=True to replace it"
        )
    for other in _entries.values():
        if other.name == entry.name:
            continue
        if other.config is entry.config and (
            other.specs is not entry.specs
            or other.forward is not entry.forward
            or other.class_name != entry.class_name
        ):
            raise ValueError(
                f"register: {entry.name!r} shares {entry.config.__name__} with "
                f"{other.name!r} but not its specs, forward and class name"
            )
        if other.class_name == entry.class_name and other.config is not entry.config:
            raise ValueError(
                f"register: class name {entry.class_name!r} of {entry.name!r} is taken by "
                f"{other.name!r} ({other.config.__name__})"
            )
    _entries[entry.name] = entry


def _discover() -> None:
    """Register the built-in models, then every installed entry point (once)."""
    global _discovered, _discovering
    if _discovered or _discovering:  # a plug-in may register() while it is imported
        return
    _discovering = True
    try:
        _load_all()
    finally:
        _discovering = False
    _discovered = True


def _load_all() -> None:
    from . import builtin

    for entry in builtin.ENTRIES:
        _add(entry, replace=False)
    points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name)
    for point in points:
        try:
            entry = point.load()
            if not isinstance(entry, ModelEntry):
                raise TypeError(f"it names a {type(entry).__name__}, not a ModelEntry")
            if entry.name != point.name:
                entry = dataclasses.replace(entry, name=point.name)
            if _entries.get(point.name) is entry:
                continue
            _add(entry, replace=False)
        except Exception as error:
            warnings.warn(
                f"namcore: skipping model plug-in {point.name!r} ({point.value}): "
                f"{type(error).__name__}: {error}",
                PluginWarning,
                stacklevel=4,
            )


def _ensure_discovered() -> None:
    # Lookups take no lock once discovery is done, so that tracers (torch.compile)
    # never meet one inside a model's forward.
    if not _discovered:
        with _lock:
            _discover()


def entries() -> tuple[ModelEntry, ...]:
    """Every registered model: the built-in ones first, then plug-ins by name."""
    _ensure_discovered()
    return tuple(_entries.values())


def names() -> tuple[str, ...]:
    """The names of every registered model (``namcore train --model`` choices)."""
    return tuple(e.name for e in entries())


def get_entry(name: str) -> ModelEntry:
    """The entry of model ``name``; ``ValueError`` naming the choices otherwise."""
    with _lock:
        _discover()
        try:
            return _entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(_entries)}") from None


def class_entries() -> dict[str, ModelEntry]:
    """One entry per model class name (the primary entry of each config class)."""
    out: dict[str, ModelEntry] = {}
    for entry in entries():
        current = out.get(entry.class_name)
        if current is None or entry.name == entry.config.model != current.name:
            out[entry.class_name] = entry
    return out


def entry_for(config: Any) -> ModelEntry:
    """The primary entry of a config instance; ``TypeError`` for anything else."""
    candidates = [e for e in entries() if e.config is type(config)]
    if not candidates:
        known = ", ".join(dict.fromkeys(e.config.__name__ for e in entries()))
        raise TypeError(f"expected a model config ({known}), got {type(config).__name__}")
    model = getattr(config, "model", None)
    return next((e for e in candidates if e.name == model), candidates[0])


def config_class(model: str) -> type[ModelConfig]:
    """The config dataclass stored under ``model`` in checkpoints (``"lsam"``, ...)."""
    model = _LEGACY_MODEL_NAMES.get(model, model)
    for entry in entries():
        if entry.config.model == model:
            return entry.config
    known = sorted({e.config.model for e in entries()})
    raise ValueError(f"unknown model {model!r}; expected one of {known}")


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from :meth:`ModelConfig.to_dict` output.

    Raises ``ValueError`` naming unknown or missing fields.

    Examples
    --------
    >>> from namcore.models import NAMTMConfig, config_from_dict
    >>> cfg = NAMTMConfig(vocab_size=16, d_model=32, n_tapes=4)
    >>> config_from_dict(cfg.to_dict()) == cfg
    True
    """
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise ValueError("a model config must be a mapping with a 'model' name (a string)")
    cls = config_class(data["model"])
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {key: value for key, value in data.items() if key != "model"}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {unknown}; known: {sorted(fields)}")
    try:
        return cls(**values)
    except TypeError as error:  # a missing field, or a value of the wrong type
        raise ValueError(
            str(error) if str(error).startswith(cls.__name__) else f"{cls.__name__}: {error}"
        ) from None
