r"""Differentiable Neural Computer memory management (Graves et al., Nature 2016).

The DNC keeps, next to its memory ``memory (..., N, W)``:

- a **usage** vector ``u (..., N)`` in [0, 1]: how much each cell is in use
  (:func:`usage`), from which dynamic memory **allocation** derives the weights of
  the least-used cells (:func:`allocation`);
- a **temporal link matrix** ``L (..., N, N)`` and a **precedence** weighting
  ``p (..., N)`` (:func:`link`): ``L[i, j]`` is how much cell ``i`` was written right
  after cell ``j``, so that reads can follow the order of writes, :func:`forward`
  (``L w``) and :func:`backward` (``Lᵀ w``).

Writes combine allocation and content weights (:func:`write_weighting`), then erase
and add (:func:`write`, the NTM write); reads mix the backward, content and forward
weights with the read modes (:func:`read_weighting`). Content addressing
(:func:`content_address`) and :func:`read` are those of :mod:`namcore.ntm`.

Leading axes are batch axes that broadcast together; :func:`usage` alone takes the
``R`` read heads as an explicit axis, ``free_gates (..., R)`` and
``read_weights (..., R, N)``. Every function validates, then calls the pure
array-API code in :mod:`namcore._agnostic.dnc`. See ``docs/memory-networks.md``.
"""

from __future__ import annotations

from namcore import _validation as _v
from namcore import _weightings as _w
from namcore._agnostic import dnc as _dnc
from namcore._agnostic.memory import EPS
from namcore._typing import Array
from namcore._weightings import Call, check_scalar_type, check_weights_1d

__all__ = [
    "ALLOCATION_EPS",
    "allocation",
    "backward",
    "content_address",
    "forward",
    "link",
    "read",
    "read_weighting",
    "usage",
    "write",
    "write_weighting",
]

#: Default floor of the usage inside :func:`allocation`: usage is mapped to
#: ``eps + (1 - eps) u`` before the products.
ALLOCATION_EPS = 1e-6


def usage(usage: Array, write_weights: Array, free_gates: Array, read_weights: Array) -> Array:
    r"""The new usage: written cells become used, freed cells that were read become free.

    .. math:: u' = (u + w - u \odot w) \odot \prod_{r=1}^{R} (1 - f_r\, w^r)

    with the previous step's write weights ``w`` and read weights ``w^r`` (the
    product is the memory retention vector :math:`\psi`).

    Parameters
    ----------
    usage : array, shape (..., N)
        The previous usage, values in [0, 1].
    write_weights : array, shape (..., N)
        The previous write weights, values in [0, 1].
    free_gates : array, shape (..., R)
        One free gate in [0, 1] per read head.
    read_weights : array, shape (..., R, N)
        The previous read weights of the ``R`` heads, values in [0, 1].

    Returns
    -------
    array, shape (broadcast batch..., N)
        Values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> u = np.array([0.0, 0.5, 1.0])
    >>> dnc.usage(u, np.array([1.0, 0.0, 0.0]), np.array([1.0]), np.array([[0.0, 0.0, 1.0]]))
    array([1. , 0.5, 0. ])
    """
    func = "dnc.usage"
    call = Call(
        func,
        {
            "usage": usage,
            "write_weights": write_weights,
            "free_gates": free_gates,
            "read_weights": read_weights,
        },
    )
    check_weights_1d(call, "usage", usage)
    check_weights_1d(call, "write_weights", write_weights)
    call.axis(
        "write_weights", write_weights, -1, usage.shape[-1], "N (cells)", "usage", usage.shape
    )
    call.array("free_gates", free_gates, 1, "(..., R)")
    call.values_in("free_gates", free_gates, 0.0, 1.0)
    call.array("read_weights", read_weights, 2, "(..., R, N)")
    call.axis("read_weights", read_weights, -1, usage.shape[-1], "N (cells)", "usage", usage.shape)
    call.axis(
        "read_weights",
        read_weights,
        -2,
        free_gates.shape[-1],
        "R (read heads)",
        "free_gates",
        free_gates.shape,
    )
    call.values_in("read_weights", read_weights, 0.0, 1.0)
    call.batch(
        usage=usage.shape[:-1],
        write_weights=write_weights.shape[:-1],
        free_gates=free_gates.shape[:-1],
        read_weights=read_weights.shape[:-2],
    )
    return _dnc.usage(usage, write_weights, free_gates, read_weights, xp=call.xp)


