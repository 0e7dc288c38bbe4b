r"""Neural Turing Machine addressing and memory access (Graves, Wayne & Danihelka 2014).

The memory is a matrix ``memory (..., N, W)`` of ``N`` cells (rows) of width ``W``;
heads address it with weightings ``w (..., N)``, distributions over the cells. One
step of NTM addressing chains four functions:

1. :func:`content_address`: ``softmax_n(beta * cos(k, M[n]))``;
2. :func:`interpolate`: ``g * w_c + (1 - g) * w_previous``;
3. :func:`shift`: a circular convolution with the shifts (-1, 0, +1);
4. :func:`sharpen`: ``w**gamma / sum(w**gamma)``;

and :func:`address` runs all four. :func:`read` returns ``wᵀ M`` and :func:`write`
erases then adds, ``M * (1 - w eᵀ) + w aᵀ``.

Leading axes are batch axes and broadcast together, as in :func:`namcore.write`; for
``R`` heads on one memory, give the memory a head axis (``memory[..., None, :, :]``).
Per-memory scalars (``strength``, ``gate``, ``gamma``) are Python floats or arrays of
the batch shape. Each function validates its arguments (shapes always, values in
their ranges when the backend can read them cheaply) and then calls the pure
array-API code in :mod:`namcore._agnostic.ntm`. See ``docs/memory-networks.md``.
"""

from __future__ import annotations

from namcore import _validation as _v
from namcore import _weightings as _w
from namcore._agnostic import ntm as _ntm
from namcore._agnostic.memory import EPS
from namcore._typing import Array
from namcore._weightings import (
    INF,
    Call,
    check_memory,
    check_scalar_type,
    check_shift_weights,
    check_weighting,
    check_weights_1d,
)

__all__ = [
    "address",
    "content_address",
    "interpolate",
    "read",
    "sharpen",
    "shift",
    "write",
]

# ------------------------------------------------------------------- addressing


def content_address(
    memory: Array, key: Array, strength: Array | float = 1.0, *, eps: float = EPS
) -> Array:
    r"""Content weights: a softmax over cells of ``strength`` times the cosine similarity.

    .. math:: w_c[n] = \frac{\exp(\beta K(k, M_n))}{\sum_m \exp(\beta K(k, M_m))},
              \qquad K(k, m) = \frac{k \cdot m}{\max(\lVert k\rVert, \epsilon)\,
              \max(\lVert m\rVert, \epsilon)}

    Parameters
    ----------
    memory : array, shape (..., N, W)
        The memory, one cell per row.
    key : array, shape (..., W)
        The key to compare every cell with.
    strength : float or array broadcastable to the batch shape (...), optional
        Key strength ``beta >= 0``: 0 gives uniform weights, large values approach the
        one-hot of the best match. Default: 1.
    eps : float, optional
        Floor of the norms in the cosine's denominator, so a zero key or cell has
        similarity 0 (never NaN) and finite gradients. Default: ``1e-12``.

    Returns
    -------
    array, shape (broadcast batch..., N)
        A distribution over the cells.

    Raises
    ------
    TypeError
        Non-arrays, non-floating dtypes, arrays of two libraries.
    ValueError
        Shapes that do not fit, or a concrete negative strength.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> memory = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> np.round(ntm.content_address(memory, np.array([2.0, 0.0]), 10.0), 3)
    array([0.949, 0.   , 0.051])
    >>> ntm.content_address(memory, np.array([2.0, 0.0]), 0.0)  # uniform
    array([0.33333333, 0.33333333, 0.33333333])
    """
    func = "ntm.content_address"
    check_scalar_type(func, "strength", strength)
    call = Call(func, {"memory": memory, "key": key, "strength": strength})
    return _w.content(call, memory, key, strength, eps)


def interpolate(content: Array, previous: Array, gate: Array | float) -> Array:
    """The interpolation gate: ``gate * content + (1 - gate) * previous``.

    Parameters
    ----------
    content, previous : array, shape (..., N)
        This step's content weights and the head's previous weights.
    gate : float or array broadcastable to the batch shape (...)
        ``g`` in [0, 1]: 1 keeps the content weights, 0 the previous weights.

    Returns
    -------
    array, shape (broadcast batch..., N)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> ntm.interpolate(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.25)
    array([0.25, 0.75])
    """
    func = "ntm.interpolate"
    check_scalar_type(func, "gate", gate)
    call = Call(func, {"content": content, "previous": previous, "gate": gate})
    return _interpolate(call, content, previous, gate)


