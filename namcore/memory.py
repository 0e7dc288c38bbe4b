"""The public NAM primitives: :func:`unit`, :func:`write` and :func:`read`.

This is the delegation layer: it infers the array namespace, validates the inputs,
and hands them to the backend of that library, whose default implementation is the
pure-standard code in :mod:`namcore._agnostic.memory`.
"""

from __future__ import annotations

from namcore import _validation as _v
from namcore import backends as _backends
from namcore._agnostic.memory import EPS
from namcore._typing import Array, Namespace

__all__ = ["read", "unit", "write"]


def unit(x: Array, /, *, axis: int = -1, eps: float = EPS) -> Array:
    """Scale ``x`` to unit L2 norm along ``axis``: ``x / max(||x||_2, eps)``.

    Parameters
    ----------
    x : array
        Real floating array of any array-API library.
    axis : int, optional
        Axis along which to normalise. Default: the last axis.
    eps : float, optional
        Lower bound on the norm, so the zero vector maps to zero (never NaN), as in
        ``torch.nn.functional.normalize``. Default: ``1e-12``.

    Returns
    -------
    array
        Same library, shape, dtype and device as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> import namcore
    >>> namcore.unit(np.array([3.0, 4.0]))
    array([0.6, 0.8])
    >>> namcore.unit(np.zeros(2))
    array([0., 0.])
    """
    xp = _v.namespace("unit", x=x)
    _v.check_float("unit", "x", x, xp)
    _v.check_min_ndim("unit", "x", x, 1, "(a vector along `axis`)")
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"unit: `axis` must be an int, got {type(axis).__name__}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"unit: `axis` must be an int in [{-x.ndim}, {x.ndim}) for `x` of shape "
            f"{tuple(x.shape)}, got {axis!r}"
        )
    eps = _v.check_eps("unit", eps)
    return _backends.for_namespace(xp).unit(x, axis, eps, xp)


def write(
    M: Array,
    k: Array,
    v: Array,
    /,
    p_write: Array | float = 1.0,
    p_erase: Array | float = 0.0,
    *,
    normalize: bool = True,
) -> Array:
    r"""Write the pair ``(k, v)`` into the memory ``M`` (the paper's WR).

    .. math:: M' = M + p_w\, v \hat k^\top - p_e\, M \hat k \hat k^\top,
              \qquad \hat k = k / \max(\lVert k \rVert, \epsilon)

    With the defaults (``p_write=1, p_erase=0``) this adds the outer product
    :math:`v \hat k^\top` (the paper's "simplest construction"). With
    ``p_write=1, p_erase=1`` it overwrites: ``read(write(M, k, v, 1, 1), k) == v``
    (Theorem 2).

    Parameters
    ----------
    M : array, shape (..., d_v, d_k)
        Memory. Leading dimensions are batch dimensions (heads are one more).
    k : array, shape (..., d_k)
        Key; normalised to unit length unless ``normalize=False``.
    v : array, shape (..., d_v)
        Value.
    p_write, p_erase : float or array broadcastable to the batch shape (...), optional
        Write and erase probabilities in [0, 1]. Defaults: 1 and 0.
    normalize : bool, optional
        Normalise ``k``. Pass ``False`` when ``k`` is already a unit vector (or when a
        raw key is wanted, as for NAM-TM's one-hot tape heads). Default: ``True``.

    Returns
    -------
    array, shape (broadcast batch..., d_v, d_k)
        The new memory, of the inputs' library, promoted dtype and device. ``M`` is
        never modified. float16 and bfloat16 inputs are written in float32 and the
        result rounded back, so an erase whose intermediate ``M k̂`` would overflow
        the half format still gives the representable result.

    Raises
    ------
    TypeError
        Non-arrays, non-floating dtypes, or arrays of two libraries in one call.
    ValueError
        ``M`` with fewer than 2 dimensions, ``d_k``/``d_v`` mismatches, batch shapes
        that do not broadcast, or concrete probabilities outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import namcore
    >>> M = np.zeros((2, 3))                      # d_v = 2, d_k = 3
    >>> M = namcore.write(M, np.array([0.0, 2.0, 0.0]), np.array([1.0, -1.0]))
    >>> namcore.read(M, np.array([0.0, 1.0, 0.0]))
    array([ 1., -1.])
    >>> M = namcore.write(M, np.array([0.0, 1.0, 0.0]), np.array([5.0, 5.0]), 1.0, 1.0)
    >>> namcore.read(M, np.array([0.0, 1.0, 0.0]))  # overwritten (Theorem 2)
    array([5., 5.])
    """
    probabilities = _v.array_arguments(p_write=p_write, p_erase=p_erase)
    xp = _v.namespace("write", M=M, k=k, v=v, **probabilities)
    _v.check_bool("write", "normalize", normalize)
    batch = _check_memory("write", M, xp, k=(k, -1, "d_k"), v=(v, -2, "d_v"))
    backend = _backends.for_namespace(xp)
    backend.check_same_device("write", {"M": M, "k": k, "v": v, **probabilities})
    dtype = xp.result_type(M, k, v)
    pw = _v.probability(
        "write", "p_write", p_write, xp=xp, batch=batch, dtype=dtype, backend=backend
    )
    pe = _v.probability(
        "write", "p_erase", p_erase, xp=xp, batch=batch, dtype=dtype, backend=backend
    )
    if xp.finfo(dtype).bits < 32:
        # Half precision: the erase read M k̂ and the update vector can leave the
        # format's range (float16 stops at 65504) although the new memory is inside
        # it, so the write runs in float32 and only its result is rounded back.
        def up(a: Array | float) -> Array | float:
            return a if isinstance(a, float) else xp.astype(a, xp.float32)

        out = backend.write(up(M), up(k), up(v), up(pw), up(pe), normalize, EPS, xp)
        return xp.astype(out, dtype)
    return backend.write(M, k, v, pw, pe, normalize, EPS, xp)


