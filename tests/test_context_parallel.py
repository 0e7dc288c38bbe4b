"""Context-parallel causal attention equals unsharded attention (namcore.context_parallel).

Shards are simulated in one process (uneven lengths, every form of attention), then
run for real on 2 JAX host devices under ``jax.shard_map`` and on 2 torch processes
with gloo, each in a fresh interpreter.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import namcore
from namcore import context_parallel as cp

FORMS = {
    "plain": {},
    "write-gate": {"p_write": "token"},
    "decay": {"decay": "token"},
    "constant-decay": {"decay": 0.9},
    "erase": {"p_erase": "token"},
    "erase-decay-read": {"p_erase": "token", "decay": "token", "p_read": "token"},
}


def inputs(form: str, length: int = 11, seed: int = 0) -> tuple[tuple, dict]:
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, 2, length, 4)), rng.standard_normal((2, 2, length, 4))
    v = rng.standard_normal((2, 2, length, 3))
    options = {
        name: rng.uniform(0.5, 1.0, (2, 2, length)) if value == "token" else value
        for name, value in FORMS[form].items()
    }
    return (q, k, v), options


def shard(x, s):
    return x[..., s, :] if x.ndim == 4 else x[..., s]


def simulate(qkv, options, bounds, state=None):
    """Run each shard as a process would; its ``gather`` stacks every shard's value."""
    parts = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    local = []
    for s in parts:
        opts = {n: shard(o, s) if isinstance(o, np.ndarray) else o for n, o in options.items()}
        local.append(([shard(x, s) for x in qkv], opts))
    moves = [
        cp.transition(*arrays, **{n: o for n, o in opts.items() if n != "p_read"})
        for arrays, opts in local
    ]
    # what each shard sends: C (d_v, d_k), or C over A (d_v + d_k, d_k) with erase or decay
    sent = [c if a is None else np.concatenate([c, a], axis=-2) for a, c in moves]

    outputs, finals = [], []
    calls = []
    for i, (arrays, opts) in enumerate(local):

        def gather(x, i=i):
            calls.append(i)
            np.testing.assert_array_equal(x, sent[i])
            return np.stack(sent)

        y, final = cp.attention(
            *arrays, gather=gather, index=i, state=state, return_state=True, **opts
        )
        outputs.append(y)
        finals.append(final)
    assert calls == list(range(len(parts)))  # one collective per shard
    return np.concatenate(outputs, axis=-2), finals


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("bounds", [(0, 4, 7, 11), (0, 1, 11), (0, 11)], ids=["3-uneven", "2", "1"])
def test_sharded_equals_unsharded(form, bounds):
    qkv, options = inputs(form)
    expected, final = namcore.attention(*qkv, causal=True, return_state=True, **options)
    got, finals = simulate(qkv, options, bounds)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    for f in finals:  # every shard knows the memory after the last one
        np.testing.assert_allclose(f, final, rtol=1e-10, atol=1e-12)


def test_mask_and_initial_state_carry_across_shards():
    qkv, options = inputs("erase-decay-read", seed=3)
    mask = np.ones(qkv[0].shape[:-1], dtype=bool)
    mask[0, :, 2:6] = False  # a hole across a shard boundary
    state = np.random.default_rng(4).standard_normal((2, 2, 3, 4))
    options["mask"] = mask
    expected = namcore.attention(*qkv, causal=True, state=state, **options)
    got, _ = simulate(qkv, options, (0, 4, 7, 11), state=state)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_transition_is_the_identity_without_erase_or_decay():
    qkv, _ = inputs("plain")
    products, written = cp.transition(*qkv)
    assert products is None
    _, direct = namcore.attention(*qkv, causal=True, return_state=True)
    np.testing.assert_allclose(written, direct)


def run_fresh(folder, code: str, env: dict[str, str] | None = None) -> str:
    script = folder / "script.py"  # a file: torch's spawned workers re-import it
    script.write_text(textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_jax_shard_map_on_two_host_devices_equals_unsharded(tmp_path):
    pytest.importorskip("jax")
    out = run_fresh(
        tmp_path,
        """
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, namcore
        from jax.sharding import Mesh
        from namcore import context_parallel as cp
        assert len(jax.devices()) == 2
        mesh = Mesh(np.array(jax.devices()), ("seq",))
        rng = np.random.default_rng(0)
        q, k = (jnp.asarray(rng.standard_normal((2, 12, 4))) for _ in range(2))
        v = jnp.asarray(rng.standard_normal((2, 12, 3)))
        e, g = (jnp.asarray(rng.uniform(0.5, 1, (2, 12))) for _ in range(2))
        for kw in ({}, {"decay": g}, {"p_erase": e, "decay": g}, {"decay": 0.9}):
            want = namcore.attention(q, k, v, causal=True, **kw)
            run = jax.jit(lambda q, k, v: cp.jax_attention(q, k, v, mesh=mesh, axis="seq", **kw))
            got = run(q, k, v)
            assert len(got.sharding.device_set) == 2
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)
        loss = lambda q: cp.jax_attention(q, k, v, mesh=mesh, axis="seq", p_erase=e).sum()
        whole = lambda q: namcore.attention(q, k, v, causal=True, p_erase=e).sum()
        np.testing.assert_allclose(jax.grad(loss)(q), jax.grad(whole)(q), rtol=1e-9, atol=1e-12)
        print("ok")
        """,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
    )
    assert out.strip() == "ok"


def test_torch_two_processes_equal_unsharded(tmp_path):
    pytest.importorskip("torch")
    out = run_fresh(
        tmp_path,
        f"""
        import numpy as np, torch, torch.distributed as dist, torch.multiprocessing as mp
        import namcore
        from namcore import context_parallel as cp

        def worker(rank):
            dist.init_process_group("gloo", init_method="file://{tmp_path}/store", rank=rank,
                                    world_size=2)
            rng = np.random.default_rng(0)
            q, k = (torch.tensor(rng.standard_normal((2, 12, 4))) for _ in range(2))
            v = torch.tensor(rng.standard_normal((2, 12, 3)))
            e, g = (torch.tensor(rng.uniform(0.5, 1, (2, 12))) for _ in range(2))
            part = slice(6 * rank, 6 * rank + 6)
            for kw in ({{}}, {{"decay": g}}, {{"p_erase": e, "decay": g}}):
                whole = [x.clone().requires_grad_(True) for x in (q, k, v)]
                want = namcore.attention(*whole, causal=True, **kw)
                want.sum().backward()
                local = {{n: x[:, part] for n, x in kw.items()}}
                mine = [x[:, part].clone().requires_grad_(True) for x in (q, k, v)]
                got = cp.torch_attention(*mine, **local)
                torch.testing.assert_close(got, want[:, part], rtol=1e-10, atol=1e-12)
                got.sum().backward()  # the later ranks' losses reach this rank's k and v
                for x, w in zip(mine, whole):
                    torch.testing.assert_close(x.grad, w.grad[:, part], rtol=1e-9, atol=1e-12)
            dist.barrier()  # neither rank tears its end down while the other still talks
            dist.destroy_process_group()

        if __name__ == "__main__":
            mp.spawn(worker, nprocs=2)
            print("ok")
        """,
    )
    assert out.strip().endswith("ok")