def _interpolate(call: Call, content: Array, previous: Array, gate: Array | float) -> Array:
    check_weights_1d(call, "content", content)
    check_weights_1d(call, "previous", previous)
    call.axis("previous", previous, -1, content.shape[-1], "N (cells)", "content", content.shape)
    batch = call.batch(content=content.shape[:-1], previous=previous.shape[:-1])
    g = call.scalar("gate", gate, batch, 0.0, 1.0)
    return _ntm.interpolate(content, previous, g)


def shift(w: Array, s: Array) -> Array:
    r"""Rotate the weighting ``w`` by the shifts (-1, 0, +1), weighed by ``s``: circularly.

    .. math:: \tilde w[i] = s_{-1}\, w[i + 1] + s_0\, w[i] + s_{+1}\, w[i - 1]
              \pmod N

    A +1 shift moves the weight of cell ``i`` to cell ``i + 1`` (and of the last cell
    to the first).

    Parameters
    ----------
    w : array, shape (..., N)
        A weighting over the cells, values in [0, 1].
    s : array, shape (..., 3)
        The weights of the shifts ``(-1, 0, +1)``, in that order: a distribution.

    Returns
    -------
    array, shape (broadcast batch..., N)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> w = np.array([0.0, 1.0, 0.0, 0.0])
    >>> ntm.shift(w, np.array([0.0, 0.0, 1.0]))     # +1: cell 1 -> cell 2
    array([0., 0., 1., 0.])
    >>> ntm.shift(w, np.array([0.5, 0.5, 0.0]))     # half stays, half moves to cell 0
    array([0.5, 0.5, 0. , 0. ])
    """
    call = Call("ntm.shift", {"w": w, "s": s})
    return _shift(call, w, s)


def _shift(call: Call, w: Array, s: Array) -> Array:
    check_weights_1d(call, "w", w)
    check_shift_weights(call, s)
    call.batch(w=w.shape[:-1], shift=s.shape[:-1])
    return _ntm.shift(w, s, xp=call.xp)


def sharpen(w: Array, gamma: Array | float) -> Array:
    r"""Sharpen the weighting ``w``: ``w**gamma / sum(w**gamma)``.

    Parameters
    ----------
    w : array, shape (..., N)
        A weighting over the cells, values in [0, 1].
    gamma : float or array broadcastable to the batch shape (...)
        The exponent, ``gamma >= 1``. ``gamma = 1`` only renormalises.

    Returns
    -------
    array, shape (broadcast batch..., N)
        A distribution over the cells (all zeros if ``w`` is all zeros). It is computed
        from ``w / max(w)``, so a large ``gamma`` does not underflow to ``0 / 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> ntm.sharpen(np.array([0.2, 0.4, 0.4]), 2.0)
    array([0.11111111, 0.44444444, 0.44444444])
    >>> np.round(ntm.sharpen(np.array([0.1, 0.3, 0.6]), 1000.0), 6)
    array([0., 0., 1.])
    """
    func = "ntm.sharpen"
    check_scalar_type(func, "gamma", gamma)
    call = Call(func, {"w": w, "gamma": gamma})
    return _sharpen(call, w, gamma)


def _sharpen(call: Call, w: Array, gamma: Array | float) -> Array:
    check_weights_1d(call, "w", w)
    exponent = call.scalar("gamma", gamma, tuple(w.shape[:-1]), 1.0, INF)
    return _ntm.sharpen(w, exponent, xp=call.xp)


