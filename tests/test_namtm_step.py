"""NAM-TM's tape step (``models/namtm_step.py``): its hand-derived backward and its forward."""

from __future__ import annotations

import numpy as np
import pytest

from namcore import backends
from namcore.models import layers as L
from namcore.models import namtm, namtm_step

TAPES, CELL, N, BATCH = 2, 3, 5, 3


def _case(xp, jump, read=True):
    """Random inputs of one step: a padded position, and a zero head, key and query.

    Without ``read``, the fields and the heads leave out the read head's.
    """
    rng = np.random.default_rng(11)
    n_act = 4 if jump else 3
    widths = [CELL, n_act, n_act, 1, 1, 1] + ([CELL] * 3 if jump else [])
    if not read:
        keep = [
            n not in ("act_r", "p_r", "q_r") for n in namtm_step.field_names(read=True, jump=jump)
        ]
        widths = [w for w, k in zip(widths, keep, strict=True) if k]
    packed = rng.normal(size=(BATCH, TAPES, sum(widths)))
    packed[0, :, sum(widths[:6]) :] = 0.0  # key and queries of batch 0 at the norm's floor
    memory = [rng.normal(size=(BATCH, TAPES, CELL, N))]
    if jump:
        memory.append(rng.normal(size=(BATCH, TAPES, N, CELL)))
    heads = [rng.normal(size=(BATCH, TAPES, N)) for _ in range(2)]
    heads[1][0] = 0.0  # batch 0's write head at the floor
    heads = heads if read else heads[1:]
    grads = dict(
        memory=[rng.normal(size=m.shape) for m in memory],
        heads=[rng.normal(size=h.shape) for h in heads],
        y=rng.normal(size=(BATCH, TAPES, CELL)),
    )
    mask = np.array([True, False, True])
    as_xp = lambda arrays: [xp.asarray(a) for a in arrays]  # noqa: E731
    return (
        widths,
        xp.asarray(packed),
        as_xp(memory),
        as_xp(heads),
        {k: as_xp(v) if isinstance(v, list) else xp.asarray(v) for k, v in grads.items()},
        xp.asarray(mask),
    )


@pytest.mark.parametrize("read", [True, False], ids=["read", "write-only"])
@pytest.mark.parametrize("normalize_heads", [True, False], ids=["unit-heads", "raw-heads"])
@pytest.mark.parametrize("jump", [True, False], ids=["jump", "no-jump"])
def test_namtm_step_backward_equals_torch_autograd(jump, normalize_heads, read):
    """The hand-derived backward of one step against autograd of its forward, float64."""
    torch = pytest.importorskip("torch")
    xp = backends.get("torch").namespace()
    widths, packed, memory, heads, g, mask = _case(xp, jump, read)
    ctx = L.Context(xp, backends.get("torch"), torch.float64, "cpu")
    step = namtm_step.make(ctx, widths, normalize_heads, read=read)
    leaves = [a.requires_grad_() for a in (*memory, *heads, packed)]
    new_memory, new_heads, ys, _, kept = step.forward(
        (), tuple(memory), tuple(heads), (packed, mask)
    )
    assert len(ys) == int(read)
    g_ys = (g["y"],) if read else ()
    expected = torch.autograd.grad(
        (*new_memory, *new_heads, *ys), leaves, (*g["memory"], *g["heads"], *g_ys)
    )
    with torch.no_grad():
        g_params, g_memory, g_heads, (g_packed, g_mask) = step.backward(
            (),
            (packed, mask),
            tuple(memory),
            tuple(new_memory),
            kept,
            tuple(g["memory"]),
            tuple(g["heads"]),
            g_ys,
        )
    assert g_params == () and g_mask is None
    names = [*("TJ"[: len(memory)]), *(["H_read"] if read else []), "H_write", "packed"]
    for got, want, name in zip((*g_memory, *g_heads, g_packed), expected, names, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)


def test_tape_step_is_the_manual_steps_forward():
    """The public ``tape_step`` and the scan's packed step compute the same step."""
    xp = backends.get("numpy").namespace()
    widths, packed, memory, heads, _, mask = _case(xp, jump=True)
    ctx = L.Context(xp, backends.get("numpy"), np.float64, "cpu")
    fields = [packed[..., sum(widths[:i]) : sum(widths[: i + 1])] for i in range(len(widths))]
    (T, J, H_r, H_w), r = namtm.tape_step(
        ctx,
        (*memory, *heads),
        value=fields[0],
        act_read=fields[1],
        act_write=fields[2],
        p_read=fields[3][..., 0],
        p_write=fields[4][..., 0],
        p_erase=fields[5][..., 0],
        key=fields[6],
        query_read=fields[7],
        query_write=fields[8],
        normalize_heads=True,
    )
    step = namtm_step.make(ctx, widths, normalize_heads=True)
    (T2, J2), (H_r2, H_w2), (r2,), _ = step((), tuple(memory), tuple(heads), (packed, mask))
    for a, b in [(T, T2), (J, J2), (r, r2)]:
        np.testing.assert_array_equal(a, b)
    # the step keeps the heads at a padded position; tape_step has no mask
    np.testing.assert_array_equal(H_r2[1], heads[0][1])
    np.testing.assert_array_equal(H_r2[[0, 2]], H_r[[0, 2]])
    np.testing.assert_array_equal(H_w2[[0, 2]], H_w[[0, 2]])


@pytest.mark.parametrize("jump", [True, False], ids=["jump", "no-jump"])
def test_write_only_step_moves_the_tapes_and_write_head_as_the_full_step(jump):
    """A layer whose reads nothing uses skips the read head; what it keeps is unchanged."""
    xp = backends.get("numpy").namespace()
    ctx = L.Context(xp, backends.get("numpy"), np.float64, "cpu")
    widths, packed, memory, heads, _, mask = _case(xp, jump)
    full = namtm_step.make(ctx, widths, normalize_heads=True)
    memory_full, (_, H_w_full), (read,), writes_full = full(
        (), tuple(memory), tuple(heads), (packed, mask)
    )
    names = namtm_step.field_names(read=True, jump=jump)
    bounds = np.cumsum([0, *widths])
    kept = [
        packed[..., bounds[i] : bounds[i + 1]]
        for i, n in enumerate(names)
        if n in namtm_step.field_names(read=False, jump=jump)
    ]
    write_only = namtm_step.make(ctx, [int(k.shape[-1]) for k in kept], True, read=False)
    memory_w, (H_w,), ys, writes_w = write_only(
        (), tuple(memory), (heads[1],), (np.concatenate(kept, axis=-1), mask)
    )
    assert ys == () and read.shape == (BATCH, TAPES, CELL)
    for a, b in zip((*memory_full, H_w_full), (*memory_w, H_w), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(writes_full, writes_w, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_make_names_the_fields_it_expects():
    ctx = L.Context(backends.get("numpy").namespace(), backends.get("numpy"), np.float64, "cpu")
    with pytest.raises(ValueError, match=r"widths has 5 fields; with read=False a step takes 4"):
        namtm_step.make(ctx, [3, 4, 1, 1, 3], True, read=False)
