"""Dask: chunked primitives and attention, a two-worker cluster, and namcore eval on Dask."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import namcore  # noqa: E402
from namcore import backends  # noqa: E402
from namcore.backends._base import Backend  # noqa: E402


def _never_compute(*args, **kwargs):
    raise AssertionError("namcore computed a Dask graph while building it")


@pytest.fixture
def lazy_only():
    """Any compute inside the block fails: namcore must only build graphs."""
    with dask.config.set(scheduler=_never_compute):
        yield


def chunked(a: np.ndarray, chunks: tuple) -> da.Array:
    return da.from_array(a, chunks=chunks)


def assert_blocks_equal(result: da.Array, expected: np.ndarray, rtol: float = 1e-10) -> None:
    """Compare ``result`` with ``expected`` block by block (each block computed alone)."""
    assert result.shape == expected.shape
    for index in np.ndindex(*result.numblocks):
        block = result.blocks[index]
        where = tuple(
            slice(sum(c[:i]), sum(c[: i + 1])) for c, i in zip(result.chunks, index, strict=True)
        )
        np.testing.assert_allclose(block.compute(), expected[where], rtol=rtol, atol=1e-12)


@pytest.fixture
def qkv():
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((4, 3, 40, 6)) for _ in range(3))


def test_write_read_chunked_along_batch_and_heads(lazy_only):
    rng = np.random.default_rng(1)
    M, k, v = (
        rng.standard_normal((6, 4, 5, 3)),
        rng.standard_normal((6, 4, 3)),
        rng.standard_normal((6, 4, 5)),
    )
    p = rng.uniform(size=(6, 4))
    chunks = ((2, 2, 2), (1, 3))
    got = namcore.write(
        chunked(M, (*chunks, 5, 3)),
        chunked(k, (*chunks, 3)),
        chunked(v, (*chunks, 5)),
        chunked(p, chunks),
        chunked(p, chunks),
    )
    read = namcore.read(got, chunked(k, (*chunks, 3)))
    assert isinstance(got, da.Array) and got.chunks[:2] == chunks
    with dask.config.set(scheduler="threads"):
        assert_blocks_equal(got, namcore.write(M, k, v, p, p))
        assert_blocks_equal(read, namcore.read(namcore.write(M, k, v, p, p), k))


@pytest.mark.parametrize("seq_chunk", [40, 16, 7])
def test_noncausal_attention_chunked_along_the_sequence(qkv, seq_chunk, lazy_only):
    """The memory is a sum over positions: Dask reduces it across sequence chunks."""
    q, k, v = qkv
    mask = np.arange(40) < 33
    chunks = (2, 2, seq_chunk, 6)
    y, memory = namcore.attention(
        *(chunked(a, chunks) for a in qkv), mask=chunked(mask, (seq_chunk,)), return_state=True
    )
    y_np, memory_np = namcore.attention(q, k, v, mask=mask, return_state=True)
    with dask.config.set(scheduler="threads"):
        assert_blocks_equal(y, y_np)
        assert_blocks_equal(memory, memory_np)


@pytest.mark.parametrize("chunks", [(2, 1, 40, 6), (1, 3, 16, 6)])
def test_causal_attention_fast_path_equals_standard_path(qkv, chunks, lazy_only):
    """Dask's causal fast path (NumPy's loop per block) equals the standard chunked scan,
    and both equal NumPy; inputs split along the sequence are gathered per block."""
    q, k, v = qkv
    rng = np.random.default_rng(2)
    pw, pr = rng.uniform(size=(4, 3, 40)), rng.uniform(size=(4, 3, 40))
    state = rng.standard_normal((4, 3, 6, 6))
    xs = [chunked(a, chunks) for a in qkv]
    args = dict(
        p_write=chunked(pw, chunks[:3]),
        p_read=chunked(pr, chunks[:3]),
        state=chunked(state, (*chunks[:2], 6, 6)),
        causal=True,
        return_state=True,
        chunk_size=8,
    )
    fast = namcore.attention(*xs, **args)
    backend = backends.get("dask")
    standard = backend.attention_causal.__func__ is not Backend.attention_causal
    assert standard, "the Dask backend should have its own causal fast path"
    original = type(backend).attention_causal
    type(backend).attention_causal = Backend.attention_causal
    try:
        reference = namcore.attention(*xs, **args)
    finally:
        type(backend).attention_causal = original
    expected = namcore.attention(
        q, k, v, p_write=pw, p_read=pr, state=state, causal=True, return_state=True, chunk_size=8
    )
    assert fast[0].chunks[:2] == xs[0].chunks[:2]  # batch and head chunks are kept
    with dask.config.set(scheduler="threads"):
        for got, ref, want in zip(fast, reference, expected, strict=True):
            assert_blocks_equal(got, want)
            assert_blocks_equal(ref, want)


def test_probabilities_are_never_computed_for_validation(lazy_only):
    """Out-of-range lazy probabilities are not read (as under jax.jit): no compute."""
    M = da.zeros((2, 3, 4), chunks=1)
    out = namcore.write(
        M, da.ones((2, 4), chunks=1), da.ones((2, 3), chunks=1), da.full((2,), 1.5, chunks=1)
    )
    assert isinstance(out, da.Array)


# ------------------------------------------------------------- a two-worker cluster
distributed = pytest.importorskip("distributed")

BATCH, HEADS, LENGTH, D = 192, 2, 4096, 32  # float32: 1 MiB per sequence per array
PER_BLOCK = 8
WORKER_MEMORY = 400 * 2**20


def _make(block_id=None, *, salt: int) -> np.ndarray:
    """One block of inputs, generated where it is needed from its block index."""
    rng = np.random.default_rng([salt, block_id[0]])
    return rng.standard_normal((PER_BLOCK, HEADS, LENGTH, D), dtype=np.float32)


def _inputs() -> tuple[da.Array, ...]:
    chunks = ((PER_BLOCK,) * (BATCH // PER_BLOCK), (HEADS,), (LENGTH,), (D,))
    return tuple(
        da.map_blocks(
            _make,
            chunks=chunks,
            dtype=np.float32,
            salt=salt,
            meta=np.empty((0, 0, 0, 0), np.float32),
        )
        for salt in range(3)
    )


def _block_error(y: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Max relative error of one block of the Dask result against NumPy on that block."""
    expected = namcore.attention(q, k, v)
    scale = np.abs(expected).max()
    return np.full((1, 1, 1, 1), np.abs(y - expected).max() / scale, dtype=np.float64)