def address(
    memory: Array,
    key: Array,
    strength: Array | float,
    gate: Array | float,
    shift: Array,
    gamma: Array | float,
    previous: Array,
    *,
    eps: float = EPS,
) -> Array:
    """NTM addressing: content, interpolation with ``previous``, shift, sharpening.

    ``sharpen(shift(interpolate(content_address(memory, key, strength), previous,
    gate), shift), gamma)``, checked once.

    Parameters
    ----------
    memory : array, shape (..., N, W)
    key : array, shape (..., W)
    strength : float or array (...)
        Key strength ``>= 0`` (see :func:`content_address`).
    gate : float or array (...)
        Interpolation gate in [0, 1] (see :func:`interpolate`).
    shift : array, shape (..., 3)
        Weights of the shifts (-1, 0, +1) (see :func:`shift`).
    gamma : float or array (...)
        Sharpening exponent ``>= 1`` (see :func:`sharpen`).
    previous : array, shape (..., N)
        The head's weights at the previous step.
    eps : float, optional
        Norm floor of the cosine similarity. Default: ``1e-12``.

    Returns
    -------
    array, shape (broadcast batch..., N)
        The head's new weights.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> memory = np.eye(4)
    >>> previous = np.array([0.0, 1.0, 0.0, 0.0])
    >>> # ignore content (gate 0) and move one cell forward
    >>> ntm.address(memory, np.ones(4), 1.0, 0.0, np.array([0.0, 0.0, 1.0]), 1.0, previous)
    array([0., 0., 1., 0.])
    >>> # look up cell 3 by content, sharply
    >>> stay = np.array([0.0, 1.0, 0.0])
    >>> np.round(ntm.address(memory, memory[3], 50.0, 1.0, stay, 1.0, previous), 6)
    array([0., 0., 0., 1.])
    """
    func = "ntm.address"
    for name, value in (("strength", strength), ("gate", gate), ("gamma", gamma)):
        check_scalar_type(func, name, value)
    call = Call(
        func,
        {
            "memory": memory,
            "key": key,
            "strength": strength,
            "gate": gate,
            "shift": shift,
            "gamma": gamma,
            "previous": previous,
        },
    )
    check_memory(call, memory)
    call.array("key", key, 1, "(..., W)")
    call.axis("key", key, -1, memory.shape[-1], "W (cell width)", "memory", memory.shape)
    check_weighting(call, "previous", previous, memory, "memory")
    check_shift_weights(call, shift)
    batch = call.batch(
        memory=memory.shape[:-2],
        key=key.shape[:-1],
        previous=previous.shape[:-1],
        shift=shift.shape[:-1],
    )
    beta = call.scalar("strength", strength, batch, 0.0, INF)
    g = call.scalar("gate", gate, batch, 0.0, 1.0)
    exponent = call.scalar("gamma", gamma, batch, 1.0, INF)
    eps = _v.check_eps(func, eps)
    xp = call.xp
    content = _ntm.content_address(memory, key, beta, eps=eps, xp=xp)
    return _ntm.sharpen(
        _ntm.shift(_ntm.interpolate(content, previous, g), shift, xp=xp), exponent, xp=xp
    )


# --------------------------------------------------------------------- access


def read(memory: Array, w: Array) -> Array:
    """Read with the weighting ``w``: ``wᵀ M``, the weighted sum of the cells.

    Parameters
    ----------
    memory : array, shape (..., N, W)
    w : array, shape (..., N)
        Read weights, values in [0, 1].

    Returns
    -------
    array, shape (broadcast batch..., W)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> memory = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> ntm.read(memory, np.array([0.25, 0.75]))
    array([2.5, 3.5])
    """
    call = Call("ntm.read", {"memory": memory, "w": w})
    return _w.read(call, memory, w)


def write(memory: Array, w: Array, erase: Array, add: Array) -> Array:
    r"""Write with the weighting ``w``: erase, then add.

    .. math:: M' = M \odot (1 - w e^\top) + w a^\top

    Parameters
    ----------
    memory : array, shape (..., N, W)
    w : array, shape (..., N)
        Write weights, values in [0, 1].
    erase : array, shape (..., W)
        Erase vector, values in [0, 1]: cell ``n``'s entry ``j`` keeps the fraction
        ``1 - w[n] erase[j]``.
    add : array, shape (..., W)
        Add vector.

    Returns
    -------
    array, shape (broadcast batch..., N, W)
        The new memory; ``memory`` is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import ntm
    >>> memory = np.ones((3, 2))
    >>> ntm.write(memory, np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0]), np.array([5.0, 5.0]))
    array([[1. , 1. ],
           [5. , 6. ],
           [3. , 3.5]])
    """
    call = Call("ntm.write", {"memory": memory, "w": w, "erase": erase, "add": add})
    return _w.write(call, memory, w, erase, add)
