"""Checksums on every stored summary, so a garbled value (a bad disk, a crash mid-page, an edit)
is detected on read instead of shown: a CRC-32 beside each pickled value, verified before it is
unpickled. Streamed values (the probabilities, read memory-mapped) are stored as they are, with a
CRC-32 per block of about 1 MB of rows kept in the model's "outputs"; `CheckedRows` verifies a
block the first time a read touches it, so a view reading one row (an instance) reads one block,
not the whole matrix, and a view streaming every row verifies as it goes."""
from __future__ import annotations

import pickle
import threading
import zlib
from typing import Any, Callable

import diskcache
import numpy as np

MAGIC = b"cnc1"  # a checksummed pickle: MAGIC, CRC-32 (4 bytes, big-endian), the pickle


class DamagedEntry(ValueError):
    """A stored value whose checksum does not match (never an OSError: diskcache would take that
    for a missing entry and hide it)."""


def seal(value: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    payload = pickle.dumps(value, protocol=protocol)
    return MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload


def unseal(blob: bytes) -> Any:
    """The value of a sealed blob; DamagedEntry when it is not one or its checksum is wrong."""
    if not isinstance(blob, (bytes, bytearray)) or blob[:4] != MAGIC:
        raise DamagedEntry("not a checksummed value (garbled, or written by an older version)")
    payload = memoryview(blob)[8:]
    if zlib.crc32(payload) != int.from_bytes(blob[4:8], "big"):
        raise DamagedEntry("checksum mismatch")
    return pickle.loads(payload)


class CheckedDisk(diskcache.Disk):
    """diskcache's serializer with a checksum on every value it pickles (keys are unchanged)."""

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if read:  # a stream (probabilities): verified through the digest kept in "outputs"
            return super().store(value, read, key)
        return super().store(seal(value, self.pickle_protocol), False, key)

    def fetch(self, mode, filename, value, read):
        if read:
            return super().fetch(mode, filename, value, read)
        return unseal(super().fetch(mode, filename, value, False))


BLOCK_BYTES = 1 << 20


def block_rows(columns: int, itemsize: int = 2) -> int:
    """Rows per checksummed block of a [N, columns] matrix (about BLOCK_BYTES)."""
    return max(1, BLOCK_BYTES // max(1, columns * itemsize))


def block_crcs(matrix: np.ndarray) -> np.ndarray:
    """uint32 CRC-32 of each block of rows of a C-contiguous matrix."""
    rows = block_rows(matrix.shape[1] if matrix.ndim == 2 else 1, matrix.itemsize)
    return np.array([zlib.crc32(matrix[s:s + rows]) for s in range(0, len(matrix), rows)], dtype=np.uint32)


class Verified:
    """Blocks this process has verified, per file identity and stamp (a file rewritten in place,
    with a new size or mtime, is verified again)."""

    def __init__(self) -> None:
        self._seen: dict[tuple, np.ndarray] = {}
        self._lock = threading.Lock()

    def blocks(self, stamp: tuple, count: int) -> np.ndarray:
        with self._lock:
            found = self._seen.get(stamp)
            if found is None or len(found) != count:
                found = self._seen[stamp] = np.zeros(count, bool)
            return found


class CheckedRows:
    """A read-only [N, C] matrix (memory-mapped) whose row blocks are checked against their
    CRC-32 when first read; a mismatch calls `on_damage` and raises DamagedEntry, so garbage is
    never returned. Indexing, `len`, `shape`, `dtype` and numpy conversion work as on the array."""

    def __init__(self, array: np.ndarray, crcs: np.ndarray, verified: np.ndarray, on_damage: Callable[[], None],
                 stamp: tuple | None = None):
        self._a, self._crcs, self._ok, self._on_damage = array, np.asarray(crcs, np.uint32), verified, on_damage
        self.stamp = stamp  # the file's (inode, size, mtime_ns)
        self._rows = block_rows(array.shape[1], array.itemsize)
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __len__(self) -> int:
        return len(self._a)

    @property
    def nbytes(self) -> int:  # sizing (memos) reads no rows
        return int(self._a.nbytes)

    def check(self, lo: int = 0, hi: int | None = None) -> None:
        """Verify the blocks holding rows [lo, hi) (all by default)."""
        hi = len(self._a) if hi is None else hi
        if hi <= lo:
            return
        for b in range(lo // self._rows, (hi - 1) // self._rows + 1):
            if self._ok[b]:
                continue
            block = self._a[b * self._rows:(b + 1) * self._rows]
            if b >= len(self._crcs) or zlib.crc32(block) != int(self._crcs[b]):
                self._on_damage()
                raise DamagedEntry(f"probabilities: checksum mismatch in rows {b * self._rows}-"
                                   f"{b * self._rows + len(block) - 1}")
            self._ok[b] = True

    def __getitem__(self, key):
        self.check(*self._rows_of(key[0] if isinstance(key, tuple) and key else key))
        return self._a[key]

    def _rows_of(self, key) -> tuple[int, int]:
        n = len(self._a)
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            return i, i + 1
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            return (start, stop) if step == 1 and stop > start else (0, n)
        idx = np.asarray(key)
        if idx.dtype == bool or not idx.size or idx.dtype.kind not in "iu":
            return 0, n
        idx = np.where(idx < 0, idx + n, idx)
        return int(idx.min()), int(idx.max()) + 1

    def __array__(self, dtype=None, copy=None):
        self.check()
        return np.array(self._a, dtype=dtype) if copy else np.asarray(self._a, dtype=dtype)

    def __getattr__(self, name: str):  # anything else an array offers, once every block is verified
        if name.startswith("_"):
            raise AttributeError(name)
        self.check()
        return getattr(self._a, name)
