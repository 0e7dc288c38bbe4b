"""The reproduction report: ``results.json``, ``results.md`` and the accuracy plot.

Everything here reads the summary :func:`~namcore.training.reproduce.reproduce` builds;
nothing trains. ``results.md`` puts each of our sequence accuracies beside the number
of the paper's Table 2 (:mod:`~namcore.training.paper`); ``accuracy_vs_length.png``
draws sequence accuracy against input length, one line per model and one panel per
task, with the training lengths shaded. The ``lra`` grid's ``results.md`` is Table 1
(:func:`lra_markdown`), with ``step_time_vs_length.png`` (:func:`plot_step_times`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from namcore import tasks
from namcore._io import atomic_write

from .paper import TABLE1, TABLE2

__all__ = [
    "SPLIT_LABELS",
    "by_length",
    "console_table",
    "lra_markdown",
    "markdown",
    "model_label",
    "one_line",
    "plot",
    "plot_step_times",
    "speedups",
    "write_all",
]


def model_label(model: str) -> str:
    """How the report names model ``model``: its entry's label (the paper's name)."""
    from namcore.models import get_entry

    try:
        return get_entry(model).label
    except ValueError:  # a run of a plug-in that is no longer installed
        return model


#: How the report names each split.
SPLIT_LABELS: dict[str, str] = {
    "train": "Train",
    "test": "Test",
    "id": "ID",
    "od_easy": "OD-easy",
    "od_hard": "OD-hard",
    "od_extra": "OD 17-22",
    "od_length": "OD-length",
    "od_depth": "OD-depth",
    "val": "Val",
}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _scored_splits(task: str) -> list[str]:
    names = list(tasks.splits(task))
    # The digit tasks' train split (1-10) only repeats ID; SCAN's is the paper's "Train".
    return [n for n in names if n != "train"] if "id" in names else names


def one_line(entry: dict[str, Any]) -> str:
    """A run's accuracies per split and its training time, on one line."""
    scores = " ".join(
        f"{SPLIT_LABELS.get(s, s)} {_percent(entry['splits'][s]['accuracy'])}"
        for s in _scored_splits(entry["task"])
        if s in entry["splits"]
    )
    return f"{scores} (%), trained in {entry['train_s']:.0f} s"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else str(n)


def _settings(summary: dict[str, Any], title: str) -> list[str]:
    """The title and the settings lines every ``results.md`` starts with."""
    machine = summary["machine"]
    p = summary["preset_values"]
    return [
        f"# {title}, preset `{summary['preset']}`",
        "",
        f"- Command: `{summary.get('command') or 'namcore reproduce'}`",
        f"- Machine: {machine['cpu']}, {machine['cpu_count']} CPUs, {machine['platform']}, "
        f"Python {machine['python']}",
        f"- Training backend: {summary['backend']}; scored on {summary['eval_backend']} "
        f"({', '.join(f'{k} {v}' for k, v in summary['versions'].items())})",
        f"- Wall time of this call: {_minutes(summary['wall_s'])} for "
        f"{len(summary['runs'])} runs, {summary['jobs']} at a time; training time summed "
        f"over the runs: {_minutes(sum(e['train_s'] for e in summary['runs']))}",
        f"- Preset: d_model {p['d_model']}, batch {p['batch_size']}, {p['steps']} steps, "
        f"Adam lr {p['lr']} (x{p['lr_decay']} every {p['decay_every']} steps), clip "
        f"{p['clip']}, length curriculum over {p['curriculum_steps']} steps, "
        f"{p['eval_size']} samples per evaluation split; seed {summary['seed']}",
    ]


