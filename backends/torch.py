"""PyTorch backend (CPU and CUDA), imported only when torch arrays are seen."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from namcore import _compat
from namcore._agnostic import delta as _delta
from namcore._agnostic import memory as _memory
from namcore._typing import Array, Device, Namespace

from ._base import Backend, device_mismatch
from ._steps import ManualStep, MemoryStep

#: Set to ``1`` to run the hand-derived steps through ``torch.compile`` (as
#: :attr:`TorchBackend.compile_steps` does) in this process and in every process it
#: starts: ``namcore train --compile-steps`` and ``namcore reproduce --compile-steps``
#: set it, so that their worker processes compile too.
COMPILE_STEPS_VARIABLE = "NAMCORE_COMPILE_STEPS"

__all__ = ["COMPILE_STEPS_VARIABLE", "TorchBackend"]


class TorchBackend(Backend):
    """PyTorch through ``array_api_compat.torch``."""

    name = "torch"
    module = "torch"

    def namespace(self) -> Namespace:
        return _compat.torch_namespace()

    def devices(self) -> list[Device]:
        import torch

        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return found

    def testing_device(self, *, gpu: bool = False) -> Device:
        import torch

        if gpu and not torch.cuda.is_available():
            raise LookupError("torch sees no CUDA device")
        return torch.device("cuda" if gpu else "cpu")

    def from_numpy(
        self, a: np.ndarray, *, dtype: str | None = None, device: Device = None
    ) -> Array:
        import torch

        out = torch.from_numpy(np.array(a, copy=True))
        if dtype is not None:
            out = out.to(self.dtype(dtype))
        return out if device is None else out.to(device)

    def to_numpy(self, x: Array) -> np.ndarray:
        import torch

        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.to(torch.float32)
        return x.cpu().numpy()

    def concrete_values(self, x: Array) -> np.ndarray | None:
        import torch

        if torch.compiler.is_compiling() or x.device.type != "cpu":
            return None
        try:  # fails inside torch.func transforms (vmap, grad): no values to check
            return x.detach().numpy()
        except (RuntimeError, TypeError):
            return None

    def check_same_device(self, func: str, arrays: dict[str, Array]) -> None:
        # Zero-dimensional CPU tensors mix with CUDA tensors in PyTorch: leave them out.
        devices = {name: x.device for name, x in arrays.items() if x.ndim or x.device.type != "cpu"}
        device_mismatch(func, devices)

    def write(
        self,
        M: Array,
        k: Array,
        v: Array,
        p_write: Array | float,
        p_erase: Array | float,
        normalize: bool,
        eps: float,
        xp: Namespace,
    ) -> Array:
        # Fast path: one fused multiply-add (addcmul) forms M + u k̂ᵀ.
        import torch

        kh = _memory.unit(k, axis=-1, eps=eps, xp=xp) if normalize else k
        u = _memory.update_direction(M, kh, v, p_write, p_erase, xp=xp)
        return torch.addcmul(M, u.unsqueeze(-1), kh.unsqueeze(-2))

    def sigmoid(self, x: Array, xp: Namespace) -> Array:
        # Fast path: one fused operation forwards and backwards.
        import torch

        return torch.sigmoid(x)

    #: A plain backward's stored memories above which segments are recomputed instead
    #: (eager PyTorch pays about a quarter more time for the recompute, so only where
    #: the memory matters: LSAM at d_model 128, batch 32 from L = 512).
    memory_saving_bytes = 256 * 2**20

    #: Opt in to ``torch.compile`` of the scans of a :class:`ManualStep` under
    #: autograd (LSAM, NAM-TM, the GRU): each segment of ``memory_checkpoint_every``
    #: steps, forward and backward, runs as one compiled program with its loop in C++
    #: (``_scan_compiled_torch``; where this PyTorch lacks the ``scan`` operator, the
    #: step alone is compiled and the loop stays in Python). On a CPU core, at d_model
    #: 64, an LSAM training step took about 0.7x the time of compiled steps, after a
    #: first call that compiled for about 20 s (LSAM) or 40 s (NAM-TM); each new shape
    #: (a new batch size or width) compiles again, while the number of steps is left
    #: dynamic (one more compilation for sequences longer than a segment). Results equal the
    #: eager ones within rounding. The first compiled scan turns on
    #: ``torch._dynamo.config.capture_scalar_outputs`` and raises its
    #: ``recompile_limit`` to at least 64, for the rest of the process. The
    #: environment variable :data:`COMPILE_STEPS_VARIABLE` set to ``1`` turns it on too.
    compile_steps: bool = False

    def memory_scan(
        self,
        step: MemoryStep,
        params: Any,
        memory: tuple[Any, ...],
        carry: Any,
        xs: tuple[Any, ...],
    ) -> tuple[Any, Any, Any]:
        # Under autograd: a step's own backward (reversible, no graph), or segments
        # recomputed from saved states.
        import torch

        flat = (*params, *memory, *carry, *xs)
        grad = torch.is_grad_enabled() and any(a.requires_grad for a in flat)
        grad = grad and xs[0].shape[0] > 0  # no steps: no memory to save or rebuild
        if grad and isinstance(step, ManualStep) and self.manual_backward:
            from ._memory_scan_torch import compiled, manual_scan

            if self.compile_steps or os.environ.get(COMPILE_STEPS_VARIABLE) == "1":
                from . import _scan_compiled_torch as whole

                if whole.available():
                    every = self.memory_checkpoint_every
                    return whole.compiled_scan(step, params, memory, carry, xs, every)
                step = compiled(step)
            return manual_scan(step, params, memory, carry, xs, self.memory_checkpoint_every)
        if not (grad and self.saves_memory(memory, xs)):
            return super().memory_scan(step, params, memory, carry, xs)
        from ._memory_scan_torch import memory_scan

        return memory_scan(step, params, memory, carry, xs, self.memory_checkpoint_every)

    #: Each chunk costs a few eager operations of fixed overhead: longer chunks pay it
    #: less often (measured best at 32 on a 2-core CPU, L = 1K-4K, d = 64, against 16
    #: and 64).
    delta_chunk_size = 32

    def attention_delta(
        self,
        qh: Array,
        kh: Array,
        v: Array,
        w: Array | None,
        e: Array | None,
        log_decay: Array | None,
        reset: Array | None,
        pr: Array | None,
        state: Array,
        causal: bool,
        chunk_size: int,
        xp: Namespace,
    ) -> tuple[Array, Array]:
        # Fast path: the chunk-parallel part is the standard one; the pass over the
        # chunks runs on 3-d tensors with fused batched products (baddbmm), three to
        # four eager operations per chunk instead of six. Autograd sees plain ops.
        import torch

        chunks = _delta.prepare(
            qh, kh, v, w, e, log_decay, reset, causal=causal, chunk_size=chunk_size, xp=xp
        )
        batch = state.shape[:-2]
        n, c = chunks.u.shape[-3], chunks.u.shape[-2]

        def flat(x: Array, tail: tuple[int, ...]) -> Sequence[Array]:
            # (..., n, *tail) -> n tensors of (B, *tail)
            x = torch.broadcast_to(x, (*batch, n, *tail)).reshape(-1, n, *tail)
            return x.unbind(1)

        d_v, d_k = state.shape[-2], state.shape[-1]
        u_s, k_s = flat(chunks.u, (c, d_v)), flat(chunks.k, (c, d_k))
        w_s = None if chunks.w is None else flat(chunks.w, (c, d_k))
        if causal:
            q_s, y_s = flat(chunks.q, (c, d_k)), flat(chunks.y, (c, d_v))
        g_s = None if chunks.carry is None else flat(chunks.carry[..., None, None], (1, 1))
        memory = state.reshape(-1, d_v, d_k)
        ys = []
        for i in range(n):
            memory_t = memory.transpose(1, 2)
            u = u_s[i] if w_s is None else torch.baddbmm(u_s[i], w_s[i], memory_t, alpha=-1)
            if causal:
                ys.append(torch.baddbmm(y_s[i], q_s[i], memory_t))
            if g_s is not None:
                memory = memory * g_s[i]
            memory = torch.baddbmm(memory, u.transpose(1, 2), k_s[i])
        memory = memory.reshape(state.shape)
        if causal and ys:
            y = torch.stack(ys, 1).reshape(*batch, n * c, d_v)[..., : qh.shape[-2], :]
        else:
            y = torch.matmul(qh, memory.transpose(-1, -2))
        if pr is not None:
            y = y * pr[..., None]
        return y, memory
