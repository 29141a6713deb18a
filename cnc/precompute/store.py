"""The disk cache of precomputed summaries, so no request ever loads a model.

Keys carry content hashes: a task hash and a checkpoint hash (sha256 of the file). The task hash
covers the task's entry point, options, activation sample size, the summary format version and a
fingerprint of the evaluation set (instance count and every label), so a dataset swapped behind
the same entry point never serves old predictions. The web server never builds the task to know
that hash: precompute records it under the config's spec hash (`taskref`). A changed checkpoint gets a new key and is recomputed;
an unchanged one is found. Each model writes its summaries first and a `done` marker last, so an
interrupted precompute resumes cleanly. Every value carries a CRC-32 checked on read
(cnc.precompute.checked_disk), and the database gets SQLite's quick check at open
(cnc.precompute.cache_db): a damaged entry is dropped with its model's `done` marker (so the
model counts as pending and the next precompute summarizes it again) and remembered in `damaged`,
never raised into a request or shown.

Summary formats (all numpy arrays / plain Python):
- task:        {"labels": int64[N], "class_names": [str], "attributes": {name: [str]*N},
                "sample_index": int64[S] (instances of the activation sample)}
- outputs:     {"shape": (N, C), "preds": int16|int32[N], "p_true": float32[N], "p_pred": float32[N],
                "scalars": {name: float32[N]}, "probs_crcs": uint32[B] (CRC-32 per ~1 MB block of probs rows),
                "accuracy": float, "suspect": str (only when the outputs cannot be right, e.g. non-finite)}
- health:      {"accuracy": float, "suspect": str}: the outputs' few bytes a model's status reads
- probs:       raw float16 bytes of the softmax [N, C], C order; read back memory-mapped, so a
                view touching one row (an instance) or streaming all rows never copies the matrix
- divergence:  float32 [2, N] per (task, base checkpoint, model checkpoint): MSE and KL of the
                model's probabilities against the base's (cnc.analysis.divergence)
- params /
  activations: {module name: {"type": str, "count": int, "zeros": int, "edges": float64[B+1],
                "hist": int64[B], "sample": float32[K], "l2": float, "mean": float, "std": float}}
                `edges` are shared by every model of a task for that module; `sample` holds the
                values at fixed positions (same positions for every model with the same shape).
Generative tasks (docs/generative.md; their format version is cnc.evaluation.generation.FORMAT,
part of their task hash): task and outputs hold the generative dicts instead (no probs), and
- topk:        {"k", "values": float32[T, k], "ids": int32[T, k], "tail": float32[T],
                "targets": int32[T], "ntokens": int32[N]}: a root model's top-k log-probabilities
                per reference token, stored once per reference model.
A generative model's outputs from before per-token reference log-probabilities were stored
(cnc.analysis.token_probability.outdated_outputs) count as incomplete: precompute redoes the
model while the app keeps showing the old summaries (status stays ready).
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from cnc.analysis.token_probability import outdated_outputs
from cnc.experiment.checkpoints import is_url
from cnc.precompute.cache_db import open_checked
from cnc.precompute.checked_disk import CheckedDisk, CheckedRows, DamagedEntry, Verified, block_crcs

URL_CHECK_SECONDS = 5.0  # how long a URL checkpoint's version check is trusted
KINDS = ("outputs", "probs", "params", "activations")
GENERATIVE_KINDS = ("outputs", "params", "activations")
MODEL_KINDS = ("outputs", "probs", "params", "activations", "topk", "health")  # a damaged one undoes the model's `done`
log = logging.getLogger(__name__)


class SummaryStore:
    """Thin, typed wrapper over one diskcache directory (safe across processes and threads)."""

    def __init__(self, directory: str | Path, check: bool = True):
        self.directory = Path(directory)
        self.cache, self.moved_aside = open_checked(self.directory / "summaries", check=check, disk=CheckedDisk,
                                                    size_limit=2 ** 36)
        self._url_seen: dict[str, tuple[float, str | None]] = {}  # url -> (checked at, content hash)
        self.damaged: dict[tuple, str] = {}  # key -> why: entries this process found damaged and dropped
        self.drops = True  # False: damaged entries are only recorded (`cnc doctor` without --repair)
        self._damage_lock = threading.Lock()
        self._verified = Verified()

    # -- content hashes
    def file_hash(self, path: str | Path) -> str | None:
        """sha256 of a file (or of what an fsspec URL names, or of a model directory's files),
        memoized by (path, size, mtime) or the URL's own version key, so restarts do not rehash."""
        if is_url(str(path)):
            return self._url_hash(str(path))
        if os.path.isdir(path):
            return self._folder_hash(Path(path))
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self._content_hash(("filehash", str(Path(path).resolve()), st.st_size, st.st_mtime_ns),
                                  lambda: open(path, "rb"))

    def _folder_hash(self, folder: Path) -> str | None:
        """A model directory (e.g. Hugging Face `save_pretrained`): a hash of its files' relative
        names and content hashes (each memoized as above); hidden files and folders are skipped."""
        try:
            files = sorted(p for p in folder.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        except OSError:
            return None
        h = hashlib.sha256(b"folder\n")
        for p in files:
            digest = self.file_hash(p)
            if digest is None:
                return None
            h.update(f"{p.relative_to(folder).as_posix()}\0{digest}\n".encode())
        return h.hexdigest()[:24] if files else None

    def _url_hash(self, url: str) -> str | None:
        """Asks the URL's store for its version at most every URL_CHECK_SECONDS: views call this per
        model per request, and for s3:// or gs:// each ask is a network round trip."""
        import fsspec

        seen = self._url_seen.get(url)
        if seen is not None and time.monotonic() - seen[0] < URL_CHECK_SECONDS:
            return seen[1]
        try:
            fs, where = fsspec.core.url_to_fs(url)
            version = fs.ukey(where)  # changes with the object's size, modification time or etag
            digest = self._content_hash(("urlhash", url, version), lambda: fs.open(where, "rb"))
        except Exception:  # unknown protocol, missing driver or credentials, no such object
            digest = None
        self._url_seen[url] = (time.monotonic(), digest)
        return digest

    def _content_hash(self, memo_key: tuple, opener) -> str:
        found = self._get(memo_key)
        if found is not None:
            return found
        h = hashlib.sha256()
        with opener() as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()[:24]
        self.cache.set(memo_key, digest)
        return digest

    # -- raw access that survives corrupt entries
    def _get(self, key: tuple) -> Any:
        try:
            return self.cache.get(key, default=None, retry=True)
        except Exception as exc:  # a garbled or truncated value: forget it, it will be recomputed
            self.drop_damaged(key, f"{type(exc).__name__}: {exc}")
            return None

    def drop_damaged(self, key: tuple, why: str) -> None:
        """Delete a damaged entry (and, for a model's summary, its `done` marker: the model is
        pending again) and remember it for the app's notice and `cnc doctor`."""
        log.warning("cache entry %r is damaged (%s); dropped, to be recomputed", key, why)
        with self._damage_lock:
            self.damaged[key] = why
        if not self.drops:
            return
        for k in [key] + ([("done", key[1], key[2])] if key[0] in MODEL_KINDS and len(key) == 3 else []):
            try:
                self.cache.delete(k, retry=True)
            except Exception:
                pass

    def damaged_models(self) -> list[tuple[str, str]]:
        """(task hash, checkpoint hash) of models with a summary found damaged and not yet summarized again."""
        with self._damage_lock:
            keys = list(self.damaged)
        found = {(k[1], k[2]) for k in keys if k[0] in MODEL_KINDS and len(k) == 3}
        return sorted(pair for pair in found if not self.is_done(*pair))

    def _set(self, key: tuple, value: Any) -> None:
        self.cache.set(key, value, retry=True)

    # -- task level
    def get_task(self, th: str) -> dict | None:
        return self._get(("task", th))

    def put_task(self, th: str, value: dict) -> None:
        self._set(("task", th), value)

    def get_taskref(self, spec: str) -> str | None:
        return self._get(("taskref", spec))

    def put_taskref(self, spec: str, th: str) -> None:
        self._set(("taskref", spec), th)

    def get_edges(self, th: str) -> dict | None:
        return self._get(("edges", th))

    def put_edges(self, th: str, value: dict) -> None:
        self._set(("edges", th), value)

    # -- model level
    def get(self, kind: str, th: str, ch: str) -> Any:
        if kind == "probs":
            out = self._get(("outputs", th, ch))
            return None if out is None else self.get_probs(th, ch, out["shape"], out.get("probs_crcs"))
        return self._get((kind, th, ch))

    def put_probs(self, th: str, ch: str, probs: np.ndarray) -> np.ndarray:
        """Streamed to the cache file in 4 MB pieces (no second copy of the matrix in memory);
        returns the CRC-32 of each block of rows written, which the model's "outputs" keep."""
        matrix = np.ascontiguousarray(probs, dtype=np.float16)
        flat = matrix.reshape(-1).view(np.uint8)
        self.cache.set(("probs", th, ch), _Reader(memoryview(flat)), read=True, retry=True)
        return block_crcs(matrix)

    def get_divergence(self, th: str, base_ch: str, ch: str) -> np.ndarray | None:
        """float32 [2, N] (MSE, KL) of a model against a base, or None (a malformed entry counts as missing)."""
        found = self._get(("divergence", th, base_ch, ch))
        ok = isinstance(found, np.ndarray) and found.dtype == np.float32 and found.ndim == 2 and len(found) == 2
        return found if ok else None

    def has_divergence(self, th: str, base_ch: str, ch: str) -> bool:
        """Stored (not read: a damaged one is found, dropped and recomputed when read)."""
        try:
            return ("divergence", th, base_ch, ch) in self.cache
        except Exception:
            return False

    def put_divergence(self, th: str, base_ch: str, ch: str, values: np.ndarray) -> None:
        self._set(("divergence", th, base_ch, ch), np.ascontiguousarray(values, dtype=np.float32))

    def get_probs(self, th: str, ch: str, shape: tuple[int, int],
                  crcs: np.ndarray | None = None) -> np.ndarray | CheckedRows | None:
        """float16 [N, C] probabilities, memory-mapped (pages load as rows are read); None when
        missing or of the wrong size. With `crcs` (the outputs' "probs_crcs") each block of rows is
        verified when a read first touches it (`CheckedRows`): a damaged file is dropped, to be
        recomputed, and the read raises instead of returning garbage."""
        key = ("probs", th, ch)
        try:
            raw = self.cache.get(key, default=None, read=True, retry=True)
        except Exception:
            raw = None
        if raw is None:
            return None
        n, c = (int(v) for v in shape)
        if isinstance(raw, bytes):
            ok = len(raw) == n * c * 2
            arr = np.frombuffer(raw, dtype=np.float16).reshape(n, c) if ok else None
            verified, stamp = np.zeros(len(crcs) if crcs is not None else 0, bool), None
        else:
            with raw:
                ok = os.fstat(raw.fileno()).st_size == n * c * 2
                arr = np.memmap(raw, dtype=np.float16, mode="r", shape=(n, c)) if ok and n * c else None
                st = os.fstat(raw.fileno())
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                verified = self._verified.blocks(stamp, len(crcs)) if crcs is not None else None
            ok = ok and (arr is not None or n * c == 0)
        if not ok:
            self.drop_damaged(key, "probabilities of the wrong size")
            return None
        if arr is None:
            return np.zeros((n, c), np.float16)
        if crcs is None:
            return arr
        return CheckedRows(arr, crcs, verified, lambda: self.drop_damaged(key, "probabilities: checksum mismatch"),
                           stamp)

    def put(self, kind: str, th: str, ch: str, value: Any) -> None:
        self._set((kind, th, ch), value)

    def is_done(self, th: str, ch: str) -> bool:
        return self._get(("done", th, ch)) is not None

    def is_complete(self, th: str, ch: str, kinds: tuple[str, ...] = KINDS) -> bool:
        """Done and every summary still readable and matching its checksum (a damaged entry is
        dropped and makes the model incomplete, so precompute redoes it)."""
        return self.is_done(th, ch) and all(self._present(k, th, ch) for k in kinds)

    def _present(self, kind: str, th: str, ch: str) -> bool:
        if kind == "probs":
            return self._probs_sound(th, ch)
        value = self.get(kind, th, ch)
        return value is not None and not (kind == "outputs" and outdated_outputs(value))

    def _probs_sound(self, th: str, ch: str) -> bool:
        """The probabilities are there and every block matches its checksum; a full check is
        remembered with the file's stamp (inode, size, mtime), so later runs re-read only a file
        written since (a garbling write changes its mtime; readers catch the rest block by block)."""
        out = self._get(("outputs", th, ch))
        rows = None if out is None else self.get_probs(th, ch, out["shape"], out.get("probs_crcs"))
        if not isinstance(rows, CheckedRows):
            return rows is not None
        if self._get(("probs_ok", th, ch)) == rows.stamp:
            return True
        try:
            rows.check()
        except DamagedEntry:
            return False
        self._set(("probs_ok", th, ch), rows.stamp)
        return True

    def mark_done(self, th: str, ch: str) -> None:
        self.cache.delete(("error", th, ch), retry=True)
        self._set(("done", th, ch), True)
        with self.cache.transact(retry=True):  # values are sealed with a checksum, so not cache.incr
            self._set(("done-count",), self.done_count() + 1)

    def done_count(self) -> int:
        """How many results were ever marked done: a cheap stamp of "something new is stored"."""
        return int(self._get(("done-count",)) or 0)

    def get_derived(self, key: tuple) -> dict | None:
        """A model's derived metric values (cnc.server.derived) under its full key."""
        found = self._get(key)
        return found if isinstance(found, dict) else None

    def put_derived(self, key: tuple, values: dict) -> None:
        self._set(key, dict(values))

    def get_error(self, th: str, ch: str) -> str | None:
        return self._get(("error", th, ch))

    def put_error(self, th: str, ch: str, message: str) -> None:
        self._set(("error", th, ch), message)


class _Reader:
    """A file-like view of a buffer for diskcache's streamed writes (`read=True`)."""

    def __init__(self, buffer: memoryview):
        self.buffer, self.pos = buffer, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.buffer) if size < 0 else min(self.pos + size, len(self.buffer))
        piece = self.buffer[self.pos:end].tobytes()
        self.pos = end
        return piece
