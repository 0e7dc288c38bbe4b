"""Configuration dataclasses, one per model, shared by every backend.

A config holds every hyperparameter that fixes a model's parameter shapes and
forward computation. It is a frozen (hashable) dataclass, so it can be a static
argument of ``jax.jit``, and it round-trips through JSON with :meth:`to_dict` and
:func:`config_from_dict` (that is how checkpoints store it).

Examples
--------
>>> from namcore.models import NAMTMConfig, config_from_dict
>>> cfg = NAMTMConfig(vocab_size=16, d_model=32, n_tapes=4)
>>> cfg.tape_head_dim
8
>>> config_from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "HAMConfig",
    "LSAMConfig",
    "LSTMBaselineConfig",
    "ModelConfig",
    "NAMTMConfig",
    "NAMTransformerConfig",
    "TransformerBaselineConfig",
]


def _check_field(owner: str, name: str, annotation: object, value: object) -> None:
    """``TypeError``/``ValueError`` unless ``value`` fits a field annotated ``annotation``.

    The annotations are strings (``from __future__ import annotations``): ``int`` is a
    positive integer, ``float`` a finite real number, ``bool`` a bool, ``str`` a
    string, each optionally ``| None``. Other annotations are not checked.
    """
    text = str(annotation).replace(" ", "")
    optional = text.endswith("|None")
    base = text.removesuffix("|None")
    if value is None:
        if optional or base not in _SIMPLE:
            return
        raise TypeError(f"{owner}: {name} must be {_SIMPLE[base]}, got None")
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    elif base == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    elif base == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    elif base == "str" and not isinstance(value, str):
        raise TypeError(f"{owner}: {name} must be a string, got {value!r}")


_SIMPLE = {
    "int": "a positive integer",
    "float": "a real number",
    "bool": "a bool",
    "str": "a string",
}


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model has; subclasses add their own.

    Parameters
    ----------
    vocab_size : int
        Number of input tokens (rows of the embedding).
    d_model : int
        Width of the model.
    n_outputs : int, optional
        Size of the per-token output layer. Default: ``vocab_size`` (the aligned
        sequence tasks predict a token at every position).
    """

    #: The name checkpoints store, that of the model's primary registry entry
    #: (:func:`namcore.models.config_class` maps it back to the class).
    model: ClassVar[str] = ""

    vocab_size: int
    d_model: int = 64
    n_outputs: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_field(type(self).__name__, field.name, field.type, getattr(self, field.name))
        self._validate()

    def _validate(self) -> None:
        """Cross-field checks of a subclass."""

    @property
    def output_size(self) -> int:
        """Size of the per-token output layer."""
        return self.vocab_size if self.n_outputs is None else self.n_outputs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping: ``{"model": ..., **fields}``."""
        return {"model": self.model, **dataclasses.asdict(self)}

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def _require(self, condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(f"{type(self).__name__}: {message}")


@dataclass(frozen=True)
class LSAMConfig(ModelConfig):
    """LSAM encoder/decoder (the paper's section 5.1; the authors' ``LSAMAE``).

    Parameters
    ----------
    n_heads : int
        Memory heads; each head's memory is ``d_head x d_head`` with
        ``d_head = d_model // n_heads``.
    bidirectional : bool
        Split the encoder's heads between a forward and a backward direction.
    decoder : bool
        Follow the encoder with a unidirectional LSAM decoder that starts from the
        encoder's final memory (the arrangement the paper evaluates).
    d_ff : int, optional
        Hidden width of the encoder's feed-forward block. Default: ``2 * d_model``.
    """

    model: ClassVar[str] = "lsam"

    n_heads: int = 4
    bidirectional: bool = True
    decoder: bool = True
    d_ff: int | None = None

    def _validate(self) -> None:
        self._require(
            self.d_model % self.n_heads == 0,
            f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}",
        )
        self._require(
            not self.bidirectional or self.n_heads % 2 == 0,
            f"a bidirectional LSAM splits its heads in two: n_heads={self.n_heads} must be even",
        )

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def ff_size(self) -> int:
        return 2 * self.d_model if self.d_ff is None else self.d_ff


@dataclass(frozen=True)
class NAMTMConfig(ModelConfig):
    """NAM Turing Machine (the paper's section 5.2).

    Parameters
    ----------
    n_tapes : int
        Independent tapes, each with its own read and write head.
    head_dim : int, optional
        Width of one tape cell. Default: ``d_model // n_tapes``.
    tape_length : int
        Default tape length; every call may pass another (no parameter depends on it).
    n_layers : int
        Stacked NAM-TM layers; layer ``i+1`` starts from layer ``i``'s final tape.
    controller : {"bigru", "lstm"}
        Controller over the inputs: a bidirectional GRU (the paper's first version)
        or a unidirectional LSTM (the authors' later code).
    jump : bool
        Keep the JUMP action and the jump table; ``False`` is the paper's No-Jump ablation.
    separate_erase : bool
        Emit an erase probability of its own instead of tying it to the write
        probability (the authors' later code).
    normalize_heads : bool
        L2-normalise head vectors before they address the tape, as the authors' later
        code does; keeps long sequences from leaking head weight. Unlike that code, the
        jump table then also stores the normalised write head, the address actually
        written, so that a jump lands on a unit head.
    action_bias : float
        Initial bias of the NO-OP and RIGHT action logits, so that heads start by
        moving instead of mixing all actions equally.
    """

    model: ClassVar[str] = "namtm"

    n_tapes: int = 4
    head_dim: int | None = None
    tape_length: int = 32
    n_layers: int = 2
    controller: str = "bigru"
    jump: bool = True
    separate_erase: bool = False
    normalize_heads: bool = True
    action_bias: float = 1.0

    def _validate(self) -> None:
        self._require(
            self.controller in ("bigru", "lstm"),
            f"controller must be 'bigru' or 'lstm', got {self.controller!r}",
        )
        self._require(
            self.controller != "bigru" or self.d_model % 2 == 0,
            f"a bidirectional GRU controller needs an even d_model, got {self.d_model}",
        )
        self._require(
            self.head_dim is not None or self.d_model % self.n_tapes == 0,
            f"d_model={self.d_model} must be divisible by n_tapes={self.n_tapes} (or set head_dim)",
        )

    @property
    def tape_head_dim(self) -> int:
        return self.d_model // self.n_tapes if self.head_dim is None else self.head_dim

    @property
    def n_actions(self) -> int:
        """Number of head actions (LEFT, NO-OP, RIGHT, and JUMP if enabled)."""
        return 4 if self.jump else 3

    @property
    def n_gates(self) -> int:
        """Number of probabilities per tape (read, write, and erase if separate)."""
        return 3 if self.separate_erase else 2


@dataclass(frozen=True)
class _TransformerConfig(ModelConfig):
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None
    positions: str = "sinusoidal"
    max_length: int = 512
    cls: bool = False
    n_classes: int | None = None

    def _validate(self) -> None:
        self._require(
            self.d_model % self.n_heads == 0,
            f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}",
        )
        self._require(
            self.positions in ("sinusoidal", "learned"),
            f"positions must be 'sinusoidal' or 'learned', got {self.positions!r}",
        )
        self._require(
            self.positions != "sinusoidal" or self.d_model % 2 == 0,
            f"sinusoidal positions need an even d_model, got {self.d_model}",
        )

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def ff_size(self) -> int:
        return 4 * self.d_model if self.d_ff is None else self.d_ff


@dataclass(frozen=True)
class NAMTransformerConfig(_TransformerConfig):
    """Pre-LayerNorm Transformer encoder with NOA self-attention (the paper's section 4).

    Parameters
    ----------
    n_heads, n_layers : int
        Attention heads per block and blocks.
    d_ff : int, optional
        MLP hidden width. Default: ``4 * d_model``.
    positions : {"sinusoidal", "learned"}
        Position embeddings; learned ones cover ``max_length`` positions.
    max_length : int
        Positions covered by learned position embeddings (ignored by sinusoidal
        ones): the CLS token takes one, and a stream counts every token it has seen.
    cls : bool
        Prepend a learned CLS token; with ``n_classes`` the classifier reads it.
    n_classes : int, optional
        Add a sequence classifier head (CLS pooling, or a masked mean without CLS).
        Without it the model predicts ``output_size`` logits per token.
    causal : bool
        Decoder-only language model: causal NOA, which can stream with ``state``.
    """

    model: ClassVar[str] = "nam-transformer"

    causal: bool = False

    def _validate(self) -> None:
        super()._validate()
        self._require(
            not (self.causal and self.cls),
            "a causal model cannot use a CLS token (it would see nothing)",
        )


@dataclass(frozen=True)
class TransformerBaselineConfig(_TransformerConfig):
    """Softmax Transformer encoder baseline (the paper's TF), learned positions by default.

    Same fields as :class:`NAMTransformerConfig` except ``causal``.
    """

    model: ClassVar[str] = "transformer"

    positions: str = "learned"


@dataclass(frozen=True)
class LSTMBaselineConfig(ModelConfig):
    """LSTM baseline: bidirectional encoder, decoder with attention (the paper's LSTM).

    The encoder has ``d_model // 2`` units per direction; the decoder has
    ``d_model`` units, starts from the encoder's final states, and attends over the
    encoder outputs (Luong's "general" score).

    Parameters
    ----------
    attention : bool
        Use the attention layer; ``False`` gives a plain encoder-decoder LSTM.
    """

    model: ClassVar[str] = "lstm"

    attention: bool = True

    def _validate(self) -> None:
        self._require(
            self.d_model % 2 == 0,
            f"a bidirectional encoder needs an even d_model, got {self.d_model}",
        )


@dataclass(frozen=True)
class HAMConfig(ModelConfig):
    """A controller with a Hierarchical Attentive Memory (Andrychowicz & Kurach, 2016).

    Each step the controller reads one token, descends the memory tree from the
    root to a leaf (SEARCH at every node on the way), outputs from its state and the
    leaf, and rewrites the leaf with the gated WRITE; the leaf's ancestors are
    re-JOINed (see :mod:`namcore.ham` and :mod:`namcore.models.ham`).

    Parameters
    ----------
    d_node : int, optional
        Width of a tree node. Default: ``d_model // 2``.
    access : {"hard", "soft"}
        ``"hard"``: one root-to-leaf path per step, O(log n); greedy in a plain
        forward pass, sampled when the caller passes uniforms (REINFORCE training).
        ``"soft"``: the paper's DHAM, every leaf weighted by its path probability,
        O(n), trained with plain gradients.
    controller : {"lstm", "none"}
        An LSTM over ``[token embedding : previous read]``, or no controller at all:
        then SEARCH and WRITE see only the current token's embedding, and everything
        the model remembers is in the tree (the paper's "HAM alone" data structures).
    memory : {"inputs", "empty"}
        Initial leaves: ``EMBED`` of the input tokens (padded with ``EMBED(0)`` up to the
        tree size), or one learned "empty" vector in every leaf.
    memory_size : int, optional
        Number of leaves, a power of two. Default: the smallest power of two that is at
        least the input length, so that longer inputs get a bigger (deeper) tree.
    """

    model: ClassVar[str] = "ham"

    d_node: int | None = None
    access: str = "hard"
    controller: str = "lstm"
    memory: str = "inputs"
    memory_size: int | None = None

    def _validate(self) -> None:
        self._require(
            self.access in ("hard", "soft"), f"access must be 'hard' or 'soft', got {self.access!r}"
        )
        self._require(
            self.controller in ("lstm", "none"),
            f"controller must be 'lstm' or 'none', got {self.controller!r}",
        )
        self._require(
            self.memory in ("inputs", "empty"),
            f"memory must be 'inputs' or 'empty', got {self.memory!r}",
        )
        size = self.memory_size
        self._require(
            size is None or size & (size - 1) == 0,
            f"memory_size must be a power of two, got {size}",
        )
        self._require(
            self.d_node is not None or self.d_model >= 2,
            f"d_model={self.d_model} is too small for the default d_node",
        )

    @property
    def node_size(self) -> int:
        """Width of a tree node."""
        return self.d_model // 2 if self.d_node is None else self.d_node
