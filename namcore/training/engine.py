"""The training engine: one declared interface, and which framework implements it.

An :class:`Engine` holds a model, its optimiser and the jitted or autograd step of
one framework. The trainer (:func:`namcore.training.train`) and the evaluation during
training see nothing else: every framework that trains implements this protocol, and
the table :data:`ENGINES` says where each implementation lives and what it needs.

Examples
--------
>>> from namcore.training.engine import FRAMEWORKS, ENGINES
>>> FRAMEWORKS
('torch', 'jax')
>>> ENGINES["jax"].requires
('jax', 'optax')
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from namcore import backends
from namcore.models import LossHook, ModelConfig, entry_for

from .errors import TrainingError
from .presets import Preset

__all__ = [
    "ENGINES",
    "FRAMEWORKS",
    "Engine",
    "EngineFactory",
    "EngineSpec",
    "active_hook",
    "engine_class",
    "require_backend",
    "require_modules",
]


@runtime_checkable
class Engine(Protocol):
    """A model, its optimiser and its training step in one framework.

    Arrays cross this interface as NumPy arrays; what happens inside (devices,
    compilation, padding) is the engine's business. Implemented by
    :class:`~namcore.training._torch.TorchEngine` and
    :class:`~namcore.training._jax.JAXEngine`; an engine is built with
    ``factory(config, preset, seed)`` (:data:`EngineFactory`).
    """

    #: The backend name of the framework (``"torch"``, ``"jax"``); stored with the
    #: optimiser state, whose layout only this framework reads back.
    framework: str

    def train_step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        loss_mask: np.ndarray,
        lr: float,
        step: int = 0,
    ) -> tuple[float, float]:
        """One optimiser step at learning rate ``lr`` on a batch (B, L).

        ``step`` is the 0-based optimiser step: a model's loss hook draws its random
        arrays from it (and the seed), so a resumed run repeats what an uninterrupted
        one does. Returns the mean token cross-entropy and the sequence accuracy of
        the batch (before the update).
        """
        ...

    def predict(self, inputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Predicted token ids (B, L) of the current parameters."""
        ...

    def params(self) -> dict[str, np.ndarray]:
        """The parameters as NumPy arrays under the shared names of :mod:`namcore.models`."""
        ...

    def optimizer_arrays(self) -> dict[str, np.ndarray]:
        """The optimiser state as named NumPy arrays (for a safetensors file)."""
        ...

    def load(self, params: dict[str, np.ndarray], optimizer: dict[str, np.ndarray]) -> None:
        """Restore parameters and an optimiser state written by :meth:`optimizer_arrays`.

        Raises ``ValueError`` or ``KeyError`` when they do not fit this engine.
        """
        ...


#: What builds an engine: ``factory(config, preset, seed)``.
EngineFactory = Callable[[ModelConfig, Preset, int], Engine]


def active_hook(config: ModelConfig) -> LossHook | None:
    """The loss hook an engine adds when training ``config``, or None.

    The model's entry declares it (:attr:`namcore.models.ModelEntry.loss_hook`); it
    is active when it applies to this config (hard-access HAM's REINFORCE applies to
    ``access="hard"`` only). An active hook changes the step in every engine alike:
    the forward gets ``**hook.draw(config, seed, step, (B, L))`` (converted to the
    framework's arrays) and ``**hook.options`` and returns ``(logits, aux)``; the
    loss is the token cross-entropy plus ``hook.loss(params, aux, target_logp, mask,
    loss_mask, stop_gradient=..., preset=...)``.

    Examples
    --------
    >>> from namcore.models import HAMConfig
    >>> active_hook(HAMConfig(vocab_size=8, d_model=8, access="soft")) is None
    True
    >>> active_hook(HAMConfig(vocab_size=8, d_model=8, access="hard")).options
    {'return_policy': True}
    """
    hook = entry_for(config).loss_hook
    return hook if hook is not None and hook.applies(config) else None


@dataclass(frozen=True)
class EngineSpec:
    """Where the engine of one framework lives and what it needs installed.

    Parameters
    ----------
    module : str
        The module that defines it.
    class_name : str
        Its class (an :data:`EngineFactory`) in ``module``.
    requires : tuple of str
        Top-level modules that must be importable.
    """

    module: str
    class_name: str
    requires: tuple[str, ...]


#: The engines, by framework (a name of :data:`namcore.backends.NAMES`).
ENGINES: dict[str, EngineSpec] = {
    "torch": EngineSpec("namcore.training._torch", "TorchEngine", ("torch",)),
    "jax": EngineSpec("namcore.training._jax", "JAXEngine", ("jax", "optax")),
}

#: Backends the trainer can train with, in the order of :data:`namcore.backends.NAMES`.
FRAMEWORKS: tuple[str, ...] = tuple(name for name in backends.NAMES if name in ENGINES)


def require_backend(name: str) -> None:
    """``TrainingError`` with the install command unless backend ``name`` is installed."""
    if name not in backends.NAMES or not backends.get(name).is_installed():
        raise TrainingError(f"backend {name!r} is not installed ({backends.install_hint(name)})")


def _missing(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is None  # None: blocked, as an uninstalled module
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def require_modules(modules: tuple[str, ...], extra: str, purpose: str) -> None:
    """``TrainingError`` naming the extra to install unless every one of ``modules`` is.

    Parameters
    ----------
    modules : tuple of str
        Top-level modules needed (e.g. ``("tqdm",)``).
    extra : str
        The extra of namcore that installs them (e.g. ``"torch"``).
    purpose : str
        What needs them, for the message (e.g. ``"namcore train"``).

    Examples
    --------
    >>> require_modules(("numpy",), "torch", "namcore train")
    >>> require_modules(("no_such_module",), "torch", "namcore train")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: namcore train needs no_such_module, ... 'namcore[torch]'
    """
    missing = [m for m in modules if _missing(m)]
    if missing:
        raise TrainingError(
            f"{purpose} needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'namcore[{extra}]'"
        )


def engine_class(framework: str) -> EngineFactory:
    """The engine of ``framework``, imported; ``TrainingError`` if it cannot train here.

    Examples
    --------
    >>> from namcore.training.engine import engine_class
    >>> engine_class("numpy")
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: cannot train with backend 'numpy'; choose from torch, jax
    """
    spec = ENGINES.get(framework)
    if spec is None:
        raise TrainingError(
            f"cannot train with backend {framework!r}; choose from {', '.join(FRAMEWORKS)}"
        )
    for module in spec.requires:
        if importlib.util.find_spec(module) is None:
            raise TrainingError(
                f"backend {framework!r} is not installed (missing {module}; "
                f"pip install 'namcore[{framework}]')"
            )
    require_backend(framework)
    factory: EngineFactory = getattr(importlib.import_module(spec.module), spec.class_name)
    return factory
