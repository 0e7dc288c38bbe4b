"""Benchmark: the models' forward and training step per token, against ``torch.nn.LSTM``.

For each model of :mod:`namcore.models` (LSAM, NAM-TM, the NAM Transformer, the
LSTM and softmax-Transformer baselines, and the classic memory networks NTM, DNC,
MemN2N and the Universal Transformer), at a small (d_model = 64) and a medium
(d_model = 128) width, with batch 32, sequence length 32 and float32 on the CPU,
it times

- the forward pass (torch eager under ``no_grad``; ``jax.jit`` of ``apply``);
- a training step without the optimizer update: forward, token cross-entropy and
  the gradients of every parameter (torch eager ``backward()``;
  ``jax.jit(jax.value_and_grad(loss))``),

and divides by the batch x length tokens. The baseline is one ``torch.nn.LSTM``
layer with ``hidden_size = input_size = d_model`` (loss: mean square of its
outputs), timed in the same run, and every time is also reported as a ratio to it.
Two diagnostic rows help read the others: ``LSAM, 1 layer`` (one unidirectional LSAM
recurrence, no decoder: as many recurrences as the baseline) and ``LSTM layer``
(``namcore.models.cells.recurrent``, the array-API LSTM cell the models use, run by
the backend's scan: the same computation as ``torch.nn.LSTM``).

Jitted functions are lowered and compiled before timing; the compile time is
reported separately. All cases of one width are built first and then timed in
interleaved rounds (best of all rounds), so that load from other processes affects
them alike. The process is pinned to ``--threads`` cores (default 1) and torch uses
``torch.set_num_threads(--threads)``.

Run ``python benchmarks/models.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from namcore._io import atomic_write

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
BATCH, LENGTH, VOCAB = 32, 32, 32
TOKENS = BATCH * LENGTH
AIM = 3.0  # the aim: JAX-jitted LSAM training step within 3x of torch.nn.LSTM's


@dataclass
class Case:
    """One model on one backend at one width: its two runners and their results."""

    model: str
    backend: str
    d: int
    params: int
    forward: Callable[[], Any]
    train: Callable[[], Any]
    compile_s: tuple[float, float] | None = None
    best: dict[str, float] = field(default_factory=dict)  # "forward"/"train" -> seconds
    best_cpu: dict[str, float] = field(default_factory=dict)  # the same in process CPU time
    usage: dict[str, list[float]] = field(default_factory=dict)  # kind -> [user s, sys s]

    def sys_share(self, kind: str) -> float:
        """Share of the kernel (page faults, mostly) in the CPU time of ``kind``."""
        user, system = self.usage[kind]
        return system / max(user + system, 1e-12)


# ------------------------------------------------------------------------ configs
def model_configs(d: int) -> list[tuple[str, Any]]:
    """(label, config) of every model timed at width ``d``."""
    from namcore.models import (
        DNCConfig,
        LSAMConfig,
        LSTMBaselineConfig,
        MemN2NConfig,
        NAMTMConfig,
        NAMTransformerConfig,
        NTMConfig,
        TransformerBaselineConfig,
        UniversalTransformerConfig,
    )

    return [
        ("LSAM", LSAMConfig(vocab_size=VOCAB, d_model=d)),
        (
            "LSAM, 1 layer",
            LSAMConfig(vocab_size=VOCAB, d_model=d, bidirectional=False, decoder=False),
        ),
        ("NAMTM", NAMTMConfig(vocab_size=VOCAB, d_model=d, tape_length=LENGTH)),
        ("NAMTransformer", NAMTransformerConfig(vocab_size=VOCAB, d_model=d)),
        ("LSTMBaseline", LSTMBaselineConfig(vocab_size=VOCAB, d_model=d)),
        ("TransformerBaseline", TransformerBaselineConfig(vocab_size=VOCAB, d_model=d)),
        ("NTM", NTMConfig(vocab_size=VOCAB, d_model=d, memory_size=LENGTH)),
        ("DNC", DNCConfig(vocab_size=VOCAB, d_model=d, memory_size=LENGTH)),
        ("MemN2N", MemN2NConfig(vocab_size=VOCAB, d_model=d)),
        ("UniversalTransformer", UniversalTransformerConfig(vocab_size=VOCAB, d_model=d)),
    ]


def describe() -> str:
    """What each model's configuration is."""
    return (
        "LSAM: defaults (4 heads, bidirectional encoder + decoder: 3 recurrences, "
        "feed-forward 2·d); LSAM, 1 layer: one unidirectional LSAM recurrence, no "
        "decoder; NAMTM: defaults (4 tapes, 2 layers, bi-GRU controller, jumps, tape "
        f"length {LENGTH}); NAMTransformer / TransformerBaseline: defaults (4 heads, 2 "
        "blocks, MLP 4·d, non-causal); LSTMBaseline: bidirectional encoder + decoder with "
        f"attention; NTM / DNC: LSTM controller, {LENGTH} cells of width 16 (DNC: 2 read "
        "heads); MemN2N: 3 hops; UniversalTransformer: 4 heads, up to 6 steps with ACT "
        "(the timed loss is the cross-entropy alone; every step runs, as under jit)"
    )


