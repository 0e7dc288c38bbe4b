"""The models as PyTorch modules, one class per registered model (``LSAM``, ``NAMTM``, ...).

Each class is an ``nn.Module`` whose ``state_dict`` keys are the shared parameter
names, so ``model.state_dict()`` can be saved with :func:`namcore.models.save` and
loaded by every other backend. ``forward`` runs the array-API model code on the
module's parameters, so autograd, ``torch.compile`` and CUDA work as usual.

Examples
--------
>>> import torch
>>> from namcore.models import LSAMConfig
>>> from namcore.models.torch import LSAM
>>> model = LSAM(LSAMConfig(vocab_size=10, d_model=16, n_heads=4))
>>> logits = model(torch.zeros(2, 5, dtype=torch.long))
>>> logits.shape
torch.Size([2, 5, 10])
>>> sorted(model.state_dict())[:3]
['decoder.fw.b', 'decoder.fw.w_h', 'decoder.fw.w_x']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .._classes import check_config, class_doc, config_ref, lazy_classes
from ..config import ModelConfig
from ..entry import ModelEntry
from ..params import check_params, init_numpy
from ..serialization import load, save


class _Group(torch.nn.Module):
    """A container node of the parameter tree (no forward of its own)."""


def _dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return getattr(torch, str(dtype))
    except AttributeError:
        raise ValueError(f"unknown torch dtype {dtype!r}") from None


class TorchModel(torch.nn.Module):
    """A model as an ``nn.Module`` with the shared parameter names.

    Parameters
    ----------
    config : ModelConfig
        The model's config (its class must match the model).
    params : mapping of str to array, optional
        Initial values under the shared names (torch tensors or NumPy arrays).
        Default: a fresh initialisation from ``seed``, the same on every backend.
    seed : int, optional
        Seed of the initialisation. Default: 0.
    dtype : torch.dtype or str, optional
        Parameter dtype. Default: ``torch.float32``.
    device : torch.device or str, optional
        Parameter device. Default: the CPU.
    """

    _entry: ModelEntry

    def __init__(
        self,
        config: ModelConfig,
        params: Mapping[str, Any] | None = None,
        *,
        seed: int = 0,
        dtype: Any = torch.float32,
        device: Any = None,
    ) -> None:
        super().__init__()
        check_config(type(self), config)
        if params is None:
            params = init_numpy(config, seed, dtype=np.float64)
        else:
            check_params(config, params)
        self.config = config
        for name, value in params.items():
            tensor = (
                value.detach()
                if isinstance(value, torch.Tensor)
                else torch.from_numpy(np.array(value, copy=True))
            )
            tensor = tensor.to(device=device, dtype=_dtype(dtype))
            *path, leaf = name.split(".")
            node: torch.nn.Module = self
            for part in path:
                child = getattr(node, part, None) if part in node._modules else None
                if child is None:
                    child = _Group()
                    node.add_module(part, child)
                node = child
            node.register_parameter(leaf, torch.nn.Parameter(tensor.clone()))

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor | None = None, **options: Any
    ) -> Any:
        """Logits for integer ``tokens`` (B, L); see :func:`namcore.models.forward`."""
        params = dict(self.named_parameters())
        return self._entry.forward(params, tokens, mask, config=self.config, **options)

    def params(self) -> dict[str, torch.Tensor]:
        """Name → parameter, the mapping every backend understands."""
        return dict(self.named_parameters())

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write weights and config to a safetensors file (:func:`namcore.models.save`)."""
        save(path, self.params(), self.config, overwrite=overwrite)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, dtype: Any = None, device: Any = None
    ) -> TorchModel:
        """Load a checkpoint written by any backend."""
        params, config = load(path, backend="numpy")
        check_config(cls, config)
        stored = next(iter(params.values())).dtype
        return cls(config, params, dtype=dtype or str(stored), device=device)

    def extra_repr(self) -> str:
        return repr(self.config)


def _model_class(entry: ModelEntry) -> type[TorchModel]:
    name = entry.class_name
    summary = f"{name} as a PyTorch module, built from a {config_ref(entry)}."
    attrs = {
        "_entry": entry,
        "__module__": __name__,
        "__doc__": class_doc(summary, TorchModel),
        "__qualname__": name,
    }
    return type(name, (TorchModel,), attrs)


__getattr__, __dir__ = lazy_classes(globals(), _model_class)
