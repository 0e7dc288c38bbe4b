"""``namcore check``: every public primitive on every installed backend vs NumPy float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import namcore
from namcore.testing import BackendReport, compare_backends, format_report, skips

__all__ = ["case_names", "format_results", "run_checks"]


def _memory_case(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch, d_v, d_k = (2, 3), 6, 8
    return {
        "M": rng.normal(size=(*batch, d_v, d_k)),
        "k": rng.normal(size=(*batch, d_k)),
        "v": rng.normal(size=(*batch, d_v)),
        "p": rng.uniform(size=batch),
        "p2": rng.uniform(size=batch),
    }


def _attention_case(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    batch, length, d_k, d_v = (2, 2), 19, 8, 6
    return {
        "q": rng.normal(size=(*batch, length, d_k)),
        "k": rng.normal(size=(*batch, length, d_k)),
        "v": rng.normal(size=(*batch, length, d_v)),
        "p_erase": rng.uniform(size=(*batch, length)),
        # decays in [0.3, 1] with one reset (exactly 0) per row
        "decay": np.where(np.arange(length) == 11, 0.0, rng.uniform(0.3, 1, (*batch, length))),
    }


def _causal(q: Any, k: Any, v: Any) -> Any:
    return namcore.attention(q, k, v, causal=True, chunk_size=8)


def _erase(q: Any, k: Any, v: Any, p_erase: Any) -> Any:
    return namcore.attention(q, k, v, causal=True, p_erase=p_erase)


def _decay(q: Any, k: Any, v: Any, decay: Any) -> Any:
    return namcore.attention(q, k, v, causal=True, decay=decay, chunk_size=8)


def _gated_delta(q: Any, k: Any, v: Any, beta: Any, decay: Any) -> Any:
    return namcore.attention(
        q, k, v, causal=True, p_write=beta, p_erase=beta, decay=decay, chunk_size=8
    )


#: A check case: the function, its NumPy arguments, and the features it uses that
#: some backends are known not to support (see :data:`namcore.testing.LIMITATIONS`).
Case = tuple[Callable[..., Any], tuple[Any, ...], set[str]]


def _model_cases(seed: int) -> dict[str, Case]:
    """Each registered model's small configs (its entry's examples) on padded batches.

    The parameters are array arguments, so every backend gets its own copy.
    """
    from namcore import models

    rng = np.random.default_rng(seed + 2)
    cases = {}
    for entry in models.entries():
        for label, config in entry.example_configs().items():
            tokens = rng.integers(0, config.vocab_size, size=(2, 9))
            mask = np.ones(tokens.shape, dtype=bool)
            mask[1, 6:] = False
            params = models.init_numpy(config, seed, dtype=np.float64)

            def run(tokens: Any, mask: Any, *arrays: Any, _names=tuple(params), _config=config):
                return models.forward(
                    dict(zip(_names, arrays, strict=True)), tokens, mask, config=_config
                )

            # features with known backend limitations (namcore.testing.LIMITATIONS)
            features = set(entry.check_features(config))
            cases[f"model {label}"] = (run, (tokens, mask, *params.values()), features)
    return cases


def _cases(seed: int) -> dict[str, Case]:
    a = _memory_case(seed)
    t = _attention_case(seed)
    qkv = (t["q"], t["k"], t["v"])
    return {
        "unit": (namcore.unit, (a["k"],), set()),
        "write": (namcore.write, (a["M"], a["k"], a["v"]), set()),
        "write (gated, erase)": (namcore.write, (a["M"], a["k"], a["v"], a["p"], a["p2"]), set()),
        "read": (namcore.read, (a["M"], a["k"]), set()),
        "read (gated)": (namcore.read, (a["M"], a["k"], a["p"]), set()),
        "attention": (namcore.attention, qkv, set()),
        "attention (causal)": (_causal, qkv, set()),
        "attention (erase)": (_erase, (*qkv, t["p_erase"]), set()),
        "attention (decay)": (_decay, (*qkv, t["decay"]), set()),
        "attention (gated delta)": (_gated_delta, (*qkv, t["p_erase"], t["decay"]), set()),
        **_model_cases(seed),
    }


def case_names() -> tuple[str, ...]:
    """The names of the cases ``namcore check`` runs, in table order."""
    return tuple(_cases(0))


def run_checks(
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, list[BackendReport]]:
    """Compare each case on each backend; returns ``{case name: reports}``.

    ``only`` keeps the cases whose name contains one of its strings (e.g.
    ``["model bag"]`` for one model); ``ValueError`` if that leaves none.
    """
    cases = _cases(seed)
    if only is not None:
        cases = {name: case for name, case in cases.items() if any(s in name for s in only)}
        if not cases:
            raise ValueError(f"no check case matches {', '.join(map(repr, only))}")
    results: dict[str, list[BackendReport]] = {}
    for name, (fn, args, features) in cases.items():
        if progress is not None:
            progress(name)
        results[name] = compare_backends(
            fn, *args, backends=backends, dtypes=dtypes, skip=skips(features)
        )
    return results


def format_results(
    results: dict[str, list[BackendReport]], *, verbose: bool = False
) -> tuple[str, bool]:
    """The ``namcore check`` table of :func:`run_checks`' results, and whether any failed.

    One row per (backend, dtype), one column per case: the largest relative error
    against NumPy float64 and ``ok``/``FAIL``, or ``skip``. With ``verbose`` (or any
    failure) each case's per-backend report follows.
    """
    rows: list[tuple[str, str]] = []
    for reports in results.values():
        for r in reports:
            if (r.backend, r.dtype) not in rows:
                rows.append((r.backend, r.dtype))
    lines = ["max relative error vs NumPy float64, per backend (rows) and case (columns)"]
    widths = [max(len(n), 12) + 2 for n in results]
    header = f"{'backend':<18} {'dtype':<8}" + "".join(
        f"{n:>{w}}" for n, w in zip(results, widths, strict=True)
    )
    lines += [header, "-" * len(header)]
    failed = False
    for row_key in rows:
        line = f"{row_key[0]:<18} {row_key[1]:<8}"
        for reports, w in zip(results.values(), widths, strict=True):
            found = next((r for r in reports if (r.backend, r.dtype) == row_key), None)
            if found is None or found.skipped:
                cell = "skip"
            elif found.error or found.comparison is None:
                cell, failed = "FAIL (error)", True
            else:
                failed |= not found.comparison.passed
                verdict = "ok" if found.comparison.passed else "FAIL"
                cell = f"{found.comparison.max_rel_error:.1e} {verdict}"
            line += f"{cell:>{w}}"
        lines.append(line)
    if verbose or failed:
        for name, reports in results.items():
            lines += ["", format_report(reports, f"{name}:")]
    lines += ["", "FAIL: backends disagree" if failed else "all backends agree"]
    return "\n".join(lines), failed