def cross_entropy(xp: Any, logits: Any, targets: Any) -> Any:
    """Mean token cross-entropy (the JAX loss; torch uses ``F.cross_entropy``)."""
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    log_z = xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    picked = xp.take_along_axis(shifted - log_z, targets[..., None], axis=-1)
    return -xp.mean(picked)


def lstm_layer_params(d: int) -> dict[str, np.ndarray]:
    from namcore.models import spec as P

    specs = P.recurrent("lstm", "lstm", d, d)
    return {
        name: spec.sample(np.random.default_rng(i)).astype(np.float32)
        for i, (name, spec) in enumerate(specs.items())
    }


def lstm_layer(params: dict[str, Any], x: Any, tokens: Any) -> Any:
    """One LSTM layer through the models' own cell and the backend's scan.

    ``tokens`` only supplies the (all-True) mask and the namespace.
    """
    from namcore.models import cells
    from namcore.models import layers as L

    ctx, mask = L.context(params, tokens, None, "LSTM layer")
    y, _ = cells.recurrent(params, "lstm", "lstm", x, mask, ctx)
    return y


# ------------------------------------------------------------------------ runners
def torch_cases(d: int, rng: np.random.Generator) -> list[Case]:
    import torch
    import torch.nn.functional as F

    from namcore.models import entry_for
    from namcore.models import torch as tm

    tokens = torch.from_numpy(rng.integers(0, VOCAB, (BATCH, LENGTH)))
    targets = torch.from_numpy(rng.integers(0, VOCAB, (BATCH, LENGTH)))
    x = torch.from_numpy(rng.standard_normal((BATCH, LENGTH, d), dtype=np.float32))
    out = []

    def no_grad(f: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return f()

        return run

    lstm = torch.nn.LSTM(d, d, batch_first=True)

    def lstm_train() -> None:
        lstm.zero_grad(set_to_none=True)
        y, _ = lstm(x)
        y.square().mean().backward()

    out.append(
        Case(
            "torch.nn.LSTM",
            "torch",
            d,
            sum(p.numel() for p in lstm.parameters()),
            no_grad(lambda: lstm(x)),
            lstm_train,
        )
    )

    layer = {k: torch.nn.Parameter(torch.from_numpy(v)) for k, v in lstm_layer_params(d).items()}

    def layer_train() -> None:
        for p in layer.values():
            p.grad = None
        lstm_layer(layer, x, tokens).square().mean().backward()

    out.append(
        Case(
            "LSTM layer",
            "torch",
            d,
            sum(p.numel() for p in layer.values()),
            no_grad(lambda: lstm_layer(layer, x, tokens)),
            layer_train,
        )
    )

    for label, config in model_configs(d):
        model = getattr(tm, entry_for(config).class_name)(config)

        def train(model: Any = model) -> None:
            model.zero_grad(set_to_none=True)
            logits = model(tokens)
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).backward()

        out.append(
            Case(
                label,
                "torch",
                d,
                model.parameter_count,
                no_grad(lambda model=model: model(tokens)),
                train,
            )
        )
    return out