def read(M: Array, q: Array, /, p_read: Array | float = 1.0, *, normalize: bool = True) -> Array:
    r"""Read the memory ``M`` with the query ``q`` (the paper's RD): ``p_read * M q̂``.

    Parameters
    ----------
    M : array, shape (..., d_v, d_k)
        Memory.
    q : array, shape (..., d_k)
        Query; normalised to unit length unless ``normalize=False``.
    p_read : float or array broadcastable to the batch shape (...), optional
        Read probability in [0, 1]. Default: 1.
    normalize : bool, optional
        Normalise ``q``. Default: ``True``.

    Returns
    -------
    array, shape (broadcast batch..., d_v)
        Same library, promoted dtype and device as the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import namcore
    >>> keys = np.eye(3)                          # orthonormal keys
    >>> values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> M = np.zeros((2, 3))
    >>> for key, value in zip(keys, values):
    ...     M = namcore.write(M, key, value)
    >>> namcore.read(M, keys[1])                  # Theorem 1
    array([3., 4.])
    >>> namcore.read(M, keys[1], 0.5)
    array([1.5, 2. ])
    """
    probabilities = _v.array_arguments(p_read=p_read)
    xp = _v.namespace("read", M=M, q=q, **probabilities)
    _v.check_bool("read", "normalize", normalize)
    batch = _check_memory("read", M, xp, q=(q, -1, "d_k"))
    backend = _backends.for_namespace(xp)
    backend.check_same_device("read", {"M": M, "q": q, **probabilities})
    pr = _v.probability(
        "read", "p_read", p_read, xp=xp, batch=batch, dtype=xp.result_type(M, q), backend=backend
    )
    return backend.read(M, q, pr, normalize, EPS, xp)


def _check_memory(
    func: str, M: Array, xp: Namespace, **vectors: tuple[Array, int, str]
) -> _v.Shape:
    """Validate ``M`` and vectors against it; return the broadcast batch shape."""
    _v.check_float(func, "M", M, xp)
    _v.check_min_ndim(func, "M", M, 2, "(..., d_v, d_k)")
    shapes = {"M": tuple(M.shape[:-2])}
    for name, (x, m_axis, meaning) in vectors.items():
        _v.check_float(func, name, x, xp)
        _v.check_min_ndim(func, name, x, 1, f"(..., {meaning})")
        _v.check_last_dim(func, name, x, M.shape[m_axis], meaning, "M", M.shape)
        shapes[name] = tuple(x.shape[:-1])
    return _v.broadcast_shapes(func, **shapes)
