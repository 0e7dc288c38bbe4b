"""Models built on namcore's primitives: LSAM, NAM-TM, the NAM Transformer and baselines.

The forward math of each model is written once, in this package, against the
array API standard (:mod:`~namcore.models.lsam`, :mod:`~namcore.models.namtm`,
:mod:`~namcore.models.transformer`, :mod:`~namcore.models.lstm_baseline`,
:mod:`~namcore.models.ham`, :mod:`~namcore.models.ntm`, :mod:`~namcore.models.dnc`,
:mod:`~namcore.models.memn2n`, :mod:`~namcore.models.universal_transformer`,
:mod:`~namcore.models.linear_transformer`), as a
function of a flat parameter mapping and integer token arrays. Each model is
described once, by a :class:`ModelEntry` in the registry
(:mod:`~namcore.models.registry`; built-in ones in :mod:`~namcore.models.builtin`,
others from installed plug-ins), and each backend has a package with one class per
registered model under the same name (``LSAM``, ``NAMTM``, ``NAMTransformer``,
``LSTMBaseline``, ``TransformerBaseline``, ``HAM``, the classic memory networks
``NTM``, ``DNC``, ``MemN2N`` and ``UniversalTransformer``, the Table 1 baseline
``LinearTransformer``, and those of plug-ins):

- :mod:`namcore.models.torch`: ``nn.Module`` classes, trainable with autograd;
- :mod:`namcore.models.jax`: pure ``init(config, seed)`` / ``apply(params, ...)``;
- :mod:`namcore.models.numpy`, :mod:`namcore.models.cupy`: inference.

Parameter names are shared by every backend, and :func:`save` / :func:`load`
move weights between them through safetensors files.

Examples
--------
>>> import numpy as np
>>> from namcore.models import LSAMConfig, forward, init_numpy
>>> cfg = LSAMConfig(vocab_size=10, d_model=16, n_heads=4)
>>> logits = forward(init_numpy(cfg, seed=0), np.ones((2, 5), dtype=np.int64), config=cfg)
>>> logits.shape
(2, 5, 10)
"""

from __future__ import annotations

from typing import Any

from namcore._typing import Array

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
from .entry import LossHook, ModelEntry, Streaming
from .linear_config import LinearTransformerConfig
from .params import check_params, init_numpy, parameter_count, parameter_shapes
from .registry import (
    ENTRY_POINT_GROUP,
    PluginWarning,
    config_class,
    config_from_dict,
    entries,
    entry_for,
    get_entry,
    names,
    register,
    unregister,
)
from .serialization import FORMAT_VERSION, load, load_config, save
from .spec import Spec

__all__ = [
    "DNCConfig",
    "ENTRY_POINT_GROUP",
    "FORMAT_VERSION",
    "HAMConfig",
    "LSAMConfig",
    "LSTMBaselineConfig",
    "LinearTransformerConfig",
    "LossHook",
    "MemN2NConfig",
    "ModelConfig",
    "ModelEntry",
    "NAMTMConfig",
    "NAMTransformerConfig",
    "NTMConfig",
    "PluginWarning",
    "Spec",
    "Streaming",
    "TransformerBaselineConfig",
    "UniversalTransformerConfig",
    "check_params",
    "config_class",
    "config_from_dict",
    "entries",
    "entry_for",
    "forward",
    "get_entry",
    "init_numpy",
    "load",
    "load_config",
    "names",
    "parameter_count",
    "parameter_shapes",
    "register",
    "save",
    "unregister",
]


def forward(
    params: Any, tokens: Array, mask: Array = None, *, config: ModelConfig, **options: Any
) -> Any:
    """Run the model ``config`` describes with ``params`` on ``tokens`` (any backend).

    ``params`` maps the shared names to arrays of one library; ``tokens`` is an
    integer array ``(batch, length)`` of that library and ``mask`` an optional
    boolean array of the same shape (True for real tokens). ``options`` are the
    model's extras: ``tape_length`` for NAM-TM, ``state``/``return_state`` for a
    causal NAM Transformer.
    """
    return entry_for(config).forward(params, tokens, mask, config=config, **options)
