"""The models namcore ships, as registry entries (:class:`~namcore.models.ModelEntry`).

They are registered like any plug-in: ``pyproject.toml`` declares each one in the
entry-point group ``namcore.models``, and the registry also loads :data:`ENTRIES`
directly so that a source checkout without installed metadata has them too. Two
entries are variants of another's model (same config class and forward): the
paper's No-Jump ablation of NAM-TM and DHAM, the soft-access HAM.

Examples
--------
>>> from namcore.models.builtin import ENTRIES
>>> [e.name for e in ENTRIES]  # doctest: +NORMALIZE_WHITESPACE
['lsam', 'namtm', 'namtm-nojump', 'lstm', 'transformer', 'nam-transformer', 'ham',
 'ham-soft']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

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
from .entry import ModelEntry, Streaming
from .reinforce import REINFORCE

if TYPE_CHECKING:  # pragma: no cover
    from namcore.tasks import Task
    from namcore.training.presets import Preset

__all__ = [
    "ENTRIES",
    "HAM",
    "HAM_ALONE_TASKS",
    "HAM_SOFT",
    "LSAM",
    "LSTM",
    "NAMTM",
    "NAMTM_NOJUMP",
    "NAM_TRANSFORMER",
    "TRANSFORMER",
]

#: Tasks where HAM works alone: no controller, the memory starts empty.
HAM_ALONE_TASKS: tuple[str, ...] = ("stack", "queue", "priority-queue")

_RECURRENT_NOTE = "the recurrence is unrolled at a fixed length (ndonnx records no loops)"


def _lsam_config(task: Task, preset: Preset) -> LSAMConfig:
    return LSAMConfig(vocab_size=task.vocab_size, d_model=preset.d_model, n_heads=preset.n_heads)


def _namtm_config(jump: bool) -> Callable[[Task, Preset], NAMTMConfig]:
    def make(task: Task, preset: Preset) -> NAMTMConfig:
        return NAMTMConfig(
            vocab_size=task.vocab_size,
            d_model=preset.d_model,
            n_tapes=preset.n_tapes,
            tape_length=preset.tape_length,
            n_layers=2,
            jump=jump,
            action_bias=1.0,
        )

    return make


def _transformer_config(
    cls: type[NAMTransformerConfig] | type[TransformerBaselineConfig],
) -> Callable[[Task, Preset], ModelConfig]:
    def make(task: Task, preset: Preset) -> NAMTransformerConfig | TransformerBaselineConfig:
        return cls(
            vocab_size=task.vocab_size,
            d_model=preset.d_model,
            n_heads=preset.n_heads,
            n_layers=preset.n_layers,
        )

    return make


def _ham_config(access: str) -> Callable[[Task, Preset], HAMConfig]:
    def make(task: Task, preset: Preset) -> HAMConfig:
        alone = task.name in HAM_ALONE_TASKS
        return HAMConfig(
            vocab_size=task.vocab_size,
            d_model=preset.d_model,
            access=access,
            controller="none" if alone else "lstm",
            memory="empty" if alone else "inputs",
        )

    return make


def _sinusoidal(config: NAMTransformerConfig | TransformerBaselineConfig) -> set[str]:
    return {"sin/cos"} if config.positions == "sinusoidal" else set()


def _gather_chain(config: HAMConfig) -> set[str]:
    del config
    return {"gather chain"}


def _small_namtm(jump: bool) -> NAMTMConfig:
    # One layer and a short tape: ndonnx unrolls every step of every tape operation
    # (minutes for two layers); the model tests run a two-layer NAM-TM elsewhere.
    return NAMTMConfig(vocab_size=11, d_model=16, n_tapes=2, tape_length=6, n_layers=1, jump=jump)


LSAM = ModelEntry(
    "lsam",
    LSAMConfig,
    lsam.specs,
    lsam.forward,
    class_name="LSAM",
    label="LSAM",
    make_config=_lsam_config,
    export="unrolled",
    export_note=_RECURRENT_NOTE,
    streaming=Streaming(lsam.streams, lsam.stream_state, lsam.stream_step),
)
NAMTM = ModelEntry(
    "namtm",
    NAMTMConfig,
    namtm.specs,
    namtm.forward,
    class_name="NAMTM",
    label="NAM-TM",
    make_config=_namtm_config(jump=True),
    examples=lambda: {"namtm": _small_namtm(jump=True)},
    export="unrolled",
    export_note=_RECURRENT_NOTE,
)
NAMTM_NOJUMP = ModelEntry(
    "namtm-nojump",
    NAMTMConfig,
    namtm.specs,
    namtm.forward,
    class_name="NAMTM",
    label="No Jmp",
    make_config=_namtm_config(jump=False),
    examples=lambda: {"namtm-nojump": _small_namtm(jump=False)},
    export="unrolled",
    export_note=_RECURRENT_NOTE,
)
LSTM = ModelEntry(
    "lstm",
    LSTMBaselineConfig,
    lstm_baseline.specs,
    lstm_baseline.forward,
    class_name="LSTMBaseline",
    label="LSTM",
    export="unrolled",
    export_note=_RECURRENT_NOTE,
)
TRANSFORMER = ModelEntry(
    "transformer",
    TransformerBaselineConfig,
    transformer.specs,
    transformer.forward_softmax,
    class_name="TransformerBaseline",
    label="Transformer",
    make_config=_transformer_config(TransformerBaselineConfig),
    check_features=_sinusoidal,
)
NAM_TRANSFORMER = ModelEntry(
    "nam-transformer",
    NAMTransformerConfig,
    transformer.specs,
    transformer.forward_nam,
    class_name="NAMTransformer",
    label="NAM Transformer",
    make_config=_transformer_config(NAMTransformerConfig),
    examples=lambda: {
        "nam-transformer": NAMTransformerConfig(vocab_size=11, d_model=16),
        "nam-transformer (causal)": NAMTransformerConfig(vocab_size=11, d_model=16, causal=True),
    },
    streaming=Streaming(transformer.streams, transformer.stream_state, transformer.stream_step),
    check_features=_sinusoidal,
)
_HAM_NOTE = (
    "HAM models cannot be exported to ONNX: the tree's size and depth follow the input "
    "length, which ndonnx graphs leave symbolic"
)
HAM = ModelEntry(
    "ham",
    HAMConfig,
    ham.specs,
    ham.forward,
    class_name="HAM",
    label="HAM",
    make_config=_ham_config("hard"),
    export="none",
    export_note=_HAM_NOTE,
    loss_hook=REINFORCE,
    check_features=_gather_chain,
)
HAM_SOFT = ModelEntry(
    "ham-soft",
    HAMConfig,
    ham.specs,
    ham.forward,
    class_name="HAM",
    label="DHAM",
    make_config=_ham_config("soft"),
    examples=lambda: {"ham-soft": HAMConfig(vocab_size=11, d_model=16, access="soft")},
    export="none",
    export_note=_HAM_NOTE,
    loss_hook=REINFORCE,
    check_features=_gather_chain,
)

#: The built-in entries, in the order of ``namcore train --model``'s choices.
ENTRIES: tuple[ModelEntry, ...] = (
    LSAM,
    NAMTM,
    NAMTM_NOJUMP,
    LSTM,
    TRANSFORMER,
    NAM_TRANSFORMER,
    HAM,
    HAM_SOFT,
)