def _errors(y: da.Array, q: da.Array, k: da.Array, v: da.Array) -> da.Array:
    return da.map_blocks(
        _block_error, y, q, k, v, dtype=np.float64, chunks=((1,) * y.numblocks[0], (1,), (1,), (1,))
    )


@pytest.fixture
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=WORKER_MEMORY,
            dashboard_address=None,
            silence_logs=50,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


@pytest.mark.slow
def test_cluster_attention_larger_than_a_worker_equals_numpy(cluster):
    _, client = cluster
    q, k, v = _inputs()
    limit = client.scheduler_info()["workers"]
    limit = max(w["memory_limit"] for w in limit.values())
    assert limit == WORKER_MEMORY
    assert 3 * q.nbytes > limit, "the inputs must not fit in one worker's memory"
    y = namcore.attention(q, k, v)
    errors = client.compute(_errors(y, q, k, v)).result()
    assert errors.shape == (BATCH // PER_BLOCK, 1, 1, 1)
    assert errors.max() < 1e-5, f"largest block error {errors.max():.2e}"
    # two blocks also checked here against NumPy directly, with the error measured
    # against the output's scale as on the workers: float32 rounding grows with the
    # magnitude of the sums, so an elementwise absolute tolerance misfires at ~16
    for index in (0, BATCH // PER_BLOCK - 1):
        block = [a.blocks[index].compute() for a in (q, k, v)]
        got = client.compute(y.blocks[index]).result()
        error = _block_error(got, *block).item()
        assert error < 1e-5, f"block {index}: error {error:.2e} of the output's scale"


@pytest.mark.slow
def test_cluster_recomputes_the_tasks_of_a_killed_worker(cluster):
    _, client = cluster
    q, k, v = _inputs()
    y = client.persist(namcore.attention(q, k, v))
    keys = {future.key for future in distributed.futures_of(y)}
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 120
    victim, held = None, set()
    while time.monotonic() < deadline:  # wait until one worker holds finished blocks
        who_has = client.who_has(y)
        by_worker: dict[str, set] = {}
        for key, workers in who_has.items():
            for worker in workers:
                by_worker.setdefault(worker, set()).add(key)
        if by_worker and max(len(s) for s in by_worker.values()) >= 3:
            victim = max(by_worker, key=lambda w: len(by_worker[w]))
            held = by_worker[victim]
            break
        time.sleep(0.05)
    assert victim is not None, "no worker finished three blocks in time"
    os.kill(pids[victim], signal.SIGKILL)
    # the killed worker's results are lost; the scheduler recomputes them elsewhere
    errors = client.compute(_errors(y, q, k, v)).result(timeout=300)
    assert held <= keys  # the killed worker held finished blocks of the result
    assert victim not in client.scheduler_info()["workers"]  # it is gone (the nanny
    # started a fresh worker under a new address)
    assert errors.shape == (BATCH // PER_BLOCK, 1, 1, 1)
    assert errors.max() < 1e-5, f"largest block error {errors.max():.2e}"


# ----------------------------------------------------------------- namcore eval dask
@pytest.fixture
def run_dir(tmp_path):
    from namcore.models import init_numpy, save
    from namcore.training.presets import model_config

    config = model_config("lstm", "reduce", "smoke")
    save(tmp_path / "best.safetensors", init_numpy(config, seed=0), config)
    (tmp_path / "run.json").write_text(
        json.dumps({"task": "reduce", "model": "lstm", "preset_values": {"eval_size": 40}})
    )
    return tmp_path


_ORACLE: dict = {}


def _perfect_on_even_lengths(params, tokens, mask=None, *, config):
    """A stand-in model: right on every sample of even length, wrong on odd ones."""
    del params, mask, config
    return _ORACLE["logits"](tokens)


def test_dask_eval_counts_are_right(run_dir, monkeypatch):
    """With a model that is right exactly on even lengths, the scores must say so."""
    from namcore import models, tasks
    from namcore.training import evaluate
    from namcore.training.dask_eval import chunk_seed
    from namcore.training.data import split_task

    answers: dict[bytes, np.ndarray] = {}
    for split, (low, high) in tasks.splits("reduce").items():
        for index in range(3):
            batch = split_task("reduce", split).generate(
                min(16, 40 - 16 * index), low, high, seed=chunk_seed("reduce", split, index)
            )
            for row in range(len(batch)):
                target = batch.targets[row].copy()
                if batch.lengths[row] % 2:
                    target[batch.loss_mask[row]] = tasks.PAD
                answers[batch.inputs[row].tobytes()] = target

    def logits(tokens):
        out = np.zeros((*tokens.shape, 64), dtype=np.float32)
        for row, seq in enumerate(tokens):
            target = answers[seq.tobytes()]
            out[row, np.arange(len(seq)), target] = 1.0
        return out

    _ORACLE["logits"] = logits
    monkeypatch.setattr(models, "forward", _perfect_on_even_lengths)
    result = evaluate(run_dir, "dask", size=40, chunk=16, write=False)
    assert result["size"] == 40
    for split, entry in result["splits"].items():
        assert entry["samples"] == 40, split
        assert entry["by_length"], split
        for length, accuracy in entry["by_length"].items():
            assert accuracy == (1.0 if int(length) % 2 == 0 else 0.0), (split, length)


def test_dask_eval_is_the_same_locally_and_on_a_cluster(run_dir):
    from namcore.training import evaluate

    local = evaluate(run_dir, "dask", size=48, chunk=16, write=False)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            silence_logs=50,
        ) as c,
        distributed.Client(c) as client,
    ):
        remote = evaluate(run_dir, "dask", size=48, chunk=16, scheduler=client, write=False)
    assert local["splits"] == remote["splits"]
    chunky = evaluate(run_dir, "dask", size=48, chunk=48, write=False)
    assert all(e["samples"] == 48 for e in chunky["splits"].values())


def test_cli_eval_dask_shows_progress_and_writes(run_dir, capsys):
    from namcore.cli import main

    assert main(["eval", str(run_dir), "--backend", "dask", "--size", "32", "--chunk", "8"]) == 0
    out = capsys.readouterr().out
    assert "Completed" in out and "od_hard" in out  # Dask's progress bar, then the table
    saved = json.loads((run_dir / "eval.json").read_text())
    assert saved["backend"] == "dask" and saved["size"] == 32


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "0"], "size must be a positive integer"),
        (["--chunk", "-1"], "chunk must be a positive integer"),
        (["--backend", "numpy", "--scheduler", "tcp://x:1"], "options of backend='dask'"),
    ],
)
def test_cli_eval_dask_errors(run_dir, capsys, argv, message):
    from namcore.cli import main

    args = ["eval", str(run_dir)] + (argv if "--backend" in argv else ["--backend", "dask", *argv])
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (run_dir / "eval.json").exists()


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ("host-without-port", "scheduler 'host-without-port' is not an address"),
        ("tcp://10.0.0.5", "missing port number"),
        ("http://10.0.0.5:8786", "unknown protocol 'http'"),
        ("tcp://10.0.0.5:99999", "a port in 1-65535"),
    ],
)
def test_cli_eval_refuses_a_malformed_scheduler_at_once(run_dir, capsys, scheduler, message):
    from namcore.cli import main

    argv = ["eval", str(run_dir), "--backend", "dask", "--scheduler", scheduler]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("namcore eval: error:") and len(err.splitlines()) == 1
    assert message in err and "tcp://HOST:PORT" in err
    assert not (run_dir / "eval.json").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_eval_says_at_once_that_no_scheduler_listens(run_dir, capsys):
    from namcore.cli import main

    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    assert main(["eval", str(run_dir), "--backend", "dask", "--scheduler", address]) == 2
    assert time.perf_counter() - start < 5  # dask.distributed alone retries for 30 s
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at {address}" in err and "refused" in err


def test_cli_eval_refuses_a_server_that_is_not_a_scheduler(run_dir, capsys, monkeypatch):
    """A dashboard or web server accepts the connection and says nothing: no endless wait."""
    from namcore.cli import main
    from namcore.training import dask_eval

    monkeypatch.setattr(dask_eval, "CONNECT_TIMEOUT", 0.3)
    with socket.socket() as server:  # listens (the kernel accepts), never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        assert main(["eval", str(run_dir), "--backend", "dask", "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert f"{address} is not a Dask scheduler: it said nothing for 0.3 s" in err


def test_eval_connects_to_a_scheduler_by_address(run_dir):
    from namcore.training import evaluate

    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        dashboard_address=None,
        silence_logs=50,
    ) as c:
        remote = evaluate(run_dir, "dask", size=16, chunk=16, scheduler=c.scheduler_address)
    assert remote["splits"] == evaluate(run_dir, "dask", size=16, chunk=16)["splits"]


def test_eval_names_the_extra_when_distributed_is_missing(run_dir, monkeypatch, capsys):
    from namcore.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    argv = ["eval", str(run_dir), "--backend", "dask", "--scheduler", "tcp://10.0.0.5:8786"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs dask.distributed" in err and "pip install 'namcore[dask]'" in err
