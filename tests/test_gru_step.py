"""The GRU step (``models/gru_step.py``): its hand-derived backward and parameter gradients."""

from __future__ import annotations

import numpy as np
import pytest

from namcore import backends
from namcore.models import gru_step
from namcore.models import layers as L

HIDDEN, BATCH, LENGTH = 3, 4, 5


@pytest.mark.parametrize("lead", [(), (2,)], ids=["one-direction", "two-directions"])
def test_gru_backward_and_param_grads_equal_torch_autograd(lead):
    """Over a few steps (one position padded), float64: the input, state and
    parameter gradients of the hand-derived backward against autograd of the forward."""
    torch = pytest.importorskip("torch")
    xp = backends.get("torch").namespace()
    ctx = L.Context(xp, backends.get("torch"), torch.float64, "cpu")
    rng = np.random.default_rng(5)

    def leaf(*shape):
        return torch.from_numpy(rng.normal(size=shape)).requires_grad_()

    w_h = leaf(*lead, HIDDEN, 3 * HIDDEN)
    b_hn = leaf(*lead, 1, HIDDEN) if lead else leaf(HIDDEN)
    h0 = leaf(*lead, BATCH, HIDDEN)
    gs = leaf(LENGTH, *lead, BATCH, 3 * HIDDEN)
    mask = torch.ones((LENGTH, *lead, BATCH), dtype=torch.bool)
    mask[3, ..., 1] = False
    g_ys = torch.from_numpy(rng.normal(size=(LENGTH, *lead, BATCH, HIDDEN)))
    g_final = torch.from_numpy(rng.normal(size=h0.shape))

    step = gru_step.make(ctx, HIDDEN, lead)
    params, carry, ys, steps = (w_h, b_hn), (h0,), [], []
    for t in range(LENGTH):
        _, carry, (y,), _, kept = step.forward(params, (), carry, (gs[t], mask[t]))
        ys.append(y)
        steps.append(kept)
    leaves = (w_h, b_hn, h0, gs)
    expected = torch.autograd.grad((*carry, *ys), leaves, (g_final, *g_ys))

    with torch.no_grad():
        g_h, g_inputs = g_final, []
        for t in reversed(range(LENGTH)):
            g_params, g_memory, (g_h,), (g_g, g_mask) = step.backward(
                params, (gs[t], mask[t]), (), (), steps[t], (), (g_h,), (g_ys[t],)
            )
            assert g_params is None and g_memory == () and g_mask is None
            g_inputs.insert(0, g_g)
        g_inputs = torch.stack(g_inputs)
        residuals = tuple(torch.stack(column) for column in zip(*steps, strict=True))
        g_w, g_b = step.param_grads(params, (gs, mask), residuals, (g_inputs, None))
    got = (g_w, g_b, g_h, g_inputs)
    for name, mine, want in zip(("w_h", "b_hn", "h0", "g"), got, expected, strict=True):
        torch.testing.assert_close(mine, want, rtol=1e-12, atol=1e-12, msg=name)
