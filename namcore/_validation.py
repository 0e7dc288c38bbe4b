"""Input checks shared by the public functions.

Every check names the argument, what it got and what was expected. Shape checks use
static shapes only, and value checks run only when the backend says the values are
concrete and cheap to read, so nothing here breaks ``jax.jit`` or ``torch.compile``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from namcore import _compat
from namcore._typing import Array, Device, Namespace

if TYPE_CHECKING:  # the backends import this module's users: no import at run time
    from namcore.backends import Backend

__all__ = [
    "Shape",
    "array_arguments",
    "bounded",
    "broadcast_shapes",
    "check_bool",
    "check_eps",
    "check_float",
    "check_last_dim",
    "check_min_ndim",
    "device_of",
    "interval",
    "mask",
    "namespace",
    "probability",
    "values_in",
]

_ACCEPTED = "an array of an array-API library (NumPy, CuPy, PyTorch, JAX, array-api-strict, ...)"

#: A static shape; ``None`` is a size unknown until run time (lazy or symbolic arrays).
Shape = tuple[int | None, ...]


# array type -> namespace, filled on first use. Besides saving the cost of
# array_namespace on every call, a plain dict lookup traces cleanly under
# torch.compile, where array_api_compat's cached helpers cause warnings.
_NAMESPACE_BY_TYPE: dict[type, Namespace] = {}


def namespace(func: str, **arrays: Array) -> Namespace:
    """The one array-API namespace shared by ``arrays`` (given by argument name).

    Raises ``TypeError`` for non-arrays (Python lists, scalars where an array is
    required) and for arrays of two different libraries, naming both. Types seen
    before (a tensor and an ``nn.Parameter``, say) resolve through a dict lookup.
    """
    found = None
    for name, x in arrays.items():
        kind = type(x)
        xp = _NAMESPACE_BY_TYPE.get(kind)
        if xp is None:
            xp = _compat.tensor_namespace(kind) or _namespace_slow(func, {name: x})
            _NAMESPACE_BY_TYPE[kind] = xp
        if found is None:
            found = xp
        elif xp is not found:
            return _namespace_slow(func, arrays)
    return found


def _namespace_slow(func: str, arrays: dict[str, Array]) -> Namespace:
    for name, x in arrays.items():
        if not _compat.is_array_api_obj(x):
            hint = (
                " (convert it first, e.g. with numpy.asarray)"
                if isinstance(x, list | tuple)
                else ""
            )
            scalar_ok = name.startswith("p_") or name == "decay"  # floats broadcast
            accepted = f"a Python float or {_ACCEPTED}" if scalar_ok else _ACCEPTED
            raise TypeError(f"{func}: `{name}` must be {accepted}, got {type(x).__name__}{hint}")
    try:
        return _compat.array_namespace(*arrays.values())
    except TypeError:
        libraries = ", ".join(
            f"`{name}` is a {_compat.library_name(x)} array" for name, x in arrays.items()
        )
        raise TypeError(
            f"{func}: all arrays must come from the same library, but {libraries}"
        ) from None


def check_float(func: str, name: str, x: Array, xp: Namespace) -> None:
    """``TypeError`` unless ``x`` has a real floating dtype."""
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(
            f"{func}: `{name}` must have a real floating dtype (float16, bfloat16, float32 "
            f"or float64), got {x.dtype}; cast it first, e.g. with xp.astype(x, xp.float32)"
        )


def broadcast_shapes(func: str, **shapes: Shape) -> Shape:
    """Broadcast named shapes, or raise ``ValueError`` listing all of them.

    Unknown dimensions (``None``, as in lazy libraries) are compatible with anything.
    """
    ndim = max([len(s) for s in shapes.values()])
    result: list[int | None] = []
    for axis in range(-ndim, 0):
        dims = [s[axis] for s in shapes.values() if -axis <= len(s)]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            described = ", ".join(f"`{n}` has batch {tuple(s)}" for n, s in shapes.items())
            raise ValueError(
                f"{func}: batch shapes (the leading axes) do not broadcast: {described}"
            )
        result.append(known.pop() if known else (None if None in dims else 1))
    return tuple(result)


def probability(
    func: str,
    name: str,
    p: Array | float,
    *,
    xp: Namespace,
    batch: Shape,
    dtype: Any,
    backend: Backend,
) -> Array | float:
    """Check a probability argument and return it ready for the agnostic layer.

    A Python number comes back as a float; an array comes back cast to ``dtype``.
    Concrete values must lie in [0, 1]; traced or on-device values are not read.
    """
    return bounded(func, name, p, xp=xp, batch=batch, dtype=dtype, backend=backend)


def bounded(
    func: str,
    name: str,
    p: Array | float,
    *,
    xp: Namespace,
    batch: Shape,
    dtype: Any,
    backend: Backend,
    low: float = 0.0,
    high: float = 1.0,
    per: str = "probability",
) -> Array | float:
    """Check a per-memory parameter in ``[low, high]`` (``high`` may be ``inf``).

    A Python number or an array broadcasting to ``batch`` (one ``per`` per memory);
    returned as :func:`probability` returns it.
    """
    if isinstance(p, int | float) and not isinstance(p, bool):
        if not (low <= p <= high):
            raise ValueError(f"{func}: `{name}` must lie in {interval(low, high)}, got {p!r}")
        return float(p)
    if type(p) not in _NAMESPACE_BY_TYPE and not _compat.is_array_api_obj(p):
        raise TypeError(
            f"{func}: `{name}` must be a Python float or {_ACCEPTED}, got {type(p).__name__}"
        )
    check_float(func, name, p, xp)
    p_shape = tuple(p.shape)
    try:
        combined = broadcast_shapes(func, **{name: p_shape, "batch": batch})
    except ValueError:
        combined = None
    if len(p_shape) > len(batch) or combined != tuple(batch):
        raise ValueError(
            f"{func}: `{name}` of shape {p_shape} must broadcast to the batch shape "
            f"{tuple(batch)} (one {per} per memory; no feature axis)"
        )
    values_in(func, name, p, low, high, backend)
    return p if p.dtype == dtype else xp.astype(p, dtype)


def values_in(func: str, name: str, x: Array, low: float, high: float, backend: Backend) -> None:
    """``ValueError`` unless the concrete values of ``x`` lie in ``[low, high]``.

    Values that cannot be read cheaply (traced, on an accelerator) are not checked.
    """
    values = backend.concrete_values(x)
    if values is not None and values.size and not (values.min() >= low and values.max() <= high):
        raise ValueError(
            f"{func}: `{name}` must lie in {interval(low, high)}, got values in "
            f"[{values.min()}, {values.max()}]"
        )


def interval(low: float, high: float) -> str:
    """``[low, high]`` as messages write it (``[0, inf)`` for an unbounded one)."""
    return f"[{low:g}, {high:g}]" if high != float("inf") else f"[{low:g}, inf)"


def check_eps(func: str, eps: object) -> float:
    """``eps`` must be a positive finite Python number."""
    if (
        isinstance(eps, bool)
        or not isinstance(eps, int | float)
        or not (math.isfinite(eps) and eps > 0)
    ):
        raise ValueError(f"{func}: `eps` must be a positive finite float, got {eps!r}")
    return float(eps)


def check_min_ndim(func: str, name: str, x: Array, ndim: int, layout: str) -> None:
    """``ValueError`` unless ``x`` has at least ``ndim`` dimensions."""
    if x.ndim < ndim:
        raise ValueError(
            f"{func}: `{name}` must have at least {ndim} dimension(s) {layout}, "
            f"got shape {tuple(x.shape)}"
        )


def check_last_dim(
    func: str,
    name: str,
    x: Array,
    expected: int | None,
    meaning: str,
    other: str,
    other_shape: Sequence[int | None],
) -> None:
    """``ValueError`` unless ``x.shape[-1] == expected`` (unknown sizes pass)."""
    got = x.shape[-1]
    if got is not None and expected is not None and got != expected:
        raise ValueError(
            f"{func}: `{name}` has {meaning} = {got} (shape {tuple(x.shape)}), but `{other}` "
            f"of shape {tuple(other_shape)} expects {expected}"
        )


def device_of(x: Array) -> Device:
    """The device of array ``x`` (for creating arrays next to it)."""
    if _compat.tensor_namespace(type(x)) is not None:
        return x.device  # torch: no lru_cache-wrapped helper inside torch.compile
    return _compat.device(x)


def mask(
    func: str, m: Array, *, xp: Namespace, batch: Shape, dtype: Any, expand: bool = True
) -> Array:
    """Check a boolean token mask broadcastable to ``batch``; return it as 0/1 floats.

    With ``expand`` the result is broadcast to ``batch``; without, it keeps its shape
    (for symbolic arrays whose batch sizes are unknown).
    """
    if not xp.isdtype(m.dtype, "bool"):
        raise TypeError(
            f"{func}: `mask` must be a boolean array (True = real token), got dtype {m.dtype}"
        )
    try:
        combined = broadcast_shapes(func, mask=tuple(m.shape), expected=batch)
    except ValueError:
        combined = None
    if m.ndim > len(batch) or combined != tuple(batch):
        raise ValueError(
            f"{func}: `mask` of shape {tuple(m.shape)} must broadcast to "
            f"{tuple(batch)} (batch..., L)"
        )
    floats = xp.astype(m, dtype)
    return xp.broadcast_to(floats, tuple(batch)) if expand else floats


def array_arguments(**maybe_arrays: Array | float | None) -> dict[str, Array]:
    """The arguments that are arrays rather than Python numbers or ``None``.

    Probability arrays join the one-library check of :func:`namespace`.
    """
    return {
        name: x
        for name, x in maybe_arrays.items()
        if x is not None and not isinstance(x, int | float)
    }


def check_bool(func: str, name: str, value: object) -> None:
    """``TypeError`` unless ``value`` is a Python bool (flags are never arrays)."""
    if not isinstance(value, bool):
        raise TypeError(f"{func}: `{name}` must be True or False, got {value!r}")