def jax_cases(d: int, rng: np.random.Generator) -> list[Case]:
    import jax
    import jax.numpy as jnp

    from namcore.models import entry_for
    from namcore.models import jax as jm

    tokens = jnp.asarray(rng.integers(0, VOCAB, (BATCH, LENGTH)), dtype=jnp.int32)
    targets = jnp.asarray(rng.integers(0, VOCAB, (BATCH, LENGTH)), dtype=jnp.int32)
    x = jnp.asarray(rng.standard_normal((BATCH, LENGTH, d), dtype=np.float32))

    def compiled(f: Callable[..., Any], *args: Any) -> tuple[Callable[[], Any], float]:
        start = time.perf_counter()
        exe = jax.jit(f).lower(*args).compile()
        seconds = time.perf_counter() - start
        return (lambda: jax.block_until_ready(exe(*args))), seconds

    out = []
    layer = {k: jnp.asarray(v) for k, v in lstm_layer_params(d).items()}
    fwd, c_fwd = compiled(lstm_layer, layer, x, tokens)
    train, c_train = compiled(
        jax.value_and_grad(lambda p, x, t: jnp.mean(jnp.square(lstm_layer(p, x, t)))),
        layer,
        x,
        tokens,
    )
    out.append(
        Case(
            "LSTM layer",
            "jax",
            d,
            sum(int(v.size) for v in layer.values()),
            fwd,
            train,
            (c_fwd, c_train),
        )
    )
    for label, config in model_configs(d):
        model = getattr(jm, entry_for(config).class_name)(config)
        params = model.init(0)

        def loss(p: Any, t: Any, y: Any, model: Any = model) -> Any:
            return cross_entropy(jnp, model.apply(p, t), y)

        fwd, c_fwd = compiled(model.apply, params, tokens)
        train, c_train = compiled(jax.value_and_grad(loss), params, tokens, targets)
        out.append(
            Case(
                label,
                "jax",
                d,
                sum(int(v.size) for v in params.values()),
                fwd,
                train,
                (c_fwd, c_train),
            )
        )
    return out


# ------------------------------------------------------------------------ timing
def time_round(case: Case, budget_s: float, max_calls: int) -> None:
    """Time each runner of ``case`` for up to ``budget_s`` (at least once); keep the best.

    Wall-clock time is the measure; process CPU time (all threads) is kept as well,
    since on a loaded machine it is less disturbed by waiting for a core.
    """
    for kind in ("forward", "train"):
        fn = getattr(case, kind)
        spent, calls = 0.0, 0
        before = resource.getrusage(resource.RUSAGE_SELF)
        while calls < max_calls and (calls == 0 or spent < budget_s):
            cpu, start = time.process_time(), time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            spent += elapsed
            calls += 1
            case.best[kind] = min(case.best.get(kind, float("inf")), elapsed)
            case.best_cpu[kind] = min(case.best_cpu.get(kind, float("inf")), cpu)
        after = resource.getrusage(resource.RUSAGE_SELF)
        usage = case.usage.setdefault(kind, [0.0, 0.0])
        usage[0] += after.ru_utime - before.ru_utime
        usage[1] += after.ru_stime - before.ru_stime


# ------------------------------------------------------------------------ output
def us_per_token(seconds: float) -> float:
    return seconds / TOKENS * 1e6


def baseline(cases: list[Case], d: int) -> Case:
    return next(c for c in cases if c.model == "torch.nn.LSTM" and c.d == d)


