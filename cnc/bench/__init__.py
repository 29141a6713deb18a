"""Benchmarks: `python -m cnc.bench [--json] [--quick] [--only AREA]` prints server-side timings.

Each area module exposes `scenarios(quick: bool) -> list[dict]`; records look like
{"scenario": "overview.filter", "models": 1000, "ms": 12.3, "bytes": 48211}.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

AREAS = ("load", "overview", "comparability", "selection", "behaviors", "generative_behaviors", "layers", "scale",
         "precompute", "browser_timing", "generative", "lm_eval")


def median_ms(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)
