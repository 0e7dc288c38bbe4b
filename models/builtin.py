"""The models namcore ships, as registry entries (:class:`~namcore.models.ModelEntry`).

They are registered like any plug-in: ``pyproject.toml`` declares each one in the
entry-point group ``namcore.models``, and the registry also loads :data:`ENTRIES`
directly so that a source checkout without installed metadata has them too. Two
entries are variants of another's model (same config class and forward): the
paper's No-Jump ablation of NAM-TM and DHAM, the soft-access HAM. The last four are
the classic memory networks (NTM, DNC, MemN2N, the Universal Transformer), baselines
beside the paper's models; the Linear Transformer closes the list (Table 1's baseline).

Examples
--------
>>> from namcore.models.builtin import ENTRIES
>>> [e.name for e in ENTRIES]  # doctest: +NORMALIZE_WHITESPACE
['lsam', 'namtm', 'namtm-nojump', 'lstm', 'transformer', 'nam-transformer', 'ham',
 'ham-soft', 'ntm', 'dnc', 'memn2n', 'ut', 'linear-transformer']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import (
    dnc,
    ham,
    linear_transformer,
    lsam,
    lstm_baseline,
    memn2n,
    namtm,
    ntm,
    transformer,
    universal_transformer,
)
from .classic_config import DNCConfig, MemN2NConfig, NTMConfig, UniversalTransformerConfig
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
from .linear_config import LinearTransformerConfig
from .reinforce import REINFORCE

if TYPE_CHECKING:  # pragma: no cover
    from namcore.tasks import Task
    from namcore.training.presets import Preset

__all__ = [
    "DNC",
    "ENTRIES",
    "HAM",
    "HAM_ALONE_TASKS",
    "HAM_SOFT",
    "LINEAR_TRANSFORMER",
    "LSAM",
    "LSTM",
    "MEMN2N",
    "NAMTM",
    "NAMTM_NOJUMP",
    "NAM_TRANSFORMER",
    "NTM",
    "TRANSFORMER",
    "UT",
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
        # Learned positions must cover the longest sample: a length parameter n gives at
        # most 2n + 3 tokens in namcore's tasks (512 covers all but ListOps).
        longest = max(high for _, high in task.splits.values())
        return cls(
            vocab_size=task.vocab_size,
            d_model=preset.d_model,
            n_heads=preset.n_heads,
            n_layers=preset.n_layers,
            max_length=max(512, 2 * longest + 8),
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


def _memory_config(cls: type[NTMConfig] | type[DNCConfig]) -> Callable[[Task, Preset], ModelConfig]:
    # As many cells as a NAM-TM tape of the preset has positions.
    def make(task: Task, preset: Preset) -> NTMConfig | DNCConfig:
        return cls(
            vocab_size=task.vocab_size, d_model=preset.d_model, memory_size=preset.tape_length
        )

    return make


def _ut_config(task: Task, preset: Preset) -> UniversalTransformerConfig:
    return UniversalTransformerConfig(
        vocab_size=task.vocab_size, d_model=preset.d_model, n_heads=preset.n_heads
    )


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

NTM = ModelEntry(
    "ntm",
    NTMConfig,
    ntm.specs,
    ntm.forward,
    class_name="NTM",
    label="NTM",
    make_config=_memory_config(NTMConfig),
    examples=lambda: {"ntm": NTMConfig(vocab_size=11, d_model=16, memory_size=8, memory_width=6)},
    export="unrolled",
    export_note=_RECURRENT_NOTE,
)
DNC = ModelEntry(
    "dnc",
    DNCConfig,
    dnc.specs,
    dnc.forward,
    class_name="DNC",
    label="DNC",
    make_config=_memory_config(DNCConfig),
    examples=lambda: {
        "dnc": DNCConfig(vocab_size=11, d_model=16, memory_size=6, memory_width=5, n_reads=2)
    },
    export="unrolled",
    export_note=_RECURRENT_NOTE,
)
MEMN2N = ModelEntry(
    "memn2n",
    MemN2NConfig,
    memn2n.specs,
    memn2n.forward,
    class_name="MemN2N",
    label="MemN2N",
    check_features=lambda config: {"sin/cos"},
)
UT = ModelEntry(
    "ut",
    UniversalTransformerConfig,
    universal_transformer.specs,
    universal_transformer.forward,
    class_name="UniversalTransformer",
    label="UT",
    make_config=_ut_config,
    examples=lambda: {
        "ut": UniversalTransformerConfig(vocab_size=11, d_model=16, n_heads=2, max_steps=3)
    },
    loss_hook=universal_transformer.PONDER,
    check_features=lambda config: {"sin/cos"},
)


def _linear_config(task: Task, preset: Preset) -> LinearTransformerConfig:
    return LinearTransformerConfig(
        vocab_size=task.vocab_size,
        d_model=preset.d_model,
        n_heads=preset.n_heads,
        n_layers=preset.n_layers,
    )


LINEAR_TRANSFORMER = ModelEntry(
    "linear-transformer",
    LinearTransformerConfig,
    linear_transformer.specs,
    linear_transformer.forward,
    class_name="LinearTransformer",
    label="Linear Transformer",
    make_config=_linear_config,
    examples=lambda: {
        "linear-transformer": LinearTransformerConfig(vocab_size=11, d_model=16),
        "linear-transformer (causal)": LinearTransformerConfig(
            vocab_size=11, d_model=16, n_heads=2, causal=True
        ),
        "linear-transformer (cls)": LinearTransformerConfig(
            vocab_size=11, d_model=16, cls=True, n_classes=10
        ),
    },
    check_features=_sinusoidal,
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
    NTM,
    DNC,
    MEMN2N,
    UT,
    LINEAR_TRANSFORMER,
)