def render(cases: list[Case], header: str) -> str:
    lines = [
        header,
        "",
        "| d_model | model | backend | params | forward µs/token | forward ÷ LSTM | "
        "train step µs/token | train ÷ LSTM | train ÷ LSTM, CPU time | train sys % | "
        "compile s (fwd / train) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        base = baseline(cases, c.d)
        compile_s = "—" if c.compile_s is None else f"{c.compile_s[0]:.1f} / {c.compile_s[1]:.1f}"
        name = f"**{c.model}**" if c.model == "torch.nn.LSTM" else c.model
        lines.append(
            f"| {c.d} | {name} | {c.backend} | {c.params:,} | "
            f"{us_per_token(c.best['forward']):.2f} | "
            f"{c.best['forward'] / base.best['forward']:.1f}x | "
            f"{us_per_token(c.best['train']):.2f} | "
            f"{c.best['train'] / base.best['train']:.1f}x | "
            f"{c.best_cpu['train'] / base.best_cpu['train']:.1f}x | "
            f"{100 * c.sys_share('train'):.0f} | {compile_s} |"
        )
    return "\n".join(lines) + "\n"


def summary(cases: list[Case]) -> str:
    lines = ["## Summary", ""]
    verdicts = []
    for c in cases:
        if c.backend == "jax" and c.model in ("LSAM", "LSAM, 1 layer"):
            base = baseline(cases, c.d)
            ratio = c.best["train"] / base.best["train"]
            cpu = c.best_cpu["train"] / base.best_cpu["train"]
            if c.model == "LSAM":
                verdicts.append(ratio <= AIM)
            lines.append(
                f"- d_model = {c.d}: JAX-jitted {c.model} training step / "
                f"torch.nn.LSTM training step, per token: **{ratio:.1f}x** "
                f"({'within' if ratio <= AIM else 'not within'} {AIM:g}x; "
                f"{cpu:.1f}x in CPU time)"
            )
    if verdicts:
        met = (
            "**met**"
            if all(verdicts)
            else ("**not met**" if not any(verdicts) else "**met at some widths only**")
        )
        lines.insert(
            2,
            f"Aim: *the JAX-jitted LSAM within {AIM:g}x of torch.nn.LSTM's "
            f"training step per token at equal hidden size on CPU*: {met} "
            "(the model as configured above; the 1-layer row has as many "
            "recurrences as the baseline).\n",
        )
    for d in sorted({c.d for c in cases}):
        by = {(c.model, c.backend): c for c in cases if c.d == d}
        for model in ("LSAM", "NAMTM", "LSTMBaseline"):
            if (model, "torch") in by and (model, "jax") in by:
                speed = by[(model, "torch")].best["train"] / by[(model, "jax")].best["train"]
                lines.append(
                    f"- d_model = {d}: {model} training step, torch eager ÷ JAX jit: {speed:.1f}x"
                )
    return "\n".join(lines) + "\n"


def plot(cases: list[Case], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = sorted({c.d for c in cases})
    labels = list(
        dict.fromkeys(f"{c.model} ({c.backend})" for c in cases if c.model != "torch.nn.LSTM")
    )
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(labels) * len(widths) + 1.5))
    height = 0.8 / len(widths)
    for j, d in enumerate(widths):
        base = baseline(cases, d).best["train"]
        ratios = {
            f"{c.model} ({c.backend})": c.best["train"] / base
            for c in cases
            if c.d == d and c.model != "torch.nn.LSTM"
        }
        ys = [i + j * height for i in range(len(labels))]
        ax.barh(
            ys,
            [ratios.get(label, np.nan) for label in labels],
            height=height,
            label=f"d_model = {d}",
        )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(AIM, color="red", linestyle="--", linewidth=1, label=f"aim for JAX LSAM: {AIM:g}x")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(
        xscale="log",
        xlabel="training step time ÷ torch.nn.LSTM's (same width, per token)",
        title=f"Training step per token vs torch.nn.LSTM, batch {BATCH}, length {LENGTH}, CPU",
    )
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


