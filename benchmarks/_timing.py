"""Timing shared by the benchmarks."""

from __future__ import annotations

import time


def best_of(fn, repeat: int, warm_up: bool = False) -> float:
    """The least wall time (s) of ``repeat`` calls of ``fn``; ``warm_up`` calls it once first
    (OS file cache, imports) without timing it."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
