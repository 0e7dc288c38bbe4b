"""The Linear Transformer's configuration (Katharopoulos et al. 2020).

Examples
--------
>>> from namcore.models import LinearTransformerConfig, config_from_dict
>>> cfg = LinearTransformerConfig(vocab_size=12, d_model=16, n_heads=2)
>>> cfg.d_head, cfg.positions
(8, 'sinusoidal')
>>> config_from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .config import _TransformerConfig

__all__ = ["LinearTransformerConfig"]


@dataclass(frozen=True)
class LinearTransformerConfig(_TransformerConfig):
    """Pre-LayerNorm Transformer encoder with linear (elu + 1 feature map) attention.

    The same fields as :class:`~namcore.models.NAMTransformerConfig` (heads, layers,
    MLP width, positions, CLS token and classifier, ``causal``), plus ``eps``.

    Parameters
    ----------
    causal : bool
        Each position attends to itself and the positions before it (prefix sums).
    eps : float
        Added to the attention's normaliser (positive; 1e-6 as in the authors' code).
    """

    model: ClassVar[str] = "linear-transformer"

    causal: bool = False
    eps: float = 1e-6

    def _validate(self) -> None:
        super()._validate()
        self._require(self.eps > 0, f"eps must be positive, got {self.eps!r}")
        self._require(
            not (self.causal and self.cls),
            "a causal model cannot use a CLS token (it would see nothing)",
        )