# ------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="d_model = 64 only, fewer rounds (about 2 minutes)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="cores the process is pinned to, and torch.set_num_threads",
    )
    parser.add_argument("--out", type=Path, default=DOCS / "models.md")
    args = parser.parse_args()
    # Pin the process before torch and JAX start their thread pools: XLA sizes its pool
    # from the affinity mask (its thread flags alone still left two busy threads), and
    # every thread inherits the mask.
    cores = sorted(os.sched_getaffinity(0))[: args.threads]
    os.sched_setaffinity(0, cores)
    import jax
    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    widths = [64] if args.quick else [64, 128]
    rounds, budget_s, max_calls = (3, 0.2, 5) if args.quick else (5, 0.3, 10)
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()[0]
    cases: list[Case] = []
    for d in widths:
        with tqdm(total=2, desc=f"d_model={d}: build + compile", unit="backend") as bar:
            group = torch_cases(d, rng)
            bar.update()
            group += jax_cases(d, rng)
            bar.update()
        for case in group:  # warm-up
            case.forward()
            case.train()
        for i in (
            bar := tqdm(range(rounds * len(group)), desc=f"d_model={d}: timing", unit="case")
        ):
            case = group[i % len(group)]
            bar.set_postfix_str(f"{case.model} ({case.backend})")
            time_round(case, budget_s, max_calls)
        cases += group
    order = ["torch.nn.LSTM", "LSTM layer"] + [label for label, _ in model_configs(64)]
    cases.sort(key=lambda c: (c.d, order.index(c.model), c.backend != "torch"))
    cpu = platform.processor() or platform.machine()
    header = (
        f"# Models benchmark\n\nMeasured {dt.date.today()} on {cpu} ({os.cpu_count()} cores), "
        f"Python {platform.python_version()}, torch {torch.__version__}, jax {jax.__version__}. "
        f"Batch {BATCH}, sequence length {LENGTH} ({TOKENS:,} tokens a step), vocabulary "
        f"{VOCAB}, float32, CPU; the process pinned to {len(cores)} core"
        f"{'s' if len(cores) > 1 else ''} (`os.sched_setaffinity`, which also sizes XLA's "
        f"thread pool) and `torch.set_num_threads({args.threads})`. Times are per token: the "
        "best call "
        f"over {rounds} interleaved rounds (up to {max_calls} calls a round) divided by "
        f"{TOKENS:,}. Load average (1 min) {load_before:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end.\n"
        f"Command: `python benchmarks/models.py{' --quick' if args.quick else ''}"
        f"{f' --threads {args.threads}' if args.threads != 1 else ''}`.\n\n"
        "- **forward**: torch eager under `no_grad`; JAX: `jax.jit(apply)`.\n"
        "- **train step**: forward + mean token cross-entropy + gradients of all parameters, "
        "no optimizer update; torch eager `backward()`; JAX: "
        "`jax.jit(jax.value_and_grad(loss))`. Compile time (lower + compile) is excluded "
        "from the timings and listed on its own.\n"
        "- **baseline** (÷ LSTM columns): one `torch.nn.LSTM(d_model, d_model, "
        "batch_first=True)` layer on random inputs, loss the mean square of its outputs, "
        "timed in the same run.\n"
        f"- **models**: {describe()}.\n"
        "- **LSTM layer**: `namcore.models.cells.recurrent` (the models' array-API LSTM "
        "cell) as one layer, the same computation as `torch.nn.LSTM`, through the "
        "backend's scan (a Python loop on torch, `jax.lax.scan` on JAX).\n"
        "- **train ÷ LSTM, CPU time**: the same ratio from the best process CPU time (all "
        "threads) per call, a check on the wall-clock ratio when other processes share the "
        "cores (time spent waiting for a core does not count). **train sys %**: the "
        "kernel's share of the CPU time of the training steps; "
        "for jitted functions it is mostly first-touch page faults of XLA's temporary "
        "buffers, allocated afresh on every call."
    )
    text = render(cases, header) + "\n" + summary(cases) + "\n![plot](../benchmarks/models.png)\n"
    atomic_write(args.out, text.encode())
    plot(cases, args.out.with_suffix(".png"))
    print(text)


if __name__ == "__main__":
    main()
