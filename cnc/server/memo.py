"""One bounded, thread-safe LRU memo for everything views cache in memory.

Every Memo counts its entries' bytes against one per-process budget (`set_budget`, default 1 GB,
`--memo-mb` / CNC_MEMO_MB): when the sum goes over it, the least recently used entry of any memo
is dropped. Concurrent requests for the same key compute it once (single flight): the others wait
for the first one's result instead of building the same table again.
"""
from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable

DEFAULT_BUDGET = 1 << 30

_lock = threading.RLock()  # one lock for every memo: the budget is shared
_memos: weakref.WeakSet = weakref.WeakSet()
_budget = [DEFAULT_BUDGET]
_used = [0]
_tick = itertools.count()


def set_budget(max_bytes: int) -> None:
    """Bytes all memos of this process may hold together (evicts at once if over)."""
    with _lock:
        _budget[0] = int(max_bytes)
        _shrink()


def used_bytes() -> int:
    return _used[0]


SAMPLE = 32  # container items sized per container; the rest are assumed alike


def nbytes(value: Any, _depth: int = 0) -> int:
    """Approximate memory of a memoized value: arrays by their buffers, containers recursively;
    memory-mapped arrays cost nothing (the page cache holds them, not the process heap)."""
    import numpy as np

    if isinstance(value, np.memmap):
        return 64
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + 112
    if _depth > 3:
        return sys.getsizeof(value)
    if isinstance(value, dict):  # a sample of the items, scaled: sizing must cost far less than building
        part = list(itertools.islice(value.items(), SAMPLE))
        return 64 + _scaled(sum(nbytes(k, _depth + 1) + nbytes(v, _depth + 1) for k, v in part), len(part), len(value))
    if isinstance(value, (list, tuple)):
        part = list(itertools.islice(value, SAMPLE))
        return 56 + _scaled(sum(nbytes(v, _depth + 1) for v in part), len(part), len(value))
    own = getattr(value, "nbytes", None)
    if callable(own):
        return int(own())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return 64 + sum(nbytes(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


def _scaled(sampled: int, n_sampled: int, n: int) -> int:
    return sampled if n_sampled >= n else int(sampled / max(1, n_sampled) * n)


def _shrink() -> None:
    """Drop least recently used entries (across memos) until the budget holds; caller has _lock."""
    while _used[0] > _budget[0]:
        oldest = None
        for memo in list(_memos):
            if memo.data:
                key, entry = next(iter(memo.data.items()))
                if oldest is None or entry[2] < oldest[2][2]:
                    oldest = (memo, key, entry)
        if oldest is None:
            return
        oldest[0]._drop(oldest[1])


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Memo:
    """Shared by request threads. An entry may remember the objects it was computed from
    (`sources`, compared by identity), so a recomputed summary is never answered with a stale
    result. `keep_none=False` leaves None uncached (data that is not there yet, e.g. a model still
    being precomputed). `size` caps the entry count; bytes are capped by the shared budget."""

    def __init__(self, size: int, keep_none: bool = True):
        self.size, self.keep_none = size, keep_none
        self.data: OrderedDict = OrderedDict()  # key -> (sources, value, tick, bytes)
        self._flights: dict = {}
        with _lock:
            _memos.add(self)

    def _drop(self, key: Any) -> None:
        entry = self.data.pop(key, None)
        if entry is not None:
            _used[0] -= entry[3]

    def _lookup(self, key: Any, sources: tuple) -> tuple[bool, Any]:
        hit = self.data.get(key)
        if hit is not None and len(hit[0]) == len(sources) and all(a is b for a, b in zip(hit[0], sources)):
            self.data[key] = (hit[0], hit[1], next(_tick), hit[3])
            self.data.move_to_end(key)
            return True, hit[1]
        return False, None

    def get_or(self, key: Any, make: Callable[[], Any], sources: tuple = ()) -> Any:
        with _lock:
            found, value = self._lookup(key, sources)
            if found:
                return value
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = make()
            flight.value = value
            if value is not None or self.keep_none:  # stored before the flight ends: no gap to recompute in
                self._store(key, sources, value)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with _lock:
                self._flights.pop(key, None)
            flight.done.set()
        return value

    def _store(self, key: Any, sources: tuple, value: Any) -> None:
        size = nbytes(value)
        with _lock:
            self._drop(key)
            if size > _budget[0]:
                return  # larger than the whole budget: serve it, do not keep it
            self.data[key] = (sources, value, next(_tick), size)
            _used[0] += size
            while len(self.data) > self.size:
                self._drop(next(iter(self.data)))
            _shrink()

    def clear(self) -> None:
        with _lock:
            for key in list(self.data):
                self._drop(key)