def allocation(usage: Array, *, eps: float = ALLOCATION_EPS) -> Array:
    r"""Allocation weights: the free cells, least used first.

    With :math:`\phi` the cells sorted by ascending usage (ties in index order),

    .. math:: a[\phi_j] = (1 - \hat u[\phi_j]) \prod_{i < j} \hat u[\phi_i],
              \qquad \hat u = \epsilon + (1 - \epsilon)\, u

    The floor :math:`\epsilon` keeps the logarithms of the cumulative product finite
    (it runs in log space, so long products underflow to 0 gracefully). The result is
    differentiable with respect to ``usage`` (the sort order itself is not).

    Parameters
    ----------
    usage : array, shape (..., N)
        Usage, values in [0, 1].
    eps : float, optional
        The usage floor. Default: ``1e-6``.

    Returns
    -------
    array, shape (..., N)
        Nonnegative weights summing to ``1 - prod(û) <= 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> np.round(dnc.allocation(np.array([0.9, 0.0, 0.5])), 4)   # cell 1 is free
    array([0., 1., 0.])
    >>> np.round(dnc.allocation(np.array([1.0, 0.5, 0.5])), 4)   # ties: lower index first
    array([0.  , 0.5 , 0.25])
    """
    func = "dnc.allocation"
    call = Call(func, {"usage": usage})
    check_weights_1d(call, "usage", usage)
    eps = _v.check_eps(func, eps)
    if eps >= 1:
        raise ValueError(f"{func}: `eps` must be below 1, got {eps!r}")
    return _dnc.allocation(usage, eps=eps, xp=call.xp)


def write_weighting(
    allocation: Array,
    content: Array,
    allocation_gate: Array | float,
    write_gate: Array | float,
) -> Array:
    r"""The write weights: ``g_w (g_a a + (1 - g_a) c)``.

    Parameters
    ----------
    allocation : array, shape (..., N)
        Allocation weights (:func:`allocation`).
    content : array, shape (..., N)
        Content weights of the write key (:func:`content_address`).
    allocation_gate : float or array (...)
        ``g_a`` in [0, 1]: 1 writes to free cells, 0 to the cells found by content.
    write_gate : float or array (...)
        ``g_w`` in [0, 1]: 0 writes nothing.

    Returns
    -------
    array, shape (broadcast batch..., N)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> dnc.write_weighting(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.75, 0.5)
    array([0.375, 0.125])
    """
    func = "dnc.write_weighting"
    check_scalar_type(func, "allocation_gate", allocation_gate)
    check_scalar_type(func, "write_gate", write_gate)
    call = Call(
        func,
        {
            "allocation": allocation,
            "content": content,
            "allocation_gate": allocation_gate,
            "write_gate": write_gate,
        },
    )
    check_weights_1d(call, "allocation", allocation)
    check_weights_1d(call, "content", content)
    call.axis(
        "content", content, -1, allocation.shape[-1], "N (cells)", "allocation", allocation.shape
    )
    batch = call.batch(allocation=allocation.shape[:-1], content=content.shape[:-1])
    ga = call.scalar("allocation_gate", allocation_gate, batch, 0.0, 1.0)
    gw = call.scalar("write_gate", write_gate, batch, 0.0, 1.0)
    return _dnc.write_weighting(allocation, content, ga, gw)


def link(link: Array, precedence: Array, write_weights: Array) -> tuple[Array, Array]:
    r"""Update the temporal link matrix and the precedence weighting after a write.

    .. math:: L'[i, j] = (1 - w_i - w_j)\, L[i, j] + w_i\, p_j \quad (i \ne j),
              \qquad L'[i, i] = 0, \qquad p' = \Big(1 - \sum_i w_i\Big)\, p + w

    ``L[i, j]`` measures how much cell ``i`` was written right after cell ``j``; ``p``
    how much each cell was the last one written. The new link uses the *previous*
    precedence.

    Parameters
    ----------
    link : array, shape (..., N, N)
        The previous link matrix (zero diagonal, values in [0, 1]).
    precedence : array, shape (..., N)
        The previous precedence weighting, values in [0, 1].
    write_weights : array, shape (..., N)
        This step's write weights, values in [0, 1] summing to at most 1.

    Returns
    -------
    (array, array)
        The new link ``(broadcast batch..., N, N)`` and precedence
        ``(broadcast batch..., N)``.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> L, p = np.zeros((3, 3)), np.zeros(3)
    >>> L, p = dnc.link(L, p, np.array([1.0, 0.0, 0.0]))  # write cell 0
    >>> L, p = dnc.link(L, p, np.array([0.0, 0.0, 1.0]))  # then cell 2
    >>> L                       # cell 2 was written after cell 0
    array([[0., 0., 0.],
           [0., 0., 0.],
           [1., 0., 0.]])
    >>> p
    array([0., 0., 1.])
    """
    func = "dnc.link"
    call = Call(func, {"link": link, "precedence": precedence, "write_weights": write_weights})
    _link_matrix(call, link)
    check_weights_1d(call, "precedence", precedence)
    call.axis("precedence", precedence, -1, link.shape[-1], "N (cells)", "link", link.shape)
    check_weights_1d(call, "write_weights", write_weights)
    call.axis("write_weights", write_weights, -1, link.shape[-1], "N (cells)", "link", link.shape)
    call.batch(
        link=link.shape[:-2],
        precedence=precedence.shape[:-1],
        write_weights=write_weights.shape[:-1],
    )
    return _dnc.link(link, precedence, write_weights, xp=call.xp)


