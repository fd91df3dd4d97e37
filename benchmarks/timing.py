"""The benchmarks' one timing rule: the best of N runs (the least disturbed by other work)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> float:
    """Seconds of ``fn``'s fastest run of ``repeats``, after one untimed run when ``warm_up``."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
