"""The :class:`Backend` base class: what namcore needs to know about one array library.

A backend is a small object, not a namespace wrapper. The numerical code of namcore is
written once against the array API standard; a backend only supplies what the standard
leaves out (conversion to and from NumPy, a seeded RNG for parameter init, a ``scan``
for recurrences, cheap access to concrete values for input checks) and, optionally,
faster implementations of public primitives. Every fast path is a method that the base
class implements with the standard path, so ``Backend.write`` *is* the reference that
the fast paths are tested against.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from namcore._agnostic import attention as _attention
from namcore._agnostic import delta as _delta
from namcore._agnostic import memory as _memory
from namcore._typing import Array, Device, Namespace
from namcore._validation import device_of as _device

from ._steps import MemoryStep, ScanStep

__all__ = ["Backend", "device_mismatch"]


class Backend:
    """One array library as seen by namcore.

    Subclasses set :attr:`name` and :attr:`module` and override what their library
    does differently. Instances are stateless and cheap; get them with
    :func:`namcore.backends.get` rather than constructing them.
    """

    #: Public name, used by ``namcore check --backends`` and ``NAMCORE_TEST_BACKENDS``.
    name: str = "generic"
    #: Top-level module to import (and to look for in ``sys.modules``).
    module: str = ""

    # ------------------------------------------------------------------ discovery
    def is_installed(self) -> bool:
        """Whether the library can be imported (without importing it)."""
        return importlib.util.find_spec(self.module) is not None

    def version(self) -> str:
        """The library's ``__version__``; imports it."""
        return str(getattr(importlib.import_module(self.module), "__version__", "unknown"))

    def namespace(self) -> Namespace:
        """The array-API namespace for this library (imports it)."""
        raise NotImplementedError

    def devices(self) -> list[Device]:
        """Devices this library can place arrays on, from the inspection API."""
        try:
            return list(self.namespace().__array_namespace_info__().devices())
        except Exception:  # a library that is installed but has no usable device
            return []

    def default_device(self) -> Device:
        """The device arrays are created on when none is given."""
        return self.namespace().__array_namespace_info__().default_device()

    def supports_dtype(self, name: str) -> bool:
        """Whether arrays of dtype ``name`` (e.g. ``"float64"``) can be created."""
        return hasattr(self.namespace(), name)

    def enable_float64(self) -> None:
        """Make float64 arrays available in this process (imports the library if needed).

        namcore's checks and tests compare with float64 references, so they call this
        for each library they run on. Most libraries always have float64 and this does
        nothing; JAX computes in 32 bits unless ``jax_enable_x64`` is on, and its
        backend turns it on. That is a process-wide setting, best changed before any
        array is created: call it in programs and test fixtures, not in libraries.
        """

    # ----------------------------------------------------------------- conversion
    def dtype(self, name: str) -> Any:
        """The library's dtype object called ``name`` (``"float32"``, ``"bfloat16"``...)."""
        dt = getattr(self.namespace(), name, None)
        if dt is None:
            raise TypeError(f"backend {self.name!r} has no dtype {name!r}")
        return dt

    def from_numpy(
        self, a: np.ndarray, *, dtype: str | None = None, device: Device = None
    ) -> Array:
        """Copy a NumPy array into this library, optionally casting and placing it."""
        xp = self.namespace()
        out = xp.asarray(np.array(a, copy=True), device=device)
        if dtype is not None:
            out = xp.astype(out, self.dtype(dtype))
        return out

    def to_numpy(self, x: Array) -> np.ndarray:
        """Copy an array of this library to host memory as a NumPy array."""
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError, AttributeError):
            return np.asarray(x)

    def concrete_values(self, x: Array) -> np.ndarray | None:
        """Host values of ``x`` if reading them is cheap and legal, else ``None``.

        Input checks on values (probabilities in [0, 1]) use this. It returns ``None``
        for traced values (``jax.jit``, ``torch.compile``) and for arrays on an
        accelerator, where reading would force a device synchronisation in the hot path.
        """
        try:
            return self.to_numpy(x)
        except Exception:
            return None

    # ------------------------------------------------------------- initialisation
    def random_normal(
        self,
        seed: int,
        shape: Sequence[int],
        *,
        dtype: str = "float32",
        device: Device = None,
        scale: float = 1.0,
    ) -> Array:
        """Seeded standard-normal samples, for parameter initialisation.

        The samples come from NumPy's PCG64 generator and are then converted, so the
        same ``seed`` gives the same numbers on every backend: a model initialised on
        JAX and one initialised on PyTorch start from identical weights.
        """
        sample = np.random.default_rng(seed).standard_normal(tuple(shape)) * scale
        return self.from_numpy(sample, dtype=dtype, device=device)

    # ---------------------------------------------------------------- recurrences
    def scan(
        self, f: ScanStep, init: Any, xs: Any, *, length: int | None = None
    ) -> tuple[Any, Any]:
        """``jax.lax.scan`` semantics: ``carry, y = f(carry, x)`` over axis 0 of ``xs``.

        ``xs`` is an array, a tuple of arrays with the same leading length, or ``None``
        (then ``length`` is required). ``ys`` is stacked along a new axis 0, with the
        same structure as ``y`` (an array, a tuple of arrays, or ``None``). With no
        steps, ``carry`` is ``init`` and ``ys`` are empty arrays ``(0, ...)``: ``f`` runs
        once on zeros, for the shapes and dtypes of its outputs only.
        """
        is_tuple = isinstance(xs, tuple)
        leaves = xs if is_tuple else (() if xs is None else (xs,))
        if length is None:
            # the first leaf whose length is known (symbolic arrays may not know theirs)
            known = [leaf.shape[0] for leaf in leaves if leaf.shape[0] is not None]
            if not known:
                raise ValueError(
                    "scan: `length` is required when `xs` is None or its length is unknown"
                )
            length = int(known[0])
        # Unstacked once, not indexed per step: under torch autograd, each ``leaf[i]``
        # would zero-fill a gradient of the whole leaf, a backward quadratic in length.
        xp = self.namespace()
        if length == 0:
            return init, _no_outputs(f, init, leaves, is_tuple, xp)
        steps = [_unstack(leaf, length, xp) for leaf in leaves]
        carry, ys = init, []
        for i in range(length):
            carry, y = f(carry, _step_input(tuple(s[i] for s in steps), is_tuple))
            ys.append(y)
        return carry, _stack_outputs(ys, xp)

    #: Steps between the saved states of a memory-saving :meth:`memory_scan`.
    memory_checkpoint_every: int = 64
    #: A memory-saving :meth:`memory_scan` is used (on JAX and PyTorch) when a plain
    #: backward would store at least this many bytes of memories (``L`` times the
    #: bytes of ``memory``); ``0`` always, ``math.inf`` never.
    memory_saving_bytes: float = 32 * 2**20

    #: Whether :meth:`memory_scan` differentiates a :class:`ManualStep` with its own
    #: backward (on JAX and PyTorch) rather than with the library's autodiff.
    manual_backward: bool = True

    def memory_scan(
        self,
        step: MemoryStep,
        params: Any,
        memory: tuple[Any, ...],
        carry: Any,
        xs: tuple[Any, ...],
    ) -> tuple[Any, Any, Any]:
        """Scan a recurrence whose large state is written by rank-1 updates.

        ``step(params, memory, carry, x) -> (memory, carry, y, writes)`` is one step:
        ``memory`` is a tuple of arrays ``(..., m, n)``, ``carry`` a tuple of the other
        state arrays, ``x`` a tuple of one step's inputs (axis 0 of the arrays ``xs``),
        ``params`` a tuple of the arrays the step uses besides its arguments (weights:
        pass them here rather than closing over them, so that they get gradients),
        ``y`` a tuple of the step's outputs, and ``writes`` one pair ``(u, k̂)`` per
        memory with ``memory_new[i] == memory[i] + u k̂ᵀ`` (batched outer product).
        Returns the final memory, the final carry and the stacked ``y`` (a tuple of
        arrays ``(L, ...)``).

        This is the standard path, :meth:`scan` with the library's own autodiff, which
        stores every step's memory: O(L·m·n). When that would reach
        :attr:`memory_saving_bytes`, the JAX backend differentiates with a reversible
        backward instead, which stores the ``writes`` (O(L·(m + n))) and rebuilds
        ``M_t = M_{t+1} - u_t k̂_tᵀ`` from the last step to the first, restarting from
        an exact copy every :attr:`memory_checkpoint_every` steps so that rounding
        drift spans at most that many steps; the PyTorch backend keeps the state every
        :attr:`memory_checkpoint_every` steps and recomputes one segment at a time.
        Both give the plain gradient within rounding.
        """

        def f(state: Any, x: Any) -> tuple[Any, Any]:
            memory, carry, y, _ = step(params, state[0], state[1], x)
            return (memory, carry), y

        (memory, carry), ys = self.scan(f, (tuple(memory), tuple(carry)), tuple(xs))
        return memory, carry, ys

    def saves_memory(self, memory: tuple[Any, ...], xs: tuple[Any, ...]) -> bool:
        """Whether :meth:`memory_scan` takes its memory-saving path for these arguments."""
        length = xs[0].shape[0] or 0
        stored = sum(math.prod(m.shape) * m.dtype.itemsize for m in memory) * length
        return stored >= self.memory_saving_bytes

    #: Whether :meth:`jit` compiles (JAX); elsewhere it returns ``f`` itself.
    jit_compiles: bool = False

    def jit(
        self, f: Callable[..., Any], *, static_argnums: Sequence[int] = ()
    ) -> Callable[..., Any]:
        """``f`` compiled for repeated calls on arrays (``jax.jit`` on JAX; ``f`` elsewhere).

        ``static_argnums`` are the positions of arguments that are not arrays (Python
        numbers, flags, shapes): a compiling backend specialises ``f`` on their values,
        which must be hashable. Elsewhere they are ignored.
        """
        return f

    # --------------------------------------------------------------------- testing
    def testing_device(self, *, gpu: bool = False) -> Device:
        """The device tests run on: the CPU, or with ``gpu`` the library's first GPU.

        Raises
        ------
        LookupError
            With the reason, when this library has no such device here (no GPU, or a
            GPU-only library on a machine without one).
        """
        if gpu:
            raise LookupError(f"namcore runs {self.name} on the CPU only")
        return self.default_device()

    def setup_for_testing(self, *, gpu: bool = False) -> tuple[Namespace, Device]:
        """``(namespace, device)`` to test this library with: the ``xp`` fixture's setup.

        Imports the library, turns float64 on (:meth:`enable_float64`: tests compare
        with float64 references) and picks the device of :meth:`testing_device`.

        Raises
        ------
        LookupError
            With the reason, when the library is not installed or has no such device;
            :mod:`namcore.testing.fixtures` turns it into a visible skip.
        """
        if not self.is_installed():
            raise LookupError(f"{self.module} is not installed")
        self.enable_float64()
        return self.namespace(), self.testing_device(gpu=gpu)

    # --------------------------------------------------------------------- devices
    def check_same_device(self, func: str, arrays: dict[str, Array]) -> None:
        """``ValueError`` naming the arguments when ``arrays`` live on different devices.

        The base class checks nothing: on a CPU-only library there is one device, and
        JAX places (or refuses) operands itself. GPU libraries override this, so that
        a user gets one clear message instead of a kernel-launch error.
        """

    # ----------------------------------------------------------------- fast paths
    # The base implementations are the standard path; subclasses may override.
    def unit(self, x: Array, axis: int, eps: float, xp: Namespace) -> Array:
        """Validated ``namcore.unit``; see :func:`namcore._agnostic.memory.unit`."""
        return _memory.unit(x, axis=axis, eps=eps, xp=xp)

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
        """Validated ``namcore.write``; see :func:`namcore._agnostic.memory.write`."""
        return _memory.write(M, k, v, p_write, p_erase, normalize=normalize, eps=eps, xp=xp)

    def read(
        self, M: Array, q: Array, p_read: Array | float, normalize: bool, eps: float, xp: Namespace
    ) -> Array:
        """Validated ``namcore.read``; see :func:`namcore._agnostic.memory.read`."""
        return _memory.read(M, q, p_read, normalize=normalize, eps=eps, xp=xp)

    def sigmoid(self, x: Array, xp: Namespace) -> Array:
        """The logistic function ``1 / (1 + exp(-x))``, neither tail overflowing.

        The standard path takes five operations (and as many in a gradient); the
        PyTorch and JAX backends use their fused ``sigmoid``, one operation each way,
        which counts in the per-step cost of the recurrent models.
        """
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def linear(self, x: Array, w: Array, xp: Namespace) -> Array:
        """``x @ w`` for inputs ``x`` (..., n) and one weight matrix ``w`` (n, m).

        The dense layers of the models go through here. The JAX backend folds the
        leading axes of ``x`` into one first: XLA's CPU backend differentiates a
        (B, L, n) @ (n, m) product about twice as slowly as the same (B·L, n) one.
        """
        return xp.matmul(x, w)

    #: Whether ``x[int_array] = rows`` works (``array_api_extra.at`` relies on it).
    #: Without it, row updates fall back to a masked ``where`` over all rows.
    integer_index_assignment: bool = True

    #: Default chunk length of causal attention: it changes nothing but rounding (see
    #: "Algorithms" in docs/attention.md).
    chunk_size: int = 64

    def attention_causal(
        self,
        qh: Array,
        kh: Array,
        v: Array,
        w: Array | None,
        pr: Array | None,
        state: Array,
        chunk_size: int,
        xp: Namespace,
    ) -> tuple[Array, Array]:
        """Causal NOA without erase; see :func:`namcore._agnostic.attention.causal_chunked`."""
        return _attention.causal_chunked(
            qh, kh, v, w, pr, state, chunk_size=chunk_size, xp=xp, scan=self.scan
        )

    #: Default chunk length of attention with erase or decay (the WY form); its
    #: triangular solve grows as C² log C per chunk, so it is shorter than the plain one.
    delta_chunk_size: int = 16

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
        """NOA with erase and/or decay; see :func:`namcore._agnostic.delta.chunked`."""
        return _delta.chunked(
            qh,
            kh,
            v,
            w,
            e,
            log_decay,
            reset,
            pr,
            state,
            causal=causal,
            chunk_size=chunk_size,
            xp=xp,
            scan=self.scan,
        )

    def __repr__(self) -> str:
        return f"<namcore backend {self.name!r}>"


