"""One bounded, thread-safe LRU memo for everything views cache in memory."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable


class Memo:
    """Shared by request threads; the lock guards the dict, not the computation. An entry may
    remember the objects it was computed from (`sources`, compared by identity), so a recomputed
    summary is never answered with a stale result. `keep_none=False` leaves None uncached (data
    that is not there yet, e.g. a model still being precomputed)."""

    def __init__(self, size: int, keep_none: bool = True):
        self.size, self.keep_none = size, keep_none
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get_or(self, key: Any, make: Callable[[], Any], sources: tuple = ()) -> Any:
        with self.lock:
            hit = self.data.get(key)
            if hit is not None and len(hit[0]) == len(sources) and all(a is b for a, b in zip(hit[0], sources)):
                self.data.move_to_end(key)
                return hit[1]
        value = make()
        if value is not None or self.keep_none:
            with self.lock:
                self.data[key] = (sources, value)
                self.data.move_to_end(key)
                while len(self.data) > self.size:
                    self.data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
