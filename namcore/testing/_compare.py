"""Run one function on every installed backend and compare with NumPy float64."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from namcore import _compat
from namcore import backends as _backends

from ._tolerance import Comparison, compare_to_reference, tolerance_for

__all__ = [
    "BackendReport",
    "assert_backends_agree",
    "compare_backends",
    "format_report",
    "usable_backends",
]


@dataclass(frozen=True)
class BackendReport:
    """One backend × dtype run of a function, compared with the float64 reference."""

    backend: str
    dtype: str
    device: str
    comparison: Comparison | None
    skipped: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        """True when the run was skipped on purpose or matched the reference."""
        if self.skipped:
            return True
        return not self.error and self.comparison is not None and self.comparison.passed


def usable_backends() -> list[str]:
    """Installed backends that also have a device (CuPy without a GPU is left out)."""
    return [name for name in _backends.installed() if _backends.get(name).devices()]


def _to_backend(value: Any, backend: _backends.Backend, dtype: str) -> Any:
    if isinstance(value, np.ndarray | np.generic) and np.asarray(value).dtype.kind == "f":
        return backend.from_numpy(np.asarray(value), dtype=dtype)
    if isinstance(value, np.ndarray | np.generic):
        return backend.from_numpy(np.asarray(value))
    return value


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def _run(
    fn: Callable[..., Any], inputs: Sequence[Any], backend: _backends.Backend, dtype: str, jit: bool
) -> tuple[np.ndarray, ...]:
    args = [_to_backend(value, backend, dtype) for value in inputs]
    if jit:  # everything but the arrays is static (Python numbers, flags)
        static = [i for i, a in enumerate(args) if not _compat.is_array_api_obj(a)]
        out = backend.jit(fn, static_argnums=static)(*args)
    else:
        out = fn(*args)
    return tuple(backend.to_numpy(o) for o in _as_tuple(out))


def compare_backends(
    fn: Callable[..., Any],
    *numpy_inputs: Any,
    backends: Iterable[str] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    jax_jit: bool = True,
    skip: Mapping[tuple[str, str], str] | None = None,
) -> list[BackendReport]:
    """Run ``fn`` on each backend from the same NumPy inputs; compare with NumPy float64.

    Floating NumPy inputs are converted to each backend in each of ``dtypes``; other
    NumPy inputs (boolean masks, integer indices) are converted unchanged, and Python
    objects are passed as they are. The reference is ``fn`` on the NumPy inputs in
    float64. ``fn`` may return an array or a tuple of arrays.

    Parameters
    ----------
    fn : callable
        A function of arrays written against the array API (e.g. ``namcore.write``).
    *numpy_inputs
        The arguments, as NumPy arrays or Python objects.
    backends : iterable of str, optional
        Backend names (see :data:`namcore.backends.NAMES`). Default: every installed
        backend that has a device.
    dtypes : sequence of str, optional
        Floating dtypes to run in. A backend that cannot create a dtype is reported as
        skipped. Default: float32 and float64.
    jax_jit : bool, optional
        Also run, on backends whose :meth:`~namcore.backends.Backend.jit` compiles
        (JAX), ``fn`` compiled by it, with the non-array arguments static. Default:
        True.
    skip : mapping, optional
        ``{(backend, dtype): reason}`` of known limitations (see
        :func:`namcore.testing.skips`), reported as skipped with the reason.

    Returns
    -------
    list of BackendReport
        One row per backend, dtype (and JAX mode).
    """
    np_backend = _backends.get("numpy")
    reference = _run(fn, numpy_inputs, np_backend, "float64", jit=False)
    names = list(usable_backends() if backends is None else backends)
    known = dict(skip or {})
    reports: list[BackendReport] = []
    for name in names:
        backend = _backends.get(name)
        compiled = backend.jit_compiles and jax_jit
        modes = [(name, False)] + ([(f"{name} (jit)", True)] if compiled else [])
        for label, jit in modes:
            for dtype in dtypes:
                if not backend.supports_dtype(dtype):
                    reports.append(
                        BackendReport(
                            label, dtype, "", None, skipped=f"{name} cannot create {dtype}"
                        )
                    )
                    continue
                if (name, dtype) in known:
                    reports.append(
                        BackendReport(label, dtype, "", None, skipped=known[name, dtype])
                    )
                    continue
                device = str(backend.default_device())
                try:
                    outputs = _run(fn, numpy_inputs, backend, dtype, jit)
                except Exception as exc:  # reported, not raised: the table shows it
                    reports.append(
                        BackendReport(
                            label, dtype, device, None, error=f"{type(exc).__name__}: {exc}"
                        )
                    )
                    continue
                comparisons = [
                    compare_to_reference(out, ref, tolerance_for(dtype))
                    for out, ref in zip(outputs, reference, strict=False)
                ]
                if len(outputs) != len(reference):
                    comparisons.append(
                        Comparison(
                            np.inf, np.inf, tolerance_for(dtype), False, "number of outputs differs"
                        )
                    )
                worst = max(comparisons, key=lambda c: (not c.passed, c.max_rel_error))
                reports.append(BackendReport(label, dtype, device, worst))
    return reports


def format_report(reports: Sequence[BackendReport], title: str = "") -> str:
    """A plain-text table of reports, one line each."""
    lines = [title] if title else []
    lines.append(
        f"{'backend':<18} {'dtype':<8} {'max abs err':>12} {'max rel err':>12} "
        f"{'tolerance':>10}  result"
    )
    for r in reports:
        if r.skipped:
            lines.append(
                f"{r.backend:<18} {r.dtype:<8} {'':>12} {'':>12} {'':>10}  skipped ({r.skipped})"
            )
        elif r.error:
            lines.append(f"{r.backend:<18} {r.dtype:<8} {'':>12} {'':>12} {'':>10}  FAIL {r.error}")
        else:
            c = r.comparison
            assert c is not None
            verdict = "pass" if c.passed else f"FAIL {c.problem}".rstrip()
            lines.append(
                f"{r.backend:<18} {r.dtype:<8} {c.max_abs_error:>12.3e} "
                f"{c.max_rel_error:>12.3e} {c.tolerance:>10.0e}  {verdict}"
            )
    return "\n".join(lines)


def assert_backends_agree(
    fn: Callable[..., Any],
    *numpy_inputs: Any,
    backends: Iterable[str] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    jax_jit: bool = True,
) -> list[BackendReport]:
    """Assert that ``fn`` gives the NumPy float64 result on every backend.

    Takes the same arguments as :func:`compare_backends` and returns its reports.

    Raises
    ------
    AssertionError
        With a per-backend table, if any backend errs or misses its tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> import namcore
    >>> from namcore.testing import assert_backends_agree
    >>> rng = np.random.default_rng(0)
    >>> M, k, v = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    >>> reports = assert_backends_agree(namcore.write, M, k, v, backends=["numpy"])
    >>> [(r.backend, r.dtype, r.passed) for r in reports]
    [('numpy', 'float32', True), ('numpy', 'float64', True)]
    """
    reports = compare_backends(fn, *numpy_inputs, backends=backends, dtypes=dtypes, jax_jit=jax_jit)
    if not all(r.passed for r in reports):
        name = getattr(fn, "__name__", repr(fn))
        raise AssertionError(format_report(reports, f"backends disagree on {name}:"))
    return reports
