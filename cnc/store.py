"""The disk cache of precomputed summaries, so no request ever loads a model.

Keys carry content hashes: a task hash (task entry point, options, schema version) and a
checkpoint hash (sha256 of the file). A changed checkpoint gets a new key and is recomputed;
an unchanged one is found. Each model writes its summaries first and a `done` marker last, so an
interrupted precompute resumes cleanly. Unreadable (corrupt) entries are dropped and reported as
missing, never raised into a request.

Summary formats (all numpy arrays / plain Python):
- task:        {"labels": int64[N], "class_names": [str], "attributes": {name: [str]*N},
                "sample_index": int64[S] (instances of the activation sample)}
- instances:   [render dict] (see cnc.task.Task.render_instance), one per evaluation instance
- outputs:     {"probs": float32[N, C], "preds": int64[N], "scalars": {name: float32[N]}}
- params /
  activations: {module name: {"type": str, "count": int, "zeros": int, "edges": float64[B+1],
                "hist": int64[B], "sample": float32[K], "l2": float, "mean": float, "std": float}}
                `edges` are shared by every model of a task for that module; `sample` holds the
                values at fixed positions (same positions for every model with the same shape).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import diskcache

SCHEMA = 1  # bump when a summary format changes: old entries are then simply not found
KINDS = ("outputs", "params", "activations")


def task_hash(entry: str, options: dict, activation_sample: int) -> str:
    blob = json.dumps({"entry": entry, "options": options, "sample": activation_sample, "schema": SCHEMA},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SummaryStore:
    """Thin, typed wrapper over one diskcache directory (safe across processes and threads)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.cache = diskcache.Cache(str(self.directory / "summaries"), size_limit=2 ** 36)

    # -- content hashes
    def file_hash(self, path: str | Path) -> str | None:
        """sha256 of a file, memoized by (path, size, mtime) so restarts do not rehash."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        memo_key = ("filehash", str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        found = self._get(memo_key)
        if found is not None:
            return found
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()[:24]
        self.cache.set(memo_key, digest)
        return digest

    # -- raw access that survives corrupt entries
    def _get(self, key: tuple) -> Any:
        try:
            return self.cache.get(key, default=None, retry=True)
        except Exception:  # a truncated or corrupted value: forget it, it will be recomputed
            try:
                self.cache.delete(key, retry=True)
            except Exception:
                pass
            return None

    def _set(self, key: tuple, value: Any) -> None:
        self.cache.set(key, value, retry=True)

    # -- task level
    def get_task(self, th: str) -> dict | None:
        return self._get(("task", th))

    def put_task(self, th: str, value: dict) -> None:
        self._set(("task", th), value)

    def get_instances(self, th: str) -> list | None:
        return self._get(("instances", th))

    def put_instances(self, th: str, value: list) -> None:
        self._set(("instances", th), value)

    def get_edges(self, th: str) -> dict | None:
        return self._get(("edges", th))

    def put_edges(self, th: str, value: dict) -> None:
        self._set(("edges", th), value)

    # -- model level
    def get(self, kind: str, th: str, ch: str) -> Any:
        return self._get((kind, th, ch))

    def put(self, kind: str, th: str, ch: str, value: Any) -> None:
        self._set((kind, th, ch), value)

    def is_done(self, th: str, ch: str) -> bool:
        return self._get(("done", th, ch)) is not None

    def is_complete(self, th: str, ch: str, kinds: tuple[str, ...] = KINDS) -> bool:
        """Done and every summary still readable (a corrupt entry makes it incomplete)."""
        return self.is_done(th, ch) and all(self._get((k, th, ch)) is not None for k in kinds)

    def mark_done(self, th: str, ch: str) -> None:
        self.cache.delete(("error", th, ch), retry=True)
        self._set(("done", th, ch), True)

    def get_error(self, th: str, ch: str) -> str | None:
        return self._get(("error", th, ch))

    def put_error(self, th: str, ch: str, message: str) -> None:
        self._set(("error", th, ch), message)
