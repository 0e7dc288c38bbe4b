"""The output folder of ``namcore reproduce``: which folders it writes, and its report.

:func:`~namcore.training.reproduce.reproduce` writes only into a folder it made: a
new or empty folder, one holding its marker ``.namcore-reproduce.json`` (the
settings of the reproduction: preset, seed, training backend), or one an earlier
version wrote (nothing but ``runs/`` and the report files, its ``results.json`` a
reproduction's). Anything else, a folder holding a ``results.md`` of the user's for
instance, is refused with one line, and so are settings other than the recorded ones.

A new report never loses a cell of the previous one: :func:`merge` carries the
previous entry of every cell this call did not score (not asked for, or failed) into
the new report, marked ``"from_earlier_call": true``.

Examples
--------
>>> import tempfile
>>> from namcore.training.reproduce_folder import check_out
>>> check_out(tempfile.mkdtemp(), {"preset": "smoke", "seed": 0, "backend": "torch"})
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from namcore._io import atomic_write

from .errors import TrainingError
from .lock import LOCK_NAME

__all__ = ["MARKER", "REPORT_FILES", "SETTINGS", "check_out", "merge", "previous", "write_marker"]

#: The file that marks a folder as written by ``namcore reproduce``.
MARKER = ".namcore-reproduce.json"
#: The report files (:func:`namcore.training.report.write_all`).
REPORT_FILES = ("results.json", "results.md", "accuracy_vs_length.png")
#: The settings a reproduction folder keeps: every call on it must use the same.
SETTINGS = ("preset", "seed", "backend")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def previous(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The summary in ``out/results.json`` if it is a reproduction's, else None."""
    data = _read(Path(out) / "results.json")
    if data is None or not isinstance(data.get("runs"), list):
        return None
    return data


def _ours(name: str) -> bool:
    """Bookkeeping: the lock, the marker, temporary files of killed writes."""
    return name in (LOCK_NAME, MARKER) or (name.startswith(".") and name.endswith(".tmp"))


def check_out(out: str | os.PathLike[str], settings: dict[str, Any]) -> None:
    """``TrainingError`` unless ``namcore reproduce`` may write into ``out`` with ``settings``.

    Parameters
    ----------
    out : path-like
        The output folder (it may not exist yet).
    settings : dict
        This call's ``preset``, ``seed`` and ``backend``.

    Raises
    ------
    TrainingError
        ``out`` is a file; holds files ``namcore reproduce`` did not write; or holds a
        reproduction with other settings.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    if not out.is_dir():
        return
    names = {entry.name for entry in out.iterdir() if not _ours(entry.name)}
    recorded = _read(out / MARKER)
    if recorded is None:
        if not names:
            return
        foreign = sorted(names - {"runs", *REPORT_FILES})
        report = previous(out)
        if not foreign and (report is not None or not names & set(REPORT_FILES)):
            recorded = report or {}
        else:
            shown = ", ".join(foreign[:3] or sorted(names & set(REPORT_FILES)))
            raise TrainingError(
                f"--out {out} is not a folder of namcore reproduce (it holds {shown}); "
                "choose an empty or new folder"
            )
    for key in SETTINGS:
        if key in recorded and recorded[key] != settings[key]:
            raise TrainingError(
                f"{out} holds a reproduction with --{key} {recorded[key]}, not "
                f"{settings[key]}; rerun with --{key} {recorded[key]} or choose another --out"
            )


def write_marker(out: str | os.PathLike[str], settings: dict[str, Any]) -> None:
    """Mark ``out`` as a reproduction folder with ``settings`` (unless it is already)."""
    path = Path(out) / MARKER
    if _read(path) is None:
        data = {"written_by": "namcore reproduce", **{k: settings[k] for k in SETTINGS}}
        atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def _cell(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["task"], entry["model"]


def merge(
    summary: dict[str, Any],
    old: dict[str, Any] | None,
    task_names: list[str],
    models: list[str],
) -> dict[str, Any]:
    """``summary`` with the entries of ``old`` for every cell it did not score.

    Parameters
    ----------
    summary : dict
        This call's summary; its ``"runs"`` are the cells scored now.
    old : dict or None
        The previous report's summary (:func:`previous`), or None.
    task_names, models : list of str
        The order of the report's rows and columns (those asked for first; the others
        in the order of ``old``).

    Returns
    -------
    dict
        A copy of ``summary``; carried entries have ``"from_earlier_call": True``.

    Examples
    --------
    >>> old = {"runs": [{"task": "add", "model": "lstm", "train_s": 1.0}]}
    >>> new = {"runs": [{"task": "reduce", "model": "lstm", "train_s": 2.0}]}
    >>> [(e["task"], e.get("from_earlier_call", False))
    ...  for e in merge(new, old, ["reduce"], ["lstm"])["runs"]]
    [('reduce', False), ('add', True)]
    """
    runs = list(summary["runs"])
    scored = {_cell(e) for e in runs}
    for entry in (old or {}).get("runs", []):
        readable = isinstance(entry, dict) and {"task", "model"} <= set(entry)
        if readable and _cell(entry) not in scored:
            runs.append({**entry, "from_earlier_call": True})
            scored.add(_cell(entry))
    tasks = list(dict.fromkeys([*task_names, *(e["task"] for e in runs)]))
    names = list(dict.fromkeys([*models, *(e["model"] for e in runs)]))
    runs.sort(key=lambda e: (tasks.index(e["task"]), names.index(e["model"])))
    return {**summary, "runs": runs}
