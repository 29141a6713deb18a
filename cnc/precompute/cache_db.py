"""Opening a cache database that may be damaged: SQLite's quick check at start (it reads every
page once: milliseconds for a summary cache, whose large values live in files beside it), and a
damaged database moved aside with its files, so precompute and the server start on an empty one
that precompute fills again. Nothing is deleted: the damaged copy stays for inspection."""
from __future__ import annotations

import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import diskcache
from filelock import FileLock

DB_NAME = diskcache.core.DBNAME  # "cache.db"


@dataclass(frozen=True)
class MovedAside:
    """A damaged cache directory moved out of the way: what was wrong and where it went."""

    directory: Path
    moved_to: Path
    problem: str

    def message(self) -> str:
        return (f"the cache database {self.directory / DB_NAME} was damaged ({self.problem}); it was moved aside to "
                f"{self.moved_to} and an empty cache started, so precompute summarizes every model again. "
                f"Delete {self.moved_to} once you no longer need it.")


def quick_check(db: Path, timeout: float = 60) -> str | None:
    """None when the database is sound (or absent), else SQLite's first complaint."""
    if not db.exists():
        return None
    if db.stat().st_size == 0:
        return None  # created, never written: SQLite starts it afresh
    try:
        con = sqlite3.connect(str(db), timeout=timeout, isolation_level=None)
        try:
            rows = con.execute("PRAGMA quick_check(1)").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # busy or locked (another process writing): not damage
        return None
    except sqlite3.DatabaseError as exc:  # corrupt, or not a database at all
        return str(exc)
    found = str(rows[0][0]) if rows else "no answer"
    return None if found == "ok" else found


def move_aside(directory: Path, problem: str) -> MovedAside:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = directory.with_name(f"{directory.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = directory.with_name(f"{directory.name}.damaged-{stamp}-{n}")
    directory.rename(target)
    return MovedAside(directory, target, problem)


def open_checked(directory: Path, check: bool = True, **settings) -> tuple[diskcache.Cache, MovedAside | None]:
    """A diskcache at `directory`, after a quick check of its database; a damaged one (or one
    SQLite refuses to open) is moved aside first, once, under a lock beside it so that server
    workers starting together move it once. Says so on stderr."""
    moved = None
    problem = quick_check(directory / DB_NAME) if check else None
    if problem is not None:
        moved = _repair(directory, problem)
    try:
        return diskcache.Cache(str(directory), **settings), moved
    except sqlite3.OperationalError:  # busy, locked, no permission: not damage, say it as it is
        raise
    except sqlite3.DatabaseError as exc:  # damage the quick check did not see
        moved = _repair(directory, str(exc), recheck=False)
        return diskcache.Cache(str(directory), **settings), moved


def _repair(directory: Path, problem: str, recheck: bool = True) -> MovedAside | None:
    with FileLock(str(directory.with_name(f"{directory.name}.repair.lock"))):
        if not directory.exists() or recheck and quick_check(directory / DB_NAME) is None and _opens(directory):
            return None  # another process moved it aside meanwhile
        moved = move_aside(directory, problem)
    print(f"[cnc] warning: {moved.message()}", file=sys.stderr)
    return moved


def _opens(directory: Path) -> bool:
    if not (directory / DB_NAME).exists():
        return True
    try:
        con = sqlite3.connect(str(directory / DB_NAME))
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchall()
        finally:
            con.close()
        return True
    except sqlite3.OperationalError:  # busy or locked: not damage
        return True
    except sqlite3.DatabaseError:
        return False
