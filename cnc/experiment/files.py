"""Files the app reads and writes. Writing through a temp file in the same folder, then a rename,
so a reader (the live server, another precompute, a crash) never sees half a file; stamping what
someone else writes, so the live server sees it change."""
from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(fh)` on a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_copy(source: str | Path, path: str | Path) -> None:
    def copy(fh: BinaryIO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, fh)
    atomic_write(path, copy)


def safetensors_header(file: str | Path) -> tuple[dict, int]:
    """(a .safetensors file's JSON header, the offset its tensor data starts at), no tensor read."""
    with open(file, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        return json.loads(fh.read(size)), 8 + size


def files_stamp(patterns: Iterable[str], limit: int = 10_000) -> tuple:
    """(path, mtime, size) of every file the patterns name now — a file, each file under a folder,
    a glob's matches — so a watcher sees a result file written, replaced or removed (at most
    `limit` files per pattern: a stamp is taken every second)."""
    out = []
    for pattern in patterns:
        path = Path(pattern)
        found = [path] if path.is_file() else path.rglob("*") if path.is_dir() else map(
            Path, glob.iglob(pattern, recursive=True))
        for f in itertools.islice(found, limit):
            try:
                st = f.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))
