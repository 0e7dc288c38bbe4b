"""Configs of the classic memory networks namcore offers as baselines.

The Neural Turing Machine, the Differentiable Neural Computer, End-to-End Memory
Networks and the Universal Transformer (see ``docs/memory-networks.md``). Like every
config, each is a frozen dataclass that round-trips through JSON.

Examples
--------
>>> from namcore.models import DNCConfig, config_from_dict
>>> cfg = DNCConfig(vocab_size=12, d_model=32, memory_size=16, n_reads=2)
>>> cfg.interface_size  # R W + 3 W + 5 R + 3 with W = 16, R = 2
93
>>> config_from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .config import ModelConfig

__all__ = ["DNCConfig", "MemN2NConfig", "NTMConfig", "UniversalTransformerConfig"]


@dataclass(frozen=True)
class NTMConfig(ModelConfig):
    """Neural Turing Machine (Graves et al. 2014): LSTM controller, one read and one write head.

    Parameters
    ----------
    memory_size : int
        Memory cells ``N``. Addressing by shift is circular, so a sequence longer
        than ``N`` wraps around.
    memory_width : int
        Width ``W`` of a cell.

    The controller is an LSTM of width ``d_model`` over the token and the previous read.
    """

    model: ClassVar[str] = "ntm"

    memory_size: int = 32
    memory_width: int = 16

    @property
    def head_size(self) -> int:
        """Outputs of the read head: key ``W``, strength, gate, 3 shift weights, gamma."""
        return self.memory_width + 6


@dataclass(frozen=True)
class DNCConfig(ModelConfig):
    """Differentiable Neural Computer (Graves et al. 2016): LSTM controller, ``R`` read heads.

    Parameters
    ----------
    memory_size : int
        Memory cells ``N`` (the link matrix is ``N x N`` per sample).
    memory_width : int
        Width ``W`` of a cell.
    n_reads : int
        Read heads ``R``.
    """

    model: ClassVar[str] = "dnc"

    memory_size: int = 32
    memory_width: int = 16
    n_reads: int = 2

    @property
    def interface_size(self) -> int:
        """Size of the interface vector.

        Read keys ``R W``, read strengths ``R``, write key ``W``, write strength, erase
        ``W``, write vector ``W``, free gates ``R``, allocation and write gates, read
        modes ``3 R``.
        """
        r, w = self.n_reads, self.memory_width
        return r * w + 3 * w + 5 * r + 3


@dataclass(frozen=True)
class MemN2NConfig(ModelConfig):
    """End-to-End Memory Network (Sukhbaatar et al. 2015) over the input sequence.

    Parameters
    ----------
    n_hops : int
        Attention hops ``K``; adjacent weight tying uses ``K + 1`` embedding tables.
    """

    model: ClassVar[str] = "memn2n"

    n_hops: int = 3

    def _validate(self) -> None:
        self._require(
            self.d_model % 2 == 0, f"sinusoidal positions need an even d_model, got {self.d_model}"
        )

    @property
    def tied_output(self) -> bool:
        """Whether the output layer is the last embedding, transposed (outputs are tokens)."""
        return self.output_size == self.vocab_size


@dataclass(frozen=True)
class UniversalTransformerConfig(ModelConfig):
    """Universal Transformer encoder with adaptive computation time (Dehghani et al. 2019).

    Parameters
    ----------
    n_heads : int
        Attention heads of the shared block.
    d_ff : int, optional
        MLP hidden width. Default: ``4 * d_model``.
    max_steps : int
        Most applications of the shared block per position.
    halt_threshold : float
        A position halts once its summed halting probability exceeds this (``1 - ε``
        in ACT), in (0, 1].
    ponder_weight : float
        Weight ``τ`` of the ponder cost added to the training loss (0: none).
    """

    model: ClassVar[str] = "ut"

    n_heads: int = 4
    d_ff: int | None = None
    max_steps: int = 6
    halt_threshold: float = 0.99
    ponder_weight: float = 0.01

    def _validate(self) -> None:
        self._require(
            self.d_model % self.n_heads == 0,
            f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}",
        )
        self._require(
            self.d_model % 2 == 0, f"sinusoidal positions need an even d_model, got {self.d_model}"
        )
        self._require(
            0.0 < self.halt_threshold <= 1.0,
            f"halt_threshold must lie in (0, 1], got {self.halt_threshold}",
        )
        self._require(
            self.ponder_weight >= 0.0, f"ponder_weight must be >= 0, got {self.ponder_weight}"
        )

    @property
    def ff_size(self) -> int:
        return 4 * self.d_model if self.d_ff is None else self.d_ff
