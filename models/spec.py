"""Parameter specifications: the shape and initialiser of each named parameter.

Each model module declares ``specs(config) -> dict[name, Spec]``, built from the
helpers here (:func:`dense`, :func:`layer_norm`, :func:`embedding`,
:func:`recurrent`). The names are dotted paths such as ``"encoder.fw.w_x"``; the
same names key a JAX params dict, a NumPy/CuPy params dict, a PyTorch module's
``state_dict`` and a checkpoint. Weights are stored ``(in, out)``, so a layer is
``x @ w + b`` everywhere.

This module depends on nothing else in :mod:`namcore.models`, so model modules
and plug-ins can import it freely.

Examples
--------
>>> from namcore.models import Spec
>>> from namcore.models.spec import dense
>>> {name: s.shape for name, s in dense("head", 8, 3).items()}
{'head.w': (8, 3), 'head.b': (3,)}
>>> Spec((2, 2), "ones").size
4
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Spec", "dense", "embedding", "layer_norm", "recurrent"]


@dataclass(frozen=True)
class Spec:
    """Shape and initialiser of one parameter.

    ``init`` is one of ``"uniform"`` (U(-scale, scale)), ``"normal"`` (N(0, scale²)),
    ``"zeros"``, ``"ones"`` or ``"constant"`` (``values`` repeated to fill the shape).
    """

    shape: tuple[int, ...]
    init: str = "uniform"
    scale: float = 1.0
    values: tuple[float, ...] = ()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Initial value, float64."""
        if self.init == "uniform":
            return rng.uniform(-self.scale, self.scale, self.shape)
        if self.init == "normal":
            return rng.standard_normal(self.shape) * self.scale
        if self.init == "zeros":
            return np.zeros(self.shape)
        if self.init == "ones":
            return np.ones(self.shape)
        if self.init == "constant":
            return np.resize(np.asarray(self.values, dtype=np.float64), self.shape)
        raise ValueError(f"unknown initialiser {self.init!r}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def dense(
    prefix: str, n_in: int, n_out: int, *, bias: bool = True, bias_values: tuple[float, ...] = ()
) -> dict[str, Spec]:
    """Specs of a dense layer ``x @ w + b``: ``prefix.w`` (n_in, n_out), ``prefix.b``.

    Weights are U(±1/sqrt(n_in)) as in PyTorch's ``nn.Linear``; the bias is zero, or
    ``bias_values`` repeated.
    """
    out = {f"{prefix}.w": Spec((n_in, n_out), "uniform", 1.0 / math.sqrt(n_in))}
    if bias:
        out[f"{prefix}.b"] = (
            Spec((n_out,), "constant", values=bias_values)
            if bias_values
            else Spec((n_out,), "zeros")
        )
    return out


def layer_norm(prefix: str, d: int) -> dict[str, Spec]:
    """Specs of a LayerNorm: ``prefix.scale`` (ones) and ``prefix.bias`` (zeros)."""
    return {f"{prefix}.scale": Spec((d,), "ones"), f"{prefix}.bias": Spec((d,), "zeros")}


def embedding(name: str, n: int, d: int, scale: float = 1.0) -> dict[str, Spec]:
    """Spec of an embedding table (n, d), N(0, scale²)."""
    return {name: Spec((n, d), "normal", scale)}


def recurrent(prefix: str, kind: str, n_in: int, n_hidden: int) -> dict[str, Spec]:
    """Specs of a GRU or LSTM cell: input weights ``w_x``, recurrent ``w_h``, bias ``b``.

    Gate order is PyTorch's (LSTM: i, f, g, o; GRU: r, z, n). The LSTM forget-gate
    bias starts at 1. A GRU has a second bias ``b_hn`` inside its reset product.
    """
    gates = 4 if kind == "lstm" else 3
    bound = 1.0 / math.sqrt(n_hidden)
    out = {
        f"{prefix}.w_x": Spec((n_in, gates * n_hidden), "uniform", bound),
        f"{prefix}.w_h": Spec((n_hidden, gates * n_hidden), "uniform", bound),
    }
    if kind == "lstm":
        bias = [0.0] * n_hidden + [1.0] * n_hidden + [0.0] * (2 * n_hidden)
        out[f"{prefix}.b"] = Spec((gates * n_hidden,), "constant", values=tuple(bias))
    else:
        out[f"{prefix}.b"] = Spec((gates * n_hidden,), "zeros")
        out[f"{prefix}.b_hn"] = Spec((n_hidden,), "zeros")
    return out
