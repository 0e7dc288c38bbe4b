"""The description of one model: :class:`ModelEntry` and its optional parts.

Everything namcore does per model (the classes of :mod:`namcore.models.numpy`,
``.cupy``, ``.torch`` and ``.jax``, the ``--model`` choices of ``namcore train``,
presets, ONNX export, ``namcore check``, the model tests and report labels) is
derived from these entries. A model made outside namcore plugs in by registering
one (:func:`namcore.models.register`, or an entry point in the group
``namcore.models``; see :mod:`namcore.models.registry`).

Examples
--------
>>> import dataclasses
>>> from namcore.models import ModelConfig, ModelEntry, Spec
>>> @dataclasses.dataclass(frozen=True)
... class ZeroConfig(ModelConfig):
...     model = "zero"  # a class attribute (in a module: model: ClassVar[str] = "zero")
>>> def zero_specs(config):
...     return {"bias": Spec((config.output_size,), "zeros")}
>>> def zero_forward(params, tokens, mask=None, *, config):
...     return params["bias"] + 0.0 * tokens[..., None]
>>> entry = ModelEntry("zero", ZeroConfig, zero_specs, zero_forward)
>>> entry.class_name, entry.label, entry.export
('Zero', 'zero', 'sequence')
>>> entry.example_configs()
{'zero': ZeroConfig(vocab_size=11, d_model=16, n_outputs=None)}
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ModelConfig

if TYPE_CHECKING:  # pragma: no cover
    from namcore.tasks import Task
    from namcore.training.presets import Preset

    from .spec import Spec

__all__ = ["EXPORT_KINDS", "LossHook", "ModelEntry", "Streaming"]

#: How a model's whole forward pass exports to ONNX: ``"sequence"`` takes any batch
#: and length, ``"unrolled"`` unrolls a recurrence at a fixed length (ndonnx records
#: no loops), ``"none"`` cannot be exported (say why in ``export_note``).
EXPORT_KINDS: tuple[str, ...] = ("sequence", "unrolled", "none")


@dataclass(frozen=True)
class LossHook:
    """A training loss a model adds to the token cross-entropy.

    The training engines call the forward with the arrays :attr:`draw` returns and
    the keywords :attr:`options`; the forward then returns ``(logits, aux)``, and
    ``loss(params, aux, target_logp, mask, loss_mask, stop_gradient=..., preset=...)``
    is added to the cross-entropy. Hard-access HAM's REINFORCE is one
    (:mod:`namcore.models.reinforce`).

    Parameters
    ----------
    applies : callable
        ``applies(config) -> bool``: whether the hook is active for this config.
    draw : callable
        ``draw(config, seed, step, shape) -> dict[str, numpy.ndarray]``: extra forward
        keyword arrays for training step ``step`` on a ``(batch, length)`` batch,
        drawn from ``(seed, step)`` alone, so that a resumed run and both frameworks
        draw the same.
    options : mapping
        Constant forward keywords that make it return ``(logits, aux)``.
    loss : callable
        ``loss(params, aux, target_logp, mask, loss_mask, *, stop_gradient, preset)``:
        a scalar array; ``stop_gradient`` is the framework's, ``preset`` the training
        :class:`~namcore.training.presets.Preset`.
    """

    applies: Callable[[Any], bool]
    draw: Callable[[Any, int, int, tuple[int, int]], dict[str, Any]]
    options: Mapping[str, Any]
    loss: Callable[..., Any]


@dataclass(frozen=True)
class Streaming:
    """How a model decodes one token at a time with a constant-size state.

    Parameters
    ----------
    applies : callable
        ``applies(config) -> bool``: whether this config can stream (a causal one).
    state : callable
        ``state(config) -> {name: (shape, kind)}``: the state arrays, ``shape`` with
        ``"batch"`` for the batch size, ``kind`` ``"float"`` or ``"int64"``.
    step : callable
        ``step(params, token, state, *, config) -> (logits, new_state)``: ``token`` is
        ``(batch,)``, ``state`` and ``new_state`` map the names of :attr:`state` to
        arrays, ``logits`` is ``(batch, output_size)``.
    """

    applies: Callable[[Any], bool]
    state: Callable[[Any], dict[str, tuple[tuple[int | str, ...], str]]]
    step: Callable[..., tuple[Any, dict[str, Any]]]


def _no_features(config: ModelConfig) -> frozenset[str]:
    del config
    return frozenset()


@dataclass(frozen=True)
class ModelEntry:
    """One model: its name, config, parameters, forward math and capabilities.

    Only the first four fields are required; the others have defaults that suit a
    model whose config needs only ``vocab_size`` and ``d_model``.

    Parameters
    ----------
    name : str
        The model's name on the command line (``namcore train --model NAME``) and in
        run folders, e.g. ``"namtm-nojump"``.
    config : type
        Its :class:`~namcore.models.ModelConfig` subclass. Several entries may share
        one (variants such as ``namtm`` and ``namtm-nojump``): they then share the
        specs, forward and class; the entry named ``config.model`` is the primary one.
    specs : callable
        ``specs(config) -> {name: Spec}``: every parameter's shape and initialiser
        (:mod:`namcore.models.spec`).
    forward : callable
        ``forward(params, tokens, mask=None, *, config, **options) -> logits``, written
        against the array API standard: ``tokens`` (batch, length) integers, ``mask``
        booleans (True for real tokens), ``logits`` (batch, length, output_size).
    class_name : str, optional
        Its class in :mod:`namcore.models.numpy`, ``.cupy``, ``.torch`` and ``.jax``.
        Default: ``name`` in CamelCase (``"bag-of-words"`` → ``"BagOfWords"``).
    label : str, optional
        Its name in reports and plots. Default: ``name``.
    make_config : callable, optional
        ``make_config(task, preset) -> config`` for ``namcore train``, from a
        :class:`~namcore.tasks.Task` and a training
        :class:`~namcore.training.presets.Preset`. Default:
        ``config(vocab_size=task.vocab_size, d_model=preset.d_model)``.
    examples : callable, optional
        ``examples() -> {label: config}``: small configs for tests and ``namcore
        check``. Default: ``{name: config(vocab_size=11, d_model=16)}``.
    export : {"sequence", "unrolled", "none"}
        How its forward pass exports to ONNX (:data:`EXPORT_KINDS`). Default:
        ``"sequence"``.
    export_note : str
        Why it cannot be exported, when ``export="none"``.
    streaming : Streaming, optional
        Its one-token step, for streaming ONNX graphs. Default: none.
    loss_hook : LossHook, optional
        An extra training loss (REINFORCE). Default: none.
    check_features : callable, optional
        ``check_features(config) -> set of str``: features it uses that some backends
        are known to lack (see :mod:`namcore.testing`), so ``namcore check`` skips
        them there visibly.
    """

    name: str
    config: type[ModelConfig]
    specs: Callable[[Any], Mapping[str, Spec]]
    forward: Callable[..., Any]
    class_name: str = ""
    label: str = ""
    make_config: Callable[[Task, Preset], Any] | None = None
    examples: Callable[[], dict[str, ModelConfig]] | None = None
    export: str = "sequence"
    export_note: str = ""
    streaming: Streaming | None = None
    loss_hook: LossHook | None = None
    check_features: Callable[[Any], frozenset[str] | set[str]] = _no_features

    def __post_init__(self) -> None:
        where = f"ModelEntry {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"ModelEntry: name must be a non-empty string, got {self.name!r}")
        if not (isinstance(self.config, type) and issubclass(self.config, ModelConfig)):
            raise TypeError(f"{where}: config must be a ModelConfig subclass, got {self.config!r}")
        if not dataclasses.is_dataclass(self.config):
            raise TypeError(f"{where}: {self.config.__name__} must be a dataclass")
        if not self.config.model:
            raise ValueError(
                f"{where}: {self.config.__name__}.model is empty; set the ClassVar "
                "`model` to the name checkpoints store (usually the entry's name)"
            )
        for attr in ("specs", "forward"):
            if not callable(getattr(self, attr)):
                raise TypeError(f"{where}: {attr} must be callable")
        if self.export not in EXPORT_KINDS:
            raise ValueError(f"{where}: export must be one of {EXPORT_KINDS}, got {self.export!r}")
        class_name = self.class_name or _camel(self.name)
        if not class_name.isidentifier() or keyword.iskeyword(class_name):
            raise ValueError(f"{where}: class_name {class_name!r} is not a Python identifier")
        object.__setattr__(self, "class_name", class_name)
        object.__setattr__(self, "label", self.label or self.name)

    def example_configs(self) -> dict[str, ModelConfig]:
        """Small configs for tests and ``namcore check``, by label (:attr:`examples`)."""
        if self.examples is not None:
            return dict(self.examples())
        return {self.name: self.config(vocab_size=11, d_model=16)}

    def config_for(self, task: Task, preset: Preset) -> ModelConfig:
        """The config ``namcore train`` builds for ``task`` at the sizes of ``preset``."""
        if self.make_config is not None:
            config = self.make_config(task, preset)
        else:
            config = self.config(vocab_size=task.vocab_size, d_model=preset.d_model)
        if type(config) is not self.config:
            raise TypeError(
                f"ModelEntry {self.name!r}: make_config returned a {type(config).__name__}, "
                f"expected a {self.config.__name__}"
            )
        return config

    def streams(self, config: ModelConfig) -> bool:
        """Whether ``config`` can decode one token at a time (:attr:`streaming`)."""
        return self.streaming is not None and bool(self.streaming.applies(config))

    def trains_with_hook(self, config: ModelConfig) -> bool:
        """Whether training ``config`` adds :attr:`loss_hook`'s loss."""
        return self.loss_hook is not None and bool(self.loss_hook.applies(config))


def _camel(name: str) -> str:
    parts = [p for p in name.replace("_", "-").split("-") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts)
