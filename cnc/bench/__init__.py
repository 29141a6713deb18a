"""Benchmarks: `python -m cnc.bench [--json] [--quick] [--only AREA]` prints server-side timings.

Each area module exposes `scenarios(quick: bool) -> list[dict]`; records look like
{"scenario": "overview.filter", "models": 1000, "ms": 12.3, "bytes": 48211}.
`--quick` is a smoke run (the smallest sizes, each timing taken once): the test suite runs every
area that way (tests/test_bench_quick.py), so a benchmark broken by a code change fails CI.
"""
from __future__ import annotations

import importlib
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Callable

AREAS = ("load", "overview", "comparability", "selection", "behaviors", "generative_behaviors", "layers", "scale",
         "precompute", "browser_timing", "first_paint", "generative", "lm_eval", "hostile_input", "paired_stats",
         "derived", "mlflow_scale", "quantized", "check")


_SMOKE = [False]  # set by `run(..., quick=True)`: every timing taken once, without warm-up


def run(area: str, quick: bool = False) -> list[dict]:
    """The records of one benchmark area (`quick`: a smoke run)."""
    module = importlib.import_module(f"cnc.bench.{area}")
    _SMOKE[0] = quick
    try:
        return list(module.scenarios(quick))
    finally:
        _SMOKE[0] = False


def median_ms(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn` in milliseconds (one cold run in a smoke run)."""
    if _SMOKE[0]:
        repeat, warmup = 1, 0
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def drop_page_cache(folder: Path) -> None:
    """Evict a folder's files from the OS page cache, so the next reads hit the disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