def markdown(summary: dict[str, Any]) -> str:
    """``results.md``: settings, then our accuracy beside the paper's per task and split."""
    if summary.get("grid") == "lra":
        return lra_markdown(summary)
    runs = {(e["task"], e["model"]): e for e in summary["runs"]}
    models = list(dict.fromkeys(e["model"] for e in summary["runs"]))
    task_names = list(dict.fromkeys(e["task"] for e in summary["runs"]))
    title = (
        "Reproduction of Table 2"
        if set(task_names) & set(TABLE2) and not set(models) & {"ham", "ham-soft"}
        else "HAM tasks"
    )
    lines = [
        *_settings(summary, title),
        "",
        "Sequence accuracy in percent (a sample counts only if every answer token is right), "
        "of the checkpoint with the best accuracy on the selection split (OD-easy; for "
        "SCAN and Dyck the first out-of-distribution split), as in the paper; ties go to "
        "the checkpoint with the best mean over all splits. Each cell is "
        "**ours** (paper), or **ours** alone where the paper has no number (Dyck, the "
        "17–22 split, models the paper did not run). The paper's models have 22–40M parameters "
        "and train for 100–150 epochs on a GPU.",
        "",
    ]
    header = "| Task | Split | " + " | ".join(model_label(m) for m in models) + " |"
    lines += [header, "|---|---|" + "---|" * len(models)]
    for task in task_names:
        for split in _scored_splits(task):
            cells = []
            for model in models:
                entry = runs.get((task, model))
                ours = entry["splits"].get(split, {}).get("accuracy") if entry else None
                paper = TABLE2.get(task, {}).get(split, {}).get(model)
                text = f"**{_percent(ours)}**" if ours is not None else "not run"
                cells.append(text + (f" ({paper:g})" if paper is not None else ""))
            lines.append(
                f"| {task} | {SPLIT_LABELS.get(split, split)} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "Parameters, training time and best step per run:",
        "",
        "| Task | " + " | ".join(model_label(m) for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for task in task_names:
        cells = []
        for model in models:
            entry = runs.get((task, model))
            cells.append(
                "not run"
                if entry is None
                else f"{_count(entry['parameters'])}, {_minutes(entry['train_s'])}, "
                f"step {entry['best_step']}/{entry['steps']}"
            )
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    if summary.get("failures"):
        lines += ["", "Runs that failed:", ""]
        lines += [f"- {f['task']} / {f['model']}: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines) + "\n"


def console_table(summary: dict[str, Any]) -> str:
    """A plain-text table of our accuracies: one row per model, one column per split."""
    models = list(dict.fromkeys(e["model"] for e in summary["runs"]))
    runs = {(e["task"], e["model"]): e for e in summary["runs"]}
    columns = [
        (t, s) for t in dict.fromkeys(e["task"] for e in summary["runs"]) for s in _scored_splits(t)
    ]
    names = [f"{t} {SPLIT_LABELS.get(s, s)}" for t, s in columns]
    widths = [max(len(n), 6) for n in names]
    first = max([len(model_label(m)) for m in models] + [5])
    lines = [
        "sequence accuracy (%)",
        f"{'model':<{first}}  "
        + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True)),
    ]
    for model in models:
        cells = []
        for (task, split), w in zip(columns, widths, strict=True):
            entry = runs.get((task, model))
            value = entry["splits"].get(split, {}).get("accuracy") if entry else None
            cells.append(f"{_percent(value):>{w}}")
        lines.append(f"{model_label(model):<{first}}  " + "  ".join(cells))
    return "\n".join(lines)


def by_length(entry: dict[str, Any]) -> dict[int, float]:
    """Accuracy per input length of one run, each length from its first scored split."""
    task = entry["task"]
    merged: dict[int, float] = {}
    for split in [*_scored_splits(task), *tasks.splits(task)]:
        for length, accuracy in entry["splits"].get(split, {}).get("by_length", {}).items():
            merged.setdefault(int(length), float(accuracy))
    return dict(sorted(merged.items()))


def _fit_title_and_legend(fig: Any, title: str, handles: list[Any], labels: list[str]) -> None:
    """Add the title and the legend (below the panels) so that both fit the figure's width.

    One panel is narrower than the title's line and a legend of many models: the
    title breaks after its colon and the legend takes as many rows as it needs, and
    the figure grows by the legend's extra rows.
    """
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    columns = max(1, min(7, len(labels)))
    legend = fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False)
    while columns > 1 and legend.get_window_extent(renderer).width > width:
        legend.remove()
        columns -= 1
        legend = fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False)
    text = fig.suptitle(title)
    if text.get_window_extent(renderer).width > 0.96 * width:
        text.set_text(title.replace(": ", ":\n", 1))
    legend_height = legend.get_window_extent(renderer).height / fig.dpi  # inches
    if legend_height > 0.4:  # more than one row: a taller figure, panels as high as before
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + legend_height - 0.3)
    bottom = legend_height / fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, min(0.5, bottom + 0.01), 1, 1))


def _binned(points: dict[int, float], lo: int, hi: int, n: int = 8) -> dict[float, float]:
    """Mean accuracy over each of ``n`` equal ranges of ``lo..hi``, at their centres."""
    out = {}
    for i in range(n):
        a, b = lo + (hi + 1 - lo) * i // n, lo + (hi + 1 - lo) * (i + 1) // n
        values = [v for length, v in points.items() if a <= length < b]
        if values:
            out[(a + b - 1) / 2] = sum(values) / len(values)
    return out


