"""Which specs and forward function belong to which config class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ham, lsam, lstm_baseline, namtm, transformer
from .config import (
    HAMConfig,
    LSAMConfig,
    LSTMBaselineConfig,
    ModelConfig,
    NAMTMConfig,
    NAMTransformerConfig,
    TransformerBaselineConfig,
)


@dataclass(frozen=True)
class Entry:
    """A model: its public class name, config class, parameter specs and forward math."""

    name: str
    config: type[ModelConfig]
    specs: Callable[[Any], dict]
    forward: Callable[..., Any]


ENTRIES: dict[type[ModelConfig], Entry] = {
    e.config: e
    for e in (
        Entry("LSAM", LSAMConfig, lsam.specs, lsam.forward),
        Entry("NAMTM", NAMTMConfig, namtm.specs, namtm.forward),
        Entry("NAMTransformer", NAMTransformerConfig, transformer.specs, transformer.forward_nam),
        Entry("LSTMBaseline", LSTMBaselineConfig, lstm_baseline.specs, lstm_baseline.forward),
        Entry(
            "TransformerBaseline",
            TransformerBaselineConfig,
            transformer.specs,
            transformer.forward_softmax,
        ),
        Entry("HAM", HAMConfig, ham.specs, ham.forward),
    )
}

#: Public model class names, the same in every backend package.
MODEL_NAMES: tuple[str, ...] = tuple(e.name for e in ENTRIES.values())


def entry(config: Any) -> Entry:
    """The entry of a config instance; ``TypeError`` for anything else."""
    try:
        return ENTRIES[type(config)]
    except KeyError:
        raise TypeError(
            f"expected a model config ({', '.join(c.__name__ for c in ENTRIES)}), "
            f"got {type(config).__name__}"
        ) from None


def by_name(name: str) -> Entry:
    """The entry of a public class name such as ``"NAMTM"``."""
    for e in ENTRIES.values():
        if e.name == name:
            return e
    raise KeyError(name)
