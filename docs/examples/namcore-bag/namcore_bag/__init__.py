"""A namcore model plug-in: a causal bag-of-words model, in one module.

At each position the model sees the token there and the mean embedding of every
real token so far, and predicts through one dense layer. It cannot solve the
algorithmic tasks (it has no order), which makes it a floor for them; its point
here is to show everything a model needs to be part of namcore:

- a config, a frozen dataclass subclass of :class:`namcore.models.ModelConfig`
  with a ``model`` name (this one needs only ``vocab_size`` and ``d_model``);
- ``specs(config)``: each parameter's shape and initialiser;
- ``forward(params, tokens, mask=None, *, config)``, written against the array API
  standard, so it runs on NumPy, PyTorch, JAX, CuPy and the others;
- a :class:`namcore.models.ModelEntry` tying them together, named by an entry point
  in the group ``namcore.models`` (see this package's ``pyproject.toml``).

Examples
--------
>>> import numpy as np
>>> from namcore.models.numpy import Bag
>>> model = Bag(BagConfig(vocab_size=6, d_model=4))
>>> model(np.array([[1, 2, 3]])).shape
(1, 3, 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from namcore.models import ModelConfig, ModelEntry, Spec
from namcore.models import layers as L
from namcore.models.spec import dense, embedding

__all__ = ["BAG", "BagConfig", "forward", "specs"]


@dataclass(frozen=True)
class BagConfig(ModelConfig):
    """A causal bag-of-words model: ``vocab_size`` and ``d_model`` are all it needs."""

    model: ClassVar[str] = "bag"


def specs(config: BagConfig) -> dict[str, Spec]:
    """An embedding table and a dense head over ``[token : mean so far]``."""
    d = config.d_model
    return {
        **embedding("embed", config.vocab_size, d, scale=d**-0.5),
        **dense("head", 2 * d, config.output_size),
    }


def forward(params: L.Params, tokens: Any, mask: Any = None, *, config: BagConfig) -> Any:
    """Logits ``(batch, length, output_size)`` for integer ``tokens`` ``(batch, length)``."""
    ctx, mask = L.context(params, tokens, mask, "Bag")
    xp = ctx.xp
    x = L.embed(params, "embed", tokens, xp)
    weight = ctx.floats(mask)[..., None]
    total = xp.cumulative_sum(x * weight, axis=1)
    count = xp.cumulative_sum(weight, axis=1)
    mean = total / xp.clip(count, min=1.0)
    return L.dense(params, "head", xp.concat([x, mean], axis=-1), xp)


#: The model's registry entry; ``class_name`` makes ``namcore.models.torch.Bag`` etc.
BAG = ModelEntry("bag", BagConfig, specs, forward, class_name="Bag", label="Bag of words")
