"""The few-shot report: ``results.json``, ``results.md`` and ``fewshot.png``.

Everything here reads the results dict :func:`namcore.fewshot.run` returns; nothing
trains. Files are written atomically (:func:`namcore._io.atomic_write`).

Examples
--------
>>> cell = {"mean": 0.5, "ci95": 0.01, "episodes": 600}
>>> metrics = {k: cell for k in METRIC_LABELS}
>>> results = {"data": "synthetic", "preset": "smoke", "backend": "torch", "seed": 0,
...            "setup": {"way": 5}, "stage1": {"base_test_accuracy": 0.9},
...            "results": {"1-shot": {"cosine": metrics, "nam": metrics,
...                                   "gates": {"p_write": 0.5, "p_erase": 0.3}}}}
>>> print(markdown(results).splitlines()[6])
| Novel (among novel classes) | 50.00 ± 1.00 | 50.00 ± 1.00 | +0.00 |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from namcore._io import atomic_write

__all__ = ["FILES", "METRIC_LABELS", "markdown", "plot", "write_all"]

#: The files :func:`write_all` writes into the output folder.
FILES = ("results.json", "results.md", "fewshot.png")

#: How the report names each metric.
METRIC_LABELS = {
    "novel": "Novel (among novel classes)",
    "base": "Base (among base classes)",
    "both": "Both (among all classes)",
    "base_false_positives": "Base false positives (novel query → base class)",
    "novel_false_positives": "Novel false positives (base query → novel class)",
}

_METHOD_LABELS = {"cosine": "Cosine (feature averaging)", "nam": "NAM (write/erase)"}


def _cell(entry: dict[str, float]) -> str:
    return f"{100 * entry['mean']:.2f} ± {100 * entry['ci95']:.2f}"


def markdown(results: dict[str, Any]) -> str:
    """``results.md``: one table per shot count, cosine beside NAM, in percent."""
    setup = results["setup"]
    lines = [
        f"# Few-shot: NAM against the cosine classifier ({results['data']}, "
        f"{results['preset']} preset, {results['backend']})",
        "",
        f"Generalized {setup['way']}-way few-shot episodes: mean over test episodes "
        "± the half-width of its 95% confidence interval, in percent. Both classifiers "
        "score the same episodes; the last column is their per-episode difference "
        "with its own (paired) interval.",
        "",
    ]
    for shots, row in results["results"].items():
        lines += [
            f"| {shots} | {_METHOD_LABELS['cosine']} | {_METHOD_LABELS['nam']} | NAM − cosine |",
            "|---|---|---|---|",
        ]
        for key, label in METRIC_LABELS.items():
            cos, nam = row["cosine"][key], row["nam"][key]
            diff = row.get("nam_minus_cosine", {}).get(key)
            if diff is None:
                delta = f"{100 * (nam['mean'] - cos['mean']):+.2f}"
            else:
                delta = f"{100 * diff['mean']:+.2f} ± {100 * diff['ci95']:.2f}"
            lines.append(f"| {label} | {_cell(cos)} | {_cell(nam)} | {delta} |")
        episodes = row["cosine"]["novel"].get("episodes")
        gates = row.get("gates", {})
        lines += [
            "",
            f"{episodes} episodes; NAM's mean p_write {gates.get('p_write', float('nan')):.3f}, "
            f"mean p_erase {gates.get('p_erase', float('nan')):.3f}.",
            "",
        ]
    stage1 = results.get("stage1", {}).get("base_test_accuracy")
    if stage1 is not None:
        lines.append(
            f"Stage 1 (base classes only, cosine classifier): {100 * stage1:.2f}% on held-out "
            "base images."
        )
        lines.append("")
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: str | Path) -> None:
    """Bars of every metric, cosine beside NAM with their 95% intervals, one panel per shot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["results"]
    keys = list(METRIC_LABELS)
    short = ["novel", "base", "both", "base FP", "novel FP"]
    fig, axes = plt.subplots(1, len(rows), figsize=(5.2 * len(rows), 4.1), squeeze=False)
    width = 0.38
    for ax, (shots, row) in zip(axes[0], rows.items(), strict=True):
        for i, (method, colour) in enumerate((("cosine", "#8c8c8c"), ("nam", "#1f77b4"))):
            means = [100 * row[method][k]["mean"] for k in keys]
            errors = [100 * row[method][k]["ci95"] for k in keys]
            xs = [j + (i - 0.5) * width for j in range(len(keys))]
            ax.bar(xs, means, width, yerr=errors, capsize=3, color=colour,
                   label=_METHOD_LABELS[method])  # fmt: skip
        ax.set_xticks(range(len(keys)), short)
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of queries")
        ax.set_title(f"{results['data']}: {results['setup']['way']}-way {shots}")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.92))
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)


def write_all(results: dict[str, Any], out: str | Path) -> list[Path]:
    """Write :data:`FILES` into ``out`` (created if needed); their paths."""
    out = Path(out)
    paths = [out / name for name in FILES]
    atomic_write(paths[0], (json.dumps(results, indent=2) + "\n").encode())
    atomic_write(paths[1], markdown(results).encode())
    plot(results, paths[2])
    return paths
