"""Benchmark: streaming decoding, one token at a time, with a fixed-size memory state.

The two models of :mod:`namcore.models` that can stream, at d_model = 64 with 4 heads
and a vocabulary of 32,

- causal LSAM (one unidirectional recurrence, no decoder): state ``(memory, hidden)``;
- the causal NAM Transformer (2 layers): state ``(position, memories)``,

decode L random tokens (seeded) one at a time, batch 1, float32, on the CPU, from a
zero state, in three runtimes:

- ``numpy``: ``namcore.models.forward(..., state=state, return_state=True)`` on NumPy;
- ``torch``: the same function on torch tensors, eager, under ``torch.inference_mode()``
  (torch's default thread count);
- ``onnxruntime``: the step graph of ``namcore.export.build_graph(kind="step")`` in an
  ``onnxruntime.InferenceSession`` with default ``SessionOptions``, each step's outputs
  fed back as the next step's inputs.

A diagnostic fourth runtime, ``onnxruntime, guards inlined``, runs the same step graph
with every ``If`` node that ndonnx puts around a matmul (a guard for zero-sized inputs)
replaced by the matmul of its ``else`` branch, to show what the guards cost; the guards
are also timed in pairs of adjacent 64-token blocks, which load disturbs less.

For each (model, runtime, L) it records the mean wall time per token (the loop's
``time.perf_counter`` time / L) and its ratio to NumPy at the same L, the fastest
1,024-token turn, the process CPU time per token, the state size, and the growth of the
process RSS over the stream (and its peak, sampled every 1,024 tokens). The streaming
runtimes of one (model, L) take turns of 1,024 tokens, so that load from other
processes falls on them alike. A reference row per model runs NumPy's whole-sequence
``forward`` on the (1, L) tokens (no streaming), whose memory grows with L; its peak
RSS is sampled by a thread every millisecond. Cells that would take too long
(estimated from the previous length) are skipped and marked so.

Before timing, each model's first 32 streamed logits from every runtime are checked
against NumPy's whole-sequence logits (rtol 1e-4, atol 1e-5); a mismatch stops the run.

Usage::

    python benchmarks/streaming.py            # L = 1K, 4K, 16K, 64K (several minutes)
    python benchmarks/streaming.py --quick    # L = 256, 1K
    python benchmarks/streaming.py --lengths 512 2048 --out /tmp/streaming.md

The Markdown table goes to stdout and, atomically, to ``docs/benchmarks/streaming.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from namcore._io import atomic_write
from namcore._onnx_graph import inline_matmul_guards, subgraphs

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
VOCAB, D_MODEL, HEADS, LAYERS = 32, 64, 4, 2
CHECK_TOKENS = 32
CHUNK = 1024  # tokens a runtime streams before the next one takes its turn
FULL_LIMIT_S = 60.0  # skip a whole-sequence forward estimated to take longer
MIB = 2**20
GUARD_BLOCK = 64  # tokens a block in the paired guard measurement
RUNTIMES = ("numpy", "torch", "onnxruntime", "onnxruntime, guards inlined")
FULL = "numpy, whole sequence"


@dataclass
class Model:
    """One streaming model: its configuration, parameters and ONNX step graphs."""

    label: str
    config: Any
    params: dict[str, np.ndarray]
    graph: Any  # onnx.ModelProto from build_graph(kind="step")
    inlined: Any  # the same with the matmul guards replaced by their matmuls
    build_s: float
    stats: dict[str, Any] = field(default_factory=dict)
    guards: dict[str, float] = field(default_factory=dict)  # from guard_cost


@dataclass
class Row:
    model: str
    runtime: str
    length: int
    seconds: float | None = None
    cpu_seconds: float | None = None
    state_bytes: int | None = None
    rss_end: float | None = None  # MiB
    rss_peak: float | None = None  # MiB
    best_turn: float | None = None  # µs/token of the fastest turn
    skipped: str | None = None

    @property
    def us(self) -> float:
        assert self.seconds is not None
        return self.seconds / self.length * 1e6


# ------------------------------------------------------------------------ models
def make_models() -> list[Model]:
    from namcore.export import build_graph
    from namcore.models import LSAMConfig, NAMTransformerConfig, init_numpy

    configs = [
        (
            "causal LSAM",
            LSAMConfig(
                vocab_size=VOCAB, d_model=D_MODEL, n_heads=HEADS, bidirectional=False, decoder=False
            ),
        ),
        (
            "causal NAM Transformer",
            NAMTransformerConfig(
                vocab_size=VOCAB, d_model=D_MODEL, n_heads=HEADS, n_layers=LAYERS, causal=True
            ),
        ),
    ]
    out = []
    for label, config in configs:
        params = init_numpy(config, seed=0)
        start = time.perf_counter()
        graph, _spec = build_graph(params, config, kind="step")
        build_s = time.perf_counter() - start
        inlined, n_inlined = inline_matmul_guards(graph)
        model = Model(label, config, params, graph, inlined, build_s)
        model.stats = graph_stats(graph) | {
            "inlined": n_inlined,
            "inlined nodes": len(inlined.graph.node),
        }
        out.append(model)
    return out


def graph_stats(graph: Any) -> dict[str, Any]:
    """Node counts of a step graph: top level by op type, and inside If branches."""
    top = Counter(n.op_type for n in graph.graph.node)

    def inner(g: Any) -> Counter:
        count: Counter = Counter()
        for n in g.node:
            count[n.op_type] += 1
            for sub in subgraphs(n):
                count += inner(sub)
        return count

    nested: Counter = Counter()
    for n in graph.graph.node:
        for sub in subgraphs(n):
            nested += inner(sub)
    return {"top": top, "nested": nested}


# ------------------------------------------------------------------------ runtimes
def nbytes(state: Any) -> int:
    """Bytes of every array in a (nested) state; a Python int counts as an int64."""
    if isinstance(state, dict):
        return sum(nbytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(nbytes(v) for v in state)
    if isinstance(state, int):
        return 8
    return int(state.nbytes)


class Streamer:
    """Feeds tokens one at a time to one model in one runtime."""

    name = ""

    def start(self, tokens: np.ndarray) -> None:
        raise NotImplementedError

    def step(self, t: int) -> Any:
        """Feed token ``t`` of the tokens given to ``start``; return its logits (1, V)."""
        raise NotImplementedError

    def state_bytes(self) -> int:
        return nbytes(self.state)

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def logits(self, value: Any) -> np.ndarray:
        return np.asarray(value)


class ArrayStreamer(Streamer):
    """``namcore.models.forward`` with ``state=`` on NumPy arrays or torch tensors."""

    def __init__(self, model: Model, torch: bool) -> None:
        from namcore.models import forward

        self.forward, self.config, self.torch = forward, model.config, torch
        self.name = "torch" if torch else "numpy"
        self.params: dict[str, Any] = model.params
        if torch:
            import torch as th

            self.params = {k: th.from_numpy(v) for k, v in model.params.items()}

    def start(self, tokens: np.ndarray) -> None:
        if self.torch:
            import torch

            tokens = torch.from_numpy(tokens)
        self.tokens, self.state = tokens, None

    def step(self, t: int) -> Any:
        logits, self.state = self.forward(
            self.params,
            self.tokens[:, t : t + 1],
            config=self.config,
            state=self.state,
            return_state=True,
        )
        return logits[:, 0]

    def context(self) -> contextlib.AbstractContextManager:
        if self.torch:
            import torch

            return torch.inference_mode()
        return contextlib.nullcontext()

    def logits(self, value: Any) -> np.ndarray:
        return value.numpy() if self.torch else np.asarray(value)


class OnnxStreamer(Streamer):
    """The step graph in onnxruntime, its state outputs fed back as inputs."""

    def __init__(self, model: Model, inlined: bool) -> None:
        import onnxruntime as ort

        self.name = RUNTIMES[3] if inlined else RUNTIMES[2]
        graph = model.inlined if inlined else model.graph
        self.session = ort.InferenceSession(
            graph.SerializeToString(), ort.SessionOptions(), providers=["CPUExecutionProvider"]
        )
        self.config = model.config
        self.state_names = [i.name for i in self.session.get_inputs() if i.name != "token"]
        self.outputs = ["logits"] + [f"{n}_out" for n in self.state_names]

    def zero_state(self) -> dict[str, np.ndarray]:
        c = self.config
        dh = c.d_model // c.n_heads
        if "hidden" in self.state_names:  # LSAM
            return {
                "memory": np.zeros((1, c.n_heads, dh, dh), np.float32),
                "hidden": np.zeros((1, c.d_model), np.float32),
            }
        return {
            "position": np.array(0, dtype=np.int64),
            "memory": np.zeros((c.n_layers, 1, c.n_heads, dh, dh), np.float32),
        }

    def start(self, tokens: np.ndarray) -> None:
        self.tokens = np.ascontiguousarray(tokens.reshape(-1, 1))  # row t: token t, (1,)
        self.state = self.zero_state()
        assert set(self.state) == set(self.state_names), self.state_names

    def step(self, t: int) -> Any:
        out = self.session.run(self.outputs, {"token": self.tokens[t], **self.state})
        self.state = dict(zip(self.state_names, out[1:], strict=True))
        return out[0]


def streamers(model: Model) -> list[Streamer]:
    return [
        ArrayStreamer(model, torch=False),
        ArrayStreamer(model, torch=True),
        OnnxStreamer(model, inlined=False),
        OnnxStreamer(model, inlined=True),
    ]


# ------------------------------------------------------------------------ measuring
def check(model: Model, runners: list[Streamer]) -> None:
    """First streamed logits of every runtime == NumPy's whole-sequence logits."""
    from namcore.models import forward

    tokens = np.random.default_rng(12345).integers(0, VOCAB, (1, CHECK_TOKENS))
    want = np.asarray(forward(model.params, tokens, config=model.config))[0]
    for runner in runners:
        runner.start(tokens)
        with runner.context():
            got = np.stack([runner.logits(runner.step(t)) for t in range(CHECK_TOKENS)])
        np.testing.assert_allclose(
            got.reshape(want.shape),
            want,
            rtol=1e-4,
            atol=1e-5,
            err_msg=f"{model.label}, {runner.name}: streamed logits differ from NumPy's "
            "whole-sequence forward",
        )


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def stream_together(
    runners: list[Streamer], tokens: np.ndarray, rows: list[Row], progress: Callable[[float], Any]
) -> None:
    """Stream ``tokens`` (1, L) through every runner and fill its row's measurements.

    Each runner streams all L tokens one at a time from a zero state, but the runners
    take turns, ``CHUNK`` tokens each (the order rotating every round), so that load
    from other processes falls on all of them alike. A row's time is the sum of its
    chunks' loop times; its RSS growth the sum of the RSS differences across its chunks,
    and its peak the largest running total at a chunk's end. ``progress`` gets the
    fraction of a cell done after each chunk.
    """
    length = tokens.shape[1]
    if not runners:
        return
    for runner in runners:
        runner.start(tokens)
    for row in rows:
        row.seconds = row.cpu_seconds = 0.0
        row.rss_end = row.rss_peak = 0.0
    gc.collect()
    for k, lo in enumerate(range(0, length, CHUNK)):
        hi = min(lo + CHUNK, length)
        turn = k % len(runners)
        for runner, row in zip(
            runners[turn:] + runners[:turn], rows[turn:] + rows[:turn], strict=True
        ):
            before = rss()
            with runner.context():
                cpu = time.process_time()
                start = time.perf_counter()
                for t in range(lo, hi):
                    runner.step(t)
                seconds = time.perf_counter() - start
                row.seconds += seconds
                us = seconds / (hi - lo) * 1e6
                row.best_turn = us if row.best_turn is None else min(row.best_turn, us)
                row.cpu_seconds += time.process_time() - cpu
            row.rss_end += (rss() - before) / MIB
            row.rss_peak = max(row.rss_peak, row.rss_end)
            progress((hi - lo) / length)
    for runner, row in zip(runners, rows, strict=True):
        row.state_bytes = runner.state_bytes()


