"""One file lock for every writer of precomputed summaries.

`--precompute-only`, the start-up precompute and the live background thread all write through
`precompute_locked`, so two processes never summarize one task at once (each would create its
own shared bin edges and bin one task's layers differently). A writer that waited finds the
models already done and skips them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from filelock import FileLock, Timeout

from cnc.experiment.config import Config
from cnc.precompute.run import PrecomputeReport, precompute
from cnc.precompute.store import SummaryStore

LOCK_NAME = "precompute.lock"


def writer_lock(cache_dir: str | Path) -> FileLock:
    return FileLock(str(Path(cache_dir) / LOCK_NAME))


def precompute_locked(config: Config, store: SummaryStore, wait: bool = True, **options) -> PrecomputeReport | None:
    """`precompute` while holding the cache's writer lock. With `wait=False` returns None at once
    when another writer holds it; else waits for it (saying so when `progress` is on)."""
    lock = writer_lock(store.directory)
    try:
        lock.acquire(timeout=1 if wait else 0)
    except Timeout:
        if not wait:
            return None
        if options.get("progress", True):
            print(f"[cnc] waiting for another precompute to finish (lock {lock.lock_file})", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        return precompute(config, store, **options)
    finally:
        lock.release()