def _link_matrix(call: Call, link: Array) -> None:
    call.array("link", link, 2, "(..., N, N)")
    call.axis("link", link, -2, link.shape[-1], "N (rows)", "link", link.shape)
    call.values_in("link", link, 0.0, 1.0)


def _follow(func: str, link: Array, read_weights: Array) -> Call:
    call = Call(func, {"link": link, "read_weights": read_weights})
    _link_matrix(call, link)
    check_weights_1d(call, "read_weights", read_weights)
    call.axis("read_weights", read_weights, -1, link.shape[-1], "N (cells)", "link", link.shape)
    call.batch(link=link.shape[:-2], read_weights=read_weights.shape[:-1])
    return call


def forward(link: Array, read_weights: Array) -> Array:
    """Forward weights ``L w``: the cells written right after those ``w`` reads.

    Parameters
    ----------
    link : array, shape (..., N, N)
    read_weights : array, shape (..., N)
        The previous read weights of one head.

    Returns
    -------
    array, shape (broadcast batch..., N)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> L = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # 0 then 2
    >>> dnc.forward(L, np.array([1.0, 0.0, 0.0]))
    array([0., 0., 1.])
    """
    call = _follow("dnc.forward", link, read_weights)
    return _dnc.forward(link, read_weights, xp=call.xp)


def backward(link: Array, read_weights: Array) -> Array:
    """Backward weights ``Lᵀ w``: the cells written right before those ``w`` reads.

    Parameters
    ----------
    link : array, shape (..., N, N)
    read_weights : array, shape (..., N)
        The previous read weights of one head.

    Returns
    -------
    array, shape (broadcast batch..., N)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> L = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # 0 then 2
    >>> dnc.backward(L, np.array([0.0, 0.0, 1.0]))
    array([1., 0., 0.])
    """
    call = _follow("dnc.backward", link, read_weights)
    return _dnc.backward(link, read_weights, xp=call.xp)


def read_weighting(modes: Array, backward: Array, content: Array, forward: Array) -> Array:
    r"""The read weights: ``pi[0] b + pi[1] c + pi[2] f``.

    Parameters
    ----------
    modes : array, shape (..., 3)
        The read modes ``(backward, content, forward)``, a distribution.
    backward, content, forward : array, shape (..., N)
        Backward weights (:func:`backward`), content weights
        (:func:`content_address`) and forward weights (:func:`forward`).

    Returns
    -------
    array, shape (broadcast batch..., N)

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> b, c, f = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    >>> dnc.read_weighting(np.array([0.25, 0.25, 0.5]), b, c, f)
    array([0.25, 0.25, 0.5 ])
    """
    func = "dnc.read_weighting"
    call = Call(
        func, {"modes": modes, "backward": backward, "content": content, "forward": forward}
    )
    call.array("modes", modes, 1, "(..., 3)")
    if modes.shape[-1] is not None and modes.shape[-1] != 3:
        raise ValueError(
            f"{func}: `modes` must have 3 entries on its last axis (backward, content, "
            f"forward), got shape {tuple(modes.shape)}"
        )
    call.values_in("modes", modes, 0.0, 1.0)
    for name, x in (("backward", backward), ("content", content), ("forward", forward)):
        check_weights_1d(call, name, x)
        call.axis(name, x, -1, content.shape[-1], "N (cells)", "content", content.shape)
    call.batch(
        modes=modes.shape[:-1],
        backward=backward.shape[:-1],
        content=content.shape[:-1],
        forward=forward.shape[:-1],
    )
    return _dnc.read_weighting(modes, backward, content, forward)


def content_address(
    memory: Array, key: Array, strength: Array | float = 1.0, *, eps: float = EPS
) -> Array:
    """Content weights, as :func:`namcore.ntm.content_address`.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> np.round(dnc.content_address(np.eye(3), np.array([0.0, 0.0, 1.0]), 100.0), 6)
    array([0., 0., 1.])
    """
    func = "dnc.content_address"
    check_scalar_type(func, "strength", strength)
    call = Call(func, {"memory": memory, "key": key, "strength": strength})
    return _w.content(call, memory, key, strength, eps)


def read(memory: Array, w: Array) -> Array:
    """Read ``wᵀ M``, as :func:`namcore.ntm.read`.

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> dnc.read(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.0, 1.0]))
    array([3., 4.])
    """
    call = Call("dnc.read", {"memory": memory, "w": w})
    return _w.read(call, memory, w)


def write(memory: Array, w: Array, erase: Array, add: Array) -> Array:
    r"""The DNC write, erase then add, as :func:`namcore.ntm.write`.

    .. math:: M' = M \odot (1 - w e^\top) + w a^\top

    Examples
    --------
    >>> import numpy as np
    >>> from namcore import dnc
    >>> dnc.write(np.zeros((2, 2)), np.array([1.0, 0.0]), np.ones(2), np.array([3.0, 4.0]))
    array([[3., 4.],
           [0., 0.]])
    """
    call = Call("dnc.write", {"memory": memory, "w": w, "erase": erase, "add": add})
    return _w.write(call, memory, w, erase, add)
