r"""Differentiable Neural Computer (Graves et al., Nature 2016): an LSTM controller, R read heads.

One step, with the memory ``M (N, W)``, usage ``u``, link ``Lk (N, N)``, precedence
``p``, the previous write weights ``w_w`` and read weights ``w_r (R, N)`` and reads
``r (R, W)``:

.. math::

    h_t = \mathrm{LSTM}([x_t : r_{t-1}]), \qquad \xi_t = W_\xi h_t + b_\xi

    u_t = (u + w_w - u \odot w_w) \odot \textstyle\prod_i (1 - f_i w_r^i)

    w_w' = g_w \left(g_a\, \mathrm{alloc}(u_t) + (1 - g_a)\, C(M, k_w, \beta_w)\right),
    \qquad M' = M \odot (1 - w_w' e^\top) + w_w' v^\top

    Lk', p' = \mathrm{link}(Lk, p, w_w'), \qquad
    w_r^{i\prime} = \pi_i^1\, Lk'^\top w_r^i + \pi_i^2\, C(M', k_r^i, \beta_r^i)
                  + \pi_i^3\, Lk' w_r^i

    r^i_t = w_r^{i\prime\top} M', \qquad y_t = W_y [h_t : r_t] + b_y

with the functions of :mod:`namcore.dnc`. The interface vector :math:`\xi` holds, in
order: read keys, read strengths (``1 + softplus``), write key, write strength,
erase (sigmoid), write vector, free gates (sigmoid), allocation and write gates
(sigmoid) and the read modes (a softmax over backward, content, forward per head).
Every state starts at zero. The model is causal and predicts at every position.
"""

from __future__ import annotations

from typing import Any

from namcore._agnostic import dnc as _dnc
from namcore._agnostic import ntm as _ntm
from namcore._agnostic.memory import EPS
from namcore._typing import Array, Namespace
from namcore.dnc import ALLOCATION_EPS

from . import cells
from . import layers as L
from . import spec as P
from .classic_config import DNCConfig

__all__ = ["forward", "interface", "memory_step", "specs"]


def specs(config: DNCConfig) -> dict[str, P.Spec]:
    """Parameter names, shapes and initialisers of a DNC."""
    d, reads = config.d_model, config.n_reads * config.memory_width
    out = P.embedding("embed", config.vocab_size, d)
    out |= P.recurrent("controller", "lstm", d + reads, d)
    out |= P.dense("interface", d, config.interface_size)
    out |= P.dense("head.out", d + reads, config.output_size)
    return out


def interface(xi: Array, config: DNCConfig, xp: Namespace) -> dict[str, Any]:
    """Split the interface vector ``xi (B, interface_size)`` into named, squashed parts."""
    r, w = config.n_reads, config.memory_width
    sizes = {
        "read_keys": r * w,
        "read_strengths": r,
        "write_key": w,
        "write_strength": 1,
        "erase": w,
        "write_vector": w,
        "free_gates": r,
        "allocation_gate": 1,
        "write_gate": 1,
        "read_modes": 3 * r,
    }
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name] = xi[:, start : start + size]
        start += size
    return {
        "read_keys": xp.reshape(parts["read_keys"], (-1, r, w)),
        "read_strengths": 1.0 + L.softplus(parts["read_strengths"], xp),
        "write_key": parts["write_key"],
        "write_strength": 1.0 + L.softplus(parts["write_strength"][:, 0], xp),
        "erase": L.sigmoid(parts["erase"], xp),
        "write_vector": parts["write_vector"],
        "free_gates": L.sigmoid(parts["free_gates"], xp),
        "allocation_gate": L.sigmoid(parts["allocation_gate"][:, 0], xp),
        "write_gate": L.sigmoid(parts["write_gate"][:, 0], xp),
        "read_modes": L.softmax(xp.reshape(parts["read_modes"], (-1, r, 3)), xp),
    }


def memory_step(state: tuple[Any, ...], io: dict[str, Any], xp: Namespace) -> tuple[Any, ...]:
    """One memory update: ``(memory, usage, link, precedence, w_w, w_r)`` → new state and reads.

    Returns the new ``(memory, usage, link, precedence, write_weights, read_weights)``
    and the reads ``(B, R, W)``.
    """
    memory, usage, link, precedence, w_w, w_r = state
    usage = _dnc.usage(usage, w_w, io["free_gates"], w_r, xp=xp)
    content = _ntm.content_address(memory, io["write_key"], io["write_strength"], eps=EPS, xp=xp)
    allocation = _dnc.allocation(usage, eps=ALLOCATION_EPS, xp=xp)
    w_w = _dnc.write_weighting(allocation, content, io["allocation_gate"], io["write_gate"])
    memory = _ntm.write(memory, w_w, io["erase"], io["write_vector"])
    link, precedence = _dnc.link(link, precedence, w_w, xp=xp)
    heads_link = link[:, None, :, :]
    read_content = _ntm.content_address(
        memory[:, None, :, :], io["read_keys"], io["read_strengths"], eps=EPS, xp=xp
    )
    w_r = _dnc.read_weighting(
        io["read_modes"],
        _dnc.backward(heads_link, w_r, xp=xp),
        read_content,
        _dnc.forward(heads_link, w_r, xp=xp),
    )
    reads = xp.matmul(w_r, memory)  # (B, R, N) @ (B, N, W)
    return (memory, usage, link, precedence, w_w, w_r), reads


def forward(params: L.Params, tokens: Array, mask: Array = None, *, config: DNCConfig) -> Any:
    """Logits ``(B, L, output_size)`` of a DNC for integer ``tokens`` (B, L).

    Padded positions (``mask`` False) leave every state unchanged.
    """
    ctx, mask = L.context(params, tokens, mask, "DNC")
    xp = ctx.xp
    n, w, r = config.memory_size, config.memory_width, config.n_reads
    x = L.embed(params, "embed", tokens, xp)
    memory = (
        L.batch_zeros(ctx, x, (n, w)),  # memory
        L.batch_zeros(ctx, x, (n,)),  # usage
        L.batch_zeros(ctx, x, (n, n)),  # link
        L.batch_zeros(ctx, x, (n,)),  # precedence
        L.batch_zeros(ctx, x, (n,)),  # write weights
        L.batch_zeros(ctx, x, (r, n)),  # read weights
    )

    def access(h, state):
        io = interface(L.dense(params, "interface", h, xp), config, xp)
        state, reads = memory_step(state, io, xp)
        return state, xp.reshape(reads, (-1, r * w))

    initial_reads = L.batch_zeros(ctx, x, (r * w,))
    return cells.controller_scan(params, x, mask, ctx, memory, initial_reads, access)
