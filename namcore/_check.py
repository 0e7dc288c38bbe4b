"""``namcore check``: every public primitive on every installed backend vs NumPy float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import namcore
from namcore.testing import BackendReport, compare_backends, format_report, skips

__all__ = [
    "DTYPES",
    "case_names",
    "check_backends",
    "check_dtypes",
    "format_results",
    "run_checks",
    "tally",
]

#: The dtypes ``namcore check`` runs in: the floating dtypes :mod:`namcore.testing` has
#: a tolerance for. Results are compared with NumPy float64, so only floating dtypes
#: make sense (an integer ``unit`` is a ``TypeError``, not a disagreement).
DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")


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


def _listed(option: str, text: str | None, names: Sequence[str], kind: str) -> None:
    if not names:
        raise ValueError(
            f"{option} {text or ''!r} names no {kind}; give a comma-separated list "
            f"(or leave {option} out for the default)"
        )


def check_backends(names: Sequence[str] | None, option: str = "--backends") -> list[str]:
    """The backends to check: ``names`` validated, or every usable one for ``None``.

    Raises
    ------
    ValueError
        ``names`` is empty, or holds a name that is not a backend, a backend that
        is not installed (the message names the extra to install) or one without a
        device. Checking nothing is an error, never a pass.

    Examples
    --------
    >>> from namcore._check import check_backends
    >>> check_backends(["numpy"])
    ['numpy']
    >>> check_backends(["numpy", "tensorflow"])
    Traceback (most recent call last):
    ...
    ValueError: --backends: unknown backend 'tensorflow'; choose from numpy, \
array_api_strict, torch, jax, cupy, ndonnx, dask
    """
    from namcore import backends
    from namcore.testing import usable_backends

    if names is None:
        return usable_backends()
    _listed(option, ",".join(names), names, "backend")
    for name in names:
        if name not in backends.NAMES:
            raise ValueError(
                f"{option}: unknown backend {name!r}; choose from {', '.join(backends.NAMES)}"
            )
        backend = backends.get(name)
        if not backend.is_installed():
            raise ValueError(
                f"{option}: backend {name!r} is not installed ({backends.install_hint(name)})"
            )
        if not backend.devices():
            raise ValueError(f"{option}: backend {name!r} is installed but has no usable device")
    return list(dict.fromkeys(names))


def check_dtypes(dtypes: Sequence[str], option: str = "--dtypes") -> list[str]:
    """``dtypes`` validated: each one of :data:`DTYPES`, at least one.

    Raises
    ------
    ValueError
        An empty list, a name that is no dtype, or a dtype that is not floating
        (``int8``: results are compared with NumPy float64, and the primitives
        refuse integer arrays).

    Examples
    --------
    >>> from namcore._check import check_dtypes
    >>> check_dtypes(["float32", "bfloat16"])
    ['float32', 'bfloat16']
    >>> check_dtypes(["int8"])
    Traceback (most recent call last):
    ...
    ValueError: --dtypes: 'int8' is not a floating dtype; namcore check compares \
floating results with NumPy float64: choose from float16, bfloat16, float32, float64
    """
    _listed(option, ",".join(dtypes), dtypes, "dtype")
    for name in dtypes:
        if name in DTYPES:
            continue
        try:
            kind = np.dtype(name).kind
        except TypeError:
            kind = "f"  # no dtype at all: as unknown as a float namcore has no tolerance for
        if kind == "f":
            raise ValueError(f"{option}: unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
        raise ValueError(
            f"{option}: {name!r} is not a floating dtype; namcore check compares "
            f"floating results with NumPy float64: choose from {', '.join(DTYPES)}"
        )
    return list(dict.fromkeys(dtypes))


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
    ``["model bag"]`` for one model). ``backends`` and ``dtypes`` are validated by
    :func:`check_backends` and :func:`check_dtypes`.

    Raises
    ------
    ValueError
        An unknown, missing or empty list of backends or dtypes, or an ``only``
        that matches no case: a check that would check nothing.
    """
    dtypes = check_dtypes(dtypes)
    backends = check_backends(backends)
    cases = _cases(seed)
    if only is not None:
        _listed("--only", ",".join(only), only, "case")
        matching = {name: case for name, case in cases.items() if any(s in name for s in only)}
        if not matching:
            raise ValueError(
                f"--only: no check case matches {', '.join(map(repr, only))}; "
                f"the cases are {', '.join(cases)}"
            )
        cases = matching
    results: dict[str, list[BackendReport]] = {}
    for name, (fn, args, features) in cases.items():
        if progress is not None:
            progress(name)
        results[name] = compare_backends(
            fn, *args, backends=backends, dtypes=dtypes, skip=skips(features)
        )
    return results


def tally(results: dict[str, list[BackendReport]]) -> tuple[int, int, list[str]]:
    """How many cells of :func:`run_checks`' results ran, how many were skipped, and why.

    Returns ``(checked, skipped, reasons)``, the reasons distinct and in table order.
    """
    reports = [r for rows in results.values() for r in rows]
    reasons = list(dict.fromkeys(r.skipped for r in reports if r.skipped))
    skipped = sum(1 for r in reports if r.skipped)
    return len(reports) - skipped, skipped, reasons


def format_results(
    results: dict[str, list[BackendReport]], *, verbose: bool = False
) -> tuple[str, bool]:
    """The ``namcore check`` table of :func:`run_checks`' results, and whether any failed.

    One row per (backend, dtype), one column per case: the largest relative error
    against NumPy float64 and ``ok``/``FAIL``, or ``skip``. With ``verbose`` (or any
    failure) each case's per-backend report follows. The last line says whether the
    backends agree and how many cells were skipped; if every cell was skipped it
    says that nothing was checked, and that counts as failed: a check of nothing
    never passes.
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
    checked, skipped, reasons = tally(results)
    if not checked:
        failed = True
        why = f"every cell was skipped ({'; '.join(reasons)})" if reasons else "no cell to run"
        verdict = f"NOTHING CHECKED: {why}"
    else:
        verdict = "FAIL: backends disagree" if failed else "all backends agree"
        if skipped:
            why = "; ".join(reasons)
            if len(why) > 100:  # the known limitations are paragraphs: the tables give them
                plural = "s" if len(reasons) > 1 else ""
                why = f"{len(reasons)} reason{plural}, " + (
                    "in the tables above" if verbose else "listed by --verbose"
                )
            verdict += f"; {skipped} of {checked + skipped} cells skipped ({why})"
    lines += ["", verdict]
    return "\n".join(lines), failed