def guard_cost(guarded: Streamer, inlined: Streamer, rounds: int) -> dict[str, float]:
    """Per-token times of the ONNX step with and without its matmul guards, paired.

    The two sessions stream the same tokens from a zero state in alternating blocks of
    ``GUARD_BLOCK`` tokens (which one goes first swapping every round), so that every
    block of one has a neighbour of the other measured under the same load. Returns the
    fastest block of each (µs/token) and the median over rounds of the two blocks' ratio.
    """
    tokens = np.random.default_rng(7).integers(0, VOCAB, (1, rounds * GUARD_BLOCK))
    pair = (guarded, inlined)
    for runner in pair:
        runner.start(tokens)
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(rounds):
        for i in (0, 1) if k % 2 == 0 else (1, 0):
            start = time.perf_counter()
            for t in range(k * GUARD_BLOCK, (k + 1) * GUARD_BLOCK):
                pair[i].step(t)
            times[i].append((time.perf_counter() - start) / GUARD_BLOCK * 1e6)
    with_guards, without = np.array(times[0]), np.array(times[1])
    return {
        "guarded": float(with_guards.min()),
        "inlined": float(without.min()),
        "ratio": float(np.median(without / with_guards)),
        "tokens": rounds * GUARD_BLOCK,
    }


class PeakSampler:
    """A thread that samples the process RSS every ``interval`` seconds."""

    def __init__(self, interval: float = 1e-3) -> None:
        self.interval, self.peak = interval, rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def whole_sequence(model: Model, tokens: np.ndarray, row: Row) -> None:
    """NumPy's whole-sequence forward: time per token and RSS growth (output included)."""
    from namcore.models import forward

    gc.collect()
    before = rss()
    with PeakSampler() as sampler:
        cpu = time.process_time()
        start = time.perf_counter()
        logits = forward(model.params, tokens, config=model.config)
        row.seconds = time.perf_counter() - start
        row.cpu_seconds = time.process_time() - cpu
        row.rss_end = (rss() - before) / MIB
    row.rss_peak = (sampler.peak - before) / MIB
    del logits


