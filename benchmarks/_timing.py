"""Timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_ms(fn: Callable[[], Any], repeats: int, *, slow_s: float = 2.0) -> float:
    """Best of ``repeats`` timed calls of ``fn`` in milliseconds, after one warm-up call
    (which also compiles under JIT). A call slower than ``slow_s`` seconds ends the
    repeats: one timed run of a slow case is enough."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if times[-1] > slow_s:
            break
    return min(times) * 1e3
