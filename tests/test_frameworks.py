"""The primitives inside torch (autograd, compile, vmap) and JAX (jit, grad, vmap)."""

from __future__ import annotations

import numpy as np
import pytest

import namcore
from namcore.testing import numerical_gradient


def _inputs(rng):
    return (
        rng.normal(size=(3, 4, 5)),
        rng.normal(size=(3, 5)),
        rng.normal(size=(3, 4)),
        rng.uniform(0.1, 0.9, size=3),
    )


def _np_loss(M, k, v, p):
    out = namcore.write(M, k, v, p, p)
    return float(np.sum(namcore.read(out, k) ** 2) + np.sum(out))


def _assert_finite_differences(arrays, grads):
    """Each gradient equals the central difference of the NumPy loss in that argument."""
    for i, (a, grad) in enumerate(zip(arrays, grads, strict=True)):

        def f(x, i=i):
            args = list(arrays)
            args[i] = x
            return _np_loss(*args)

        np.testing.assert_allclose(grad, numerical_gradient(f, a), rtol=1e-5, atol=1e-7)


class TestTorch:
    torch = pytest.importorskip("torch")

    def _loss(self, M, k, v, p):
        out = namcore.write(M, k, v, p, p)
        return (namcore.read(out, k) ** 2).sum() + out.sum()

    def test_autograd_matches_finite_differences(self):
        torch = self.torch
        rng = np.random.default_rng(0)
        arrays = _inputs(rng)
        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        self._loss(*tensors).backward()
        _assert_finite_differences(arrays, [t.grad.numpy() for t in tensors])

    def test_compile_fullgraph(self):
        torch = self.torch
        rng = np.random.default_rng(1)
        tensors = [torch.tensor(a, dtype=torch.float32) for a in _inputs(rng)]
        # aot_eager traces with Dynamo and AOTAutograd (graph breaks would raise) without
        # paying for C++ code generation on CI.
        compiled = torch.compile(self._loss, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(*tensors), self._loss(*tensors))

    def test_func_vmap(self):
        torch = self.torch
        rng = np.random.default_rng(2)
        M, k, v, _ = (torch.tensor(a) for a in _inputs(rng))
        out = torch.func.vmap(lambda m, kk, vv: namcore.write(m, kk, vv, 0.5, 0.5))(M, k, v)
        torch.testing.assert_close(out, namcore.write(M, k, v, 0.5, 0.5))


class TestJAX:
    jax = pytest.importorskip("jax")

    def _loss(self, M, k, v, p):
        jnp = self.jax.numpy
        out = namcore.write(M, k, v, p, p)
        return jnp.sum(namcore.read(out, k) ** 2) + jnp.sum(out)

    def test_grad_matches_finite_differences(self):
        jax = self.jax
        jax.config.update("jax_enable_x64", True)
        rng = np.random.default_rng(0)
        arrays = _inputs(rng)
        grads = jax.grad(self._loss, argnums=(0, 1, 2, 3))(*(jax.numpy.asarray(a) for a in arrays))
        _assert_finite_differences(arrays, [np.asarray(g) for g in grads])

    def test_jit_matches_eager(self):
        jax = self.jax
        rng = np.random.default_rng(1)
        args = [jax.numpy.asarray(a, dtype=jax.numpy.float32) for a in _inputs(rng)]
        np.testing.assert_allclose(jax.jit(self._loss)(*args), self._loss(*args), rtol=1e-5)

    def test_vmap_over_memories(self):
        jax = self.jax
        rng = np.random.default_rng(2)
        M, k, v, p = (jax.numpy.asarray(a) for a in _inputs(rng))
        out = jax.vmap(lambda m, kk, vv, pp: namcore.write(m, kk, vv, pp, pp))(M, k, v, p)
        np.testing.assert_allclose(out, namcore.write(M, k, v, p, p), rtol=1e-6)

    def test_gradient_at_zero_key_is_finite(self):
        jax = self.jax
        jnp = jax.numpy
        g = jax.grad(lambda k: jnp.sum(namcore.unit(k)))(jnp.zeros(4))
        assert np.all(np.isfinite(np.asarray(g)))
