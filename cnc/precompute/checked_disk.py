"""Checksums on every stored summary, so a garbled value (a bad disk, a crash mid-page, an edit)
is detected on read instead of shown: a CRC-32 beside each pickled value, verified before it is
unpickled. Streamed values (the probabilities, read memory-mapped) are stored as they are; their
CRC-32 travels in the model's "outputs" dict and is verified once per process and file
(`verify_file`), so a view reading one row never pays for the whole matrix twice."""
from __future__ import annotations

import os
import pickle
import threading
import zlib
from typing import Any, BinaryIO

import diskcache

MAGIC = b"cnc1"  # a checksummed pickle: MAGIC, CRC-32 (4 bytes, big-endian), the pickle
PIECE = 1 << 22


class DamagedEntry(ValueError):
    """A stored value whose checksum does not match (never an OSError: diskcache would take that
    for a missing entry and hide it)."""


def crc32_buffer(data: Any) -> int:
    """CRC-32 of a bytes-like object, in pieces (a memoryview of a large matrix is not copied)."""
    view = memoryview(data).cast("B")
    crc = 0
    for start in range(0, len(view), PIECE):
        crc = zlib.crc32(view[start:start + PIECE], crc)
    return crc


def crc32_file(fh: BinaryIO) -> int:
    crc = 0
    for piece in iter(lambda: fh.read(PIECE), b""):
        crc = zlib.crc32(piece, crc)
    return crc


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


class VerifiedFiles:
    """Files whose checksum this process has verified, by identity and stamp: a file rewritten
    in place (new size or mtime) is verified again."""

    def __init__(self) -> None:
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()

    def verify(self, fh: BinaryIO, expected: int) -> bool:
        st = os.fstat(fh.fileno())
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, expected)
        with self._lock:
            if stamp in self._seen:
                return True
        fh.seek(0)
        ok = crc32_file(fh) == expected
        fh.seek(0)
        if ok:
            with self._lock:
                self._seen.add(stamp)
        return ok