def device_mismatch(func: str, devices: dict[str, Device]) -> None:
    """Raise the mixed-device ``ValueError`` if ``devices`` (name -> device) differ."""
    if len(set(devices.values())) > 1:
        where = ", ".join(f"`{name}` on {device}" for name, device in devices.items())
        raise ValueError(
            f"{func}: all arrays must be on one device, but {where}; move them to one device first"
        )


def _unstack(leaf: Array, length: int, xp: Namespace) -> Sequence[Array]:
    """``leaf`` split along axis 0 (``unstack`` where the namespace has it)."""
    if hasattr(xp, "unstack") and leaf.shape[0] is not None:
        return xp.unstack(leaf, axis=0)
    return [leaf[i, ...] for i in range(length)]


def _step_input(x: tuple[Array, ...], is_tuple: bool) -> Any:
    """One step's input as ``f`` takes it: the tuple, its one array, or ``None``."""
    return x if is_tuple else (x[0] if x else None)


def _no_outputs(
    f: ScanStep, init: Any, leaves: Sequence[Array], is_tuple: bool, xp: Namespace
) -> Any:
    """The stacked outputs of a scan of no steps: arrays ``(0, ...)`` shaped as ``f``'s.

    ``f`` runs once on zeros shaped as one step's inputs, for the shapes and dtypes of
    its outputs only (as ``jax.lax.scan`` traces it for them).
    """
    x = tuple(xp.zeros(leaf.shape[1:], dtype=leaf.dtype, device=_device(leaf)) for leaf in leaves)
    _, y = f(init, _step_input(x, is_tuple))

    def empty(a: Array) -> Array:
        return xp.zeros((0, *a.shape), dtype=a.dtype, device=_device(a))

    if y is None:
        return None
    return tuple(map(empty, y)) if isinstance(y, tuple) else empty(y)


def _stack_outputs(ys: list[Any], xp: Namespace) -> Any:
    """The outputs of a scan's steps stacked along a new axis 0, keeping their structure."""
    if not ys or ys[0] is None:
        return None
    if isinstance(ys[0], tuple):
        return tuple(xp.stack([y[j] for y in ys]) for j in range(len(ys[0])))
    return xp.stack(ys)
