"""GPU paths: the CuPy-only example, the fused CuPy write, device placement, no host syncs.

Every test that needs a GPU skips with its reason on a machine without one (as CI).
The import test runs everywhere: the CuPy model package must import without torch
and jax even where CuPy cannot reach a GPU.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import namcore
from namcore import backends
from namcore._agnostic import memory as standard

ROOT = Path(__file__).resolve().parents[1]

# Run first in a child interpreter: importing torch or jax raises from then on.
BLOCK_FRAMEWORKS = textwrap.dedent("""
    import sys

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "jax", "jaxlib"):
                raise ImportError(f"{name} is blocked: this is a CuPy-only environment")
            return None

    sys.meta_path.insert(0, _Block())
""")


def _gpu_count(backend: str) -> int:
    try:
        if backend == "cupy":
            import cupy

            return int(cupy.cuda.runtime.getDeviceCount())
        if backend == "torch":
            import torch

            return torch.cuda.device_count()
        import jax

        return len(jax.devices("gpu"))
    except Exception:  # not installed, no driver, or no GPU platform
        return 0


def needs_gpu(backend: str, count: int = 1) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        _gpu_count(backend) < count, reason=f"needs {count} GPU(s) visible to {backend}"
    )


def _run_child(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_FRAMEWORKS + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _docs_example() -> str:
    text = (ROOT / "docs" / "gpu.md").read_text()
    match = re.search(r"<!-- cupy-only-example -->\s*```python\n(.+?)\n```", text, re.S)
    assert match, "docs/gpu.md has no code block after <!-- cupy-only-example -->"
    return match.group(1)


def test_cupy_model_package_imports_without_torch_or_jax():
    pytest.importorskip("cupy")
    out = _run_child(
        textwrap.dedent("""
        import namcore, namcore.models.cupy, namcore.models.numpy
        from namcore import backends
        assert backends.get("cupy").is_installed()
        assert not {"torch", "jax"} & set(sys.modules), sorted(sys.modules)
        print(sorted(namcore.models.cupy.__all__))
    """)
    )
    assert "LSAM" in out and "NAMTM" in out


def test_framework_blocker_really_blocks():
    # The isolation above is only meaningful if the blocker stops a real import.
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_FRAMEWORKS + "import torch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "CuPy-only environment" in result.stderr


@needs_gpu("cupy")
def test_cupy_only_example():
    out = _run_child(_docs_example())
    assert out.startswith("CuPy only:")


def _write_inputs(xp, dtype, shape_m=(3, 2, 48, 40), shape_k=(3, 2, 40), shape_v=(3, 2, 48)):
    rng = np.random.default_rng(7)
    cast = getattr(xp, dtype)
    return tuple(
        xp.asarray(rng.standard_normal(s)).astype(cast) for s in (shape_m, shape_k, shape_v)
    )


@needs_gpu("cupy")
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("probs", [(1.0, 0.0), (0.7, 0.3)])
def test_fused_cupy_write_equals_the_standard_path(dtype, probs):
    import array_api_compat.cupy as xp

    M, k, v = _write_inputs(xp, dtype)
    fast = backends.get("cupy").write(M, k, v, *probs, True, 1e-12, xp)
    reference = standard.write(M, k, v, *probs, normalize=True, eps=1e-12, xp=xp)
    assert fast.dtype == M.dtype and fast.shape == M.shape
    tol = {"float16": 2e-2, "float32": 1e-5, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(fast.get(), reference.get(), rtol=tol, atol=tol)


@needs_gpu("cupy")
def test_fused_cupy_write_broadcasts_and_falls_back_on_mixed_dtypes():
    import array_api_compat.cupy as xp

    M, k, v = _write_inputs(xp, "float32", shape_k=(40,), shape_v=(2, 48))
    fast = backends.get("cupy").write(M, k, v, 1.0, 0.5, True, 1e-12, xp)
    np.testing.assert_allclose(
        fast.get(),
        standard.write(M, k, v, 1.0, 0.5, normalize=True, eps=1e-12, xp=xp).get(),
        rtol=1e-5,
        atol=1e-5,
    )
    p = xp.asarray(np.full((3, 2), 0.5))  # float64 probabilities with float32 memory
    mixed = backends.get("cupy").write(M, k, v, p, p, True, 1e-12, xp)
    assert mixed.dtype == xp.float64  # type promotion, as on the standard path


@needs_gpu("cupy")
def test_cupy_results_stay_on_the_current_device_without_syncs():
    import cupy
    import cupyx

    M, k, v = _write_inputs(cupy, "float32")
    q = cupy.asarray(np.random.default_rng(1).standard_normal((3, 2, 256, 40)), dtype=cupy.float32)
    with cupyx.allow_synchronize(False):  # any device-to-host copy raises
        out = namcore.write(M, k, v, 0.9, 0.1)
        r = namcore.read(out, k)
        y = namcore.attention(q, q, q, causal=True)
    for a in (out, r, y):
        assert isinstance(a, cupy.ndarray) and a.device == cupy.cuda.Device()


@needs_gpu("torch")
def test_torch_cuda_stays_on_device_without_syncs():
    import torch

    device = f"cuda:{torch.cuda.device_count() - 1}"
    M = torch.randn(3, 2, 48, 40, device=device)
    k, v = torch.randn(3, 2, 40, device=device), torch.randn(3, 2, 48, device=device)
    q = torch.randn(3, 2, 256, 40, device=device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = namcore.write(M, k, v, 0.9, 0.1)
        r = namcore.read(out, k)
        y = namcore.attention(q, q, q, causal=True)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert {str(a.device) for a in (out, r, y)} == {device}
    with pytest.raises(ValueError, match="one device"):
        namcore.write(M, k.cpu(), v)


def test_mixed_devices_are_one_clear_error():
    torch = pytest.importorskip("torch")
    # The "meta" device needs no GPU and stands for any second device.
    M, k, v = torch.zeros(3, 4), torch.ones(4), torch.ones(3)
    with pytest.raises(
        ValueError,
        match=r"write: all arrays must be on one device, but "
        r"`M` on cpu, `k` on meta, `v` on cpu",
    ):
        namcore.write(M, k.to("meta"), v)
    with pytest.raises(ValueError, match="`q` on meta"):
        namcore.read(M, k.to("meta"))
    q = torch.ones(2, 5, 4)
    with pytest.raises(ValueError, match=r"attention: .*`v` on meta"):
        namcore.attention(q, q, q.to("meta"))
    # A 0-d CPU probability mixes with any device, as in PyTorch itself.
    out = namcore.write(M, k, v, torch.tensor(0.5))
    assert out.device.type == "cpu"


@needs_gpu("torch")
def test_torch_write_fast_path_equals_the_standard_path_on_cuda():
    import array_api_compat.torch as xp
    import torch

    M, k, v = (t.cuda() for t in _write_inputs(xp, "float32"))
    fast = backends.get("torch").write(M, k, v, 0.8, 0.2, True, 1e-12, xp)
    reference = standard.write(M, k, v, 0.8, 0.2, normalize=True, eps=1e-12, xp=xp)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


@needs_gpu("jax")
def test_jax_results_stay_on_the_input_device():
    import jax
    import jax.numpy as jnp

    device = jax.devices("gpu")[-1]
    M = jax.device_put(jnp.zeros((2, 16, 16)), device)
    k = jax.device_put(jnp.ones((2, 16)), device)
    out = jax.jit(namcore.write)(M, k, k)
    assert out.devices() == {device}