def estimate(rows: list[Row], model: str, runtime: str, length: int) -> tuple[float, float]:
    """(seconds, peak MiB) for ``length`` scaled linearly from the longest measured row."""
    done = [r for r in rows if r.model == model and r.runtime == runtime and r.seconds is not None]
    if not done:
        return 0.0, 0.0
    last = max(done, key=lambda r: r.length)
    scale = length / last.length
    return last.seconds * scale, max(last.rss_peak or 0.0, 0.0) * scale


# ------------------------------------------------------------------------ report
def versions() -> str:
    found = []
    for name in ("namcore", "numpy", "torch", "onnxruntime", "ndonnx", "onnx", "psutil"):
        try:
            found.append(f"{name} {importlib.import_module(name).__version__}")
        except (ImportError, AttributeError):
            found.append(f"{name} (unknown version)")
    return ", ".join(found)


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def render(rows: list[Row]) -> str:
    lines = [
        "| model | runtime | L | µs/token | ÷ NumPy | fastest turn µs/token | ÷ NumPy | "
        "CPU µs/token | state KiB | "
        "RSS growth MiB (end) | RSS growth MiB (peak) | wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {(r.model, r.length): r for r in rows if r.runtime == "numpy" and r.seconds is not None}
    for r in rows:
        name = f"*{r.runtime}*" if r.runtime in (RUNTIMES[3], FULL) else r.runtime
        if r.skipped:
            lines.append(
                f"| {r.model} | {name} | {r.length:,} | skipped: {r.skipped} | | | | | | | | |"
            )
            continue
        ref = base.get((r.model, r.length))
        ratio = f"{r.seconds / ref.seconds:.2f}" if ref is not None else "—"
        state = "—" if r.state_bytes is None else f"{r.state_bytes / 1024:.2f}"
        if r.best_turn is None or ref is None or ref.best_turn is None:
            best = "— | —"
        else:
            best = f"{r.best_turn:.1f} | {r.best_turn / ref.best_turn:.2f}"
        lines.append(
            f"| {r.model} | {name} | {r.length:,} | {r.us:.1f} | {ratio} | {best} | "
            f"{r.cpu_seconds / r.length * 1e6:.1f} | {state} | {r.rss_end:+.1f} | "
            f"{r.rss_peak:+.1f} | {r.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def summary(rows: list[Row], models: list[Model]) -> str:
    lines = ["## Summary", ""]
    for m in models:
        mine = [r for r in rows if r.model == m.label and r.seconds is not None]
        for runtime in RUNTIMES:
            cells = [r for r in mine if r.runtime == runtime]
            if not cells:
                continue
            us = [r.us for r in cells]
            grow = max(r.rss_peak for r in cells)
            ratios = [
                r.seconds / b.seconds
                for r in cells
                for b in mine
                if b.runtime == "numpy" and b.length == r.length
            ]
            fastest = [
                r.best_turn / b.best_turn
                for r in cells
                for b in mine
                if b.runtime == "numpy" and b.length == r.length
            ]
            lines.append(
                f"- {m.label}, {runtime}: {min(us):.0f}–{max(us):.0f} µs/token over "
                f"L = {cells[0].length:,}–{cells[-1].length:,}"
                + (
                    f", {min(ratios):.2f}–{max(ratios):.2f}x NumPy's time (fastest turns: "
                    f"{min(fastest):.2f}–{max(fastest):.2f}x)"
                    if runtime != "numpy"
                    else ""
                )
                + f"; state {cells[0].state_bytes / 1024:.2f} KiB; largest peak RSS growth "
                f"{grow:+.1f} MiB"
            )
        longest = max((r.length for r in mine if r.runtime in RUNTIMES), default=0)
        spread = [
            f"{r.runtime}: {r.us / r.best_turn:.2f}"
            for r in mine
            if r.runtime in RUNTIMES and r.length == longest and r.best_turn
        ]
        if longest > CHUNK and spread:
            lines.append(
                f"- {m.label}, sensitivity to load at L = {longest:,}, mean ÷ "
                f"fastest turn: {'; '.join(spread)}"
            )
        full = [r for r in mine if r.runtime == FULL]
        if full:
            lines.append(
                f"- {m.label}, whole-sequence NumPy forward: peak RSS growth "
                + ", ".join(f"{r.rss_peak:+.1f} MiB at L = {r.length:,}" for r in full)
                + f"; {min(r.us for r in full):.0f}–{max(r.us for r in full):.0f} µs/token"
            )
        pairs = [
            (a, b)
            for a in mine
            for b in mine
            if a.length == b.length and a.runtime == RUNTIMES[2] and b.runtime == RUNTIMES[3]
        ]
        if pairs:
            shares = [1 - b.seconds / a.seconds for a, b in pairs]
            overall = 1 - sum(b.seconds for _, b in pairs) / sum(a.seconds for a, _ in pairs)
            s = m.stats
            lines.append(
                f"- {m.label}, ONNX step graph: {sum(s['top'].values())} top-level nodes, "
                f"{s['top']['If']} of them `If` ({m.stats['inlined']} matmul guards; "
                f"{s['top']['MatMul']} top-level MatMul, {s['nested']['MatMul']} inside "
                f"branches), {sum(s['nested'].values())} nodes inside the `If` branches; "
                f"with the guards inlined and the condition nodes dropped: "
                f"{s['inlined nodes']} nodes. The guards' share of the ONNX step time "
                f"(1 − inlined ÷ guarded): {overall:.0%} over the table's streams together, "
                f"{min(shares):.0%} to {max(shares):.0%} at single lengths."
            )
        if m.guards:
            g = m.guards
            lines.append(
                f"- {m.label}, guards measured in pairs ({g['tokens']:,} tokens each way, "
                f"alternating blocks of {GUARD_BLOCK}): fastest block {g['guarded']:.0f} "
                f"µs/token with the guards, {g['inlined']:.0f} without "
                f"({1 - g['inlined'] / g['guarded']:.0%} less); median paired ratio "
                f"without ÷ with {g['ratio']:.2f}, i.e. the guards take about "
                f"{1 - g['ratio']:.0%} of the ONNX step time."
            )
    return "\n".join(lines) + "\n"


def header(
    args: argparse.Namespace,
    models: list[Model],
    notes: list[str],
    load: tuple[float, float],
    torch_threads: int,
    total_s: float,
) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python", "benchmarks/streaming.py", *sys.argv[1:]])
    builds = ", ".join(f"{m.label} {m.build_s:.1f} s" for m in models)
    lines = [
        "<!-- Generated by benchmarks/streaming.py; do not edit by hand. -->",
        "",
        "# Streaming decoding benchmark",
        "",
        f"- Date: {now}",
        f"- Command: `{command}` ({total_s / 60:.1f} min in all)",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores, "
        f"{platform.platform()}; torch.get_num_threads() = {torch_threads}; onnxruntime "
        "default SessionOptions (CPUExecutionProvider)",
        f"- Python {platform.python_version()}; {versions()}",
        f"- Models: d_model {D_MODEL}, {HEADS} heads, vocabulary {VOCAB}, float32, batch 1, "
        f"parameters from `init_numpy(config, seed=0)`; causal LSAM: one unidirectional "
        f"recurrence, no decoder; causal NAM Transformer: {LAYERS} layers. ONNX step "
        f"graphs built once per model ({builds}).",
        f"- Checked before timing: the first {CHECK_TOKENS} streamed logits of every "
        "runtime equal NumPy's whole-sequence logits (rtol 1e-4, atol 1e-5).",
        f"- 1-minute load average: {load[0]:.2f} before the run, {load[1]:.2f} after it",
    ]
    lines += [f"- {note}" for note in notes]
    lines += [
        "",
        "**How to read.** Each streaming row feeds L random tokens one at a time from a "
        "zero state. The streaming runtimes of one model and L run in turns of "
        f"{CHUNK:,} tokens each (the order rotating), so that load from other processes "
        "falls on them alike. *µs/token* is the runtime's total loop wall time divided by "
        "L, and *÷ NumPy* its ratio to the NumPy streaming row of the same model and L "
        "(below 1: faster than NumPy). *fastest turn* is the runtime's fastest turn "
        "(µs/token) and its ratio to NumPy's fastest turn: less sensitive to bursts of "
        "load than the mean (the same as it at L ≤ "
        f"{CHUNK:,}, one turn). The machine is shared with other jobs, so absolute "
        "times move between runs; the ratios are the meaningful part. *CPU µs/token* is "
        "the process CPU time (all threads) over the same loops: above the wall time when "
        "a runtime keeps more than one thread busy, below it when the process waited for "
        "a core. *state KiB* is the size of the state carried from token to token (memory "
        "matrices, LSAM's hidden vector, the Transformer's position counted as an int64); "
        "it does not depend on L. *RSS growth* is the change of the process's resident "
        "memory over the runtime's turns, summed (*end*), and the largest running total "
        f"at the end of a turn, i.e. every {CHUNK:,} tokens (*peak*); for streaming it "
        "stays near zero at every L. RSS only counts memory newly taken from the system, "
        "so a step that reuses memory freed earlier in the process shows less growth "
        "than it uses (down to zero). The reference "
        f"*{FULL}* row runs `forward(params, tokens, config=config)` on all (1, L) tokens "
        "at once, after the streaming rows (not interleaved with them); its RSS growth "
        "includes the (1, L, V) logits and its peak is sampled every millisecond by a "
        f"thread: it grows with L. *{RUNTIMES[3]}* is a diagnostic: the ONNX step graph "
        "with ndonnx's matmul guards (`If` nodes around every matmul, for zero-sized "
        "operands) replaced by the matmuls of their taken branch; its gap to "
        "*onnxruntime* is what the guards cost; the summary also measures it in pairs of "
        f"adjacent {GUARD_BLOCK}-token blocks, which is steadier under load.",
        "",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="L = 256 and 1,024 only")
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        metavar="L",
        help="sequence lengths (default 1,024 4,096 16,384 65,536)",
    )
    parser.add_argument(
        "--cell-limit",
        type=float,
        default=180.0,
        metavar="S",
        help="skip a streaming cell estimated to take more than S seconds (default 180)",
    )
    parser.add_argument("--out", type=Path, default=DOCS / "streaming.md")
    args = parser.parse_args()
    lengths = args.lengths or ([256, 1024] if args.quick else [1024, 4096, 16384, 65536])
    if any(n < 1 for n in lengths):
        parser.error("lengths must be positive")
    lengths = sorted(set(lengths))

    import psutil
    import torch
    from tqdm import tqdm

    start_all = time.perf_counter()
    load_before = os.getloadavg()[0]
    models = make_models()
    rows: list[Row] = []
    notes: list[str] = []
    runners: dict[str, list[Streamer]] = {}
    for m in models:
        runners[m.label] = streamers(m)
        check(m, runners[m.label])  # also warms every runtime up
    for m in tqdm(models, desc="matmul guards, paired", unit="model"):
        guarded, inlined = runners[m.label][2:4]
        m.guards = guard_cost(guarded, inlined, rounds=50 if args.quick else 200)
    bar = tqdm(
        total=len(models) * len(lengths) * (len(RUNTIMES) + 1),
        unit="cell",
        bar_format="{l_bar}{bar}| {n:.1f}/{total} cells [{elapsed}<{remaining}]",
    )
    for model in models:
        for length in lengths:
            tokens = np.random.default_rng(length).integers(0, VOCAB, (1, length))
            group: list[tuple[Streamer, Row]] = []
            for runner in runners[model.label]:
                row = Row(model.label, runner.name, length)
                seconds, _ = estimate(rows, model.label, runner.name, length)
                if seconds > args.cell_limit:
                    row.skipped = f"estimated {seconds:.1f} s > {args.cell_limit:g} s"
                    bar.update(1)
                else:
                    group.append((runner, row))
                rows.append(row)
            bar.set_description(f"{model.label}, streaming, L={length:,}")
            stream_together([g[0] for g in group], tokens, [g[1] for g in group], bar.update)
            bar.set_description(f"{model.label}, {FULL}, L={length:,}")
            row = Row(model.label, FULL, length)
            seconds, peak_mib = estimate(rows, model.label, FULL, length)
            available = psutil.virtual_memory().available / MIB
            if seconds > FULL_LIMIT_S:
                row.skipped = f"estimated {seconds:.1f} s > {FULL_LIMIT_S:g} s"
            elif peak_mib > available / 2:
                row.skipped = (
                    f"estimated {peak_mib:,.0f} MiB > half the available {available:,.0f} MiB"
                )
            else:
                whole_sequence(model, tokens, row)
            rows.append(row)
            bar.update(1)
    bar.close()
    notes += [
        f"Skipped: {r.model}, {r.runtime}, L = {r.length:,} ({r.skipped}, scaled "
        "linearly from the longest length measured)"
        for r in rows
        if r.skipped
    ]
    total_s = time.perf_counter() - start_all
    text = (
        header(
            args, models, notes, (load_before, os.getloadavg()[0]), torch.get_num_threads(), total_s
        )
        + render(rows)
        + "\n"
        + summary(rows, models)
    )
    atomic_write(args.out, text.encode())
    print(text)


if __name__ == "__main__":
    main()