def plot(summary: dict[str, Any], path: str | Path) -> None:
    """Write ``accuracy_vs_length.png``: one panel per task, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task_names = list(dict.fromkeys(e["task"] for e in summary["runs"]))
    if not task_names:
        return
    columns = min(3, len(task_names))
    rows = -(-len(task_names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    for ax, task in zip(axes.flat, task_names, strict=False):
        lo, hi = tasks.splits(task)["train"]
        ax.axvspan(lo - 0.5, hi + 0.5, color="0.9", label="training lengths")
        for entry in (e for e in summary["runs"] if e["task"] == task):
            points: dict[Any, float] = by_length(entry)
            if hi - lo > 60:  # ListOps: too many lengths to draw one by one
                points = _binned(points, lo, hi)
            ax.plot(
                list(points),
                [100 * v for v in points.values()],
                marker=".",
                label=model_label(entry["model"]),
            )
        ax.set_title(task)
        ax.set_xlabel(tasks.get(task).length_name.replace("_", " "))
        ax.set_ylabel("sequence accuracy (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(task_names) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    _fit_title_and_legend(
        fig,
        f"namcore reproduce --preset {summary['preset']}: accuracy against length",
        handles,
        labels,
    )
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def write_all(out: str | Path, summary: dict[str, Any]) -> None:
    """Write ``results.json``, ``results.md`` and ``accuracy_vs_length.png`` into ``out``
    (and ``step_time_vs_length.png`` when the summary has step times)."""
    out = Path(out)
    atomic_write(out / "results.json", (json.dumps(summary, indent=2) + "\n").encode())
    atomic_write(out / "results.md", markdown(summary).encode())
    plot(summary, out / "accuracy_vs_length.png")
    if summary.get("step_times"):
        plot_step_times(summary, out / "step_time_vs_length.png")


def speedups(summary: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per model and length, the softmax Transformer's step time over the model's.

    Examples
    --------
    >>> speedups({"step_times": {"transformer": {"64": 0.5}, "nam-transformer": {"64": 0.25}}})
    {'transformer': {'64': 1.0}, 'nam-transformer': {'64': 2.0}}
    """
    times = summary.get("step_times") or {}
    base = times.get("transformer") or {}
    return {
        model: {
            length: base[length] / t if t and base.get(length) else None
            for length, t in by_length_times.items()
        }
        for model, by_length_times in times.items()
    }


def _ratio(value: float | None) -> str:  # a speed relative to the softmax Transformer
    return "—" if value is None else f"{value:.2f}x"


def lra_markdown(summary: dict[str, Any]) -> str:
    """``results.md`` of the ``lra`` grid: our ListOps numbers beside the paper's Table 1."""
    runs, paper = {e["model"]: e for e in summary["runs"]}, TABLE1["listops"]
    task = summary["runs"][0]["task"] if summary["runs"] else "listops"
    lo, hi = tasks.splits(task)["test"]
    times, ratios = summary.get("step_times") or {}, speedups(summary)
    longest = max((int(n) for t in times.values() for n in t), default=None)
    base_s = runs.get("transformer", {}).get("train_s")
    lines = [
        *_settings(summary, "Table 1: LRA ListOps"),
        f"- Task `{task}`: expressions of {lo}–{hi} tokens (LRA's: 500–2000; the paper's "
        "runs: up to 1,000 or 2,000), labels 0–9 read at one answer position",
        "",
        "Accuracy in percent (the checkpoint with the best validation accuracy). Speed: the "
        "softmax Transformer's time per training step over the model's, measured at length "
        f"{longest} and over the whole run (evaluation and data included); the paper's (in "
        "parentheses) is from an RTX 3080 at LRA's lengths.",
        "",
        "| Model | Test acc. | Val acc. | Speed at "
        f"{longest} | Speed, whole run | Parameters | Training time | Best step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, e in runs.items():
        ref = paper.get(model)
        test = _percent(e["splits"].get("test", {}).get("accuracy"))
        test = f"**{test}**" + (f" ({ref['accuracy']:g})" if ref else "")
        fast = _ratio(ratios.get(model, {}).get(str(longest)))
        fast += f" ({ref['speedup']:g}x)" if ref else ""
        whole = _ratio(base_s / e["train_s"] if base_s and e["train_s"] else None)
        lines.append(
            f"| {model_label(model)} | {test} | "
            f"{_percent(e['splits'].get('val', {}).get('accuracy'))} | {fast} | {whole} | "
            f"{_count(e['parameters'])} | {_minutes(e['train_s'])} | "
            f"{e['best_step']}/{e['steps']} |"
        )
    if times:
        lengths = sorted({int(n) for t in times.values() for n in t})
        lines += [
            "",
            "Milliseconds per training step (batch of the preset, every position real), "
            "and the speed relative to the softmax Transformer:",
            "",
            "| Length | " + " | ".join(model_label(m) for m in times) + " |",
            "|---|" + "---|" * len(times),
        ]
        for n in lengths:
            cells = [
                "failed" if t is None else f"{1000 * t:.0f} ({_ratio(ratios[m][str(n)])})"
                for m, t in ((m, by_n.get(str(n))) for m, by_n in times.items())
            ]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    if summary.get("failures"):
        lines += ["", "Runs that failed:", ""]
        lines += [f"- {f['task']} / {f['model']}: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines) + "\n"


def plot_step_times(summary: dict[str, Any], path: str | Path) -> None:
    """Write ``step_time_vs_length.png``: seconds per training step against length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.9))
    for model, by_n in summary["step_times"].items():
        points = sorted((int(n), t) for n, t in by_n.items() if t is not None)
        ax.plot(*zip(*points, strict=True), marker="o", label=model_label(model))
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="sequence length (tokens)", ylabel="seconds per training step")
    batch = summary["preset_values"]["batch_size"]
    ax.set_title(f"{summary['backend']}, preset {summary['preset']}, batch {batch}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
