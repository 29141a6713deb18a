"""The cache's checks for `cnc doctor`: the database's integrity, every entry's checksum, and
files the database and the folder disagree on. Each check reports `Finding`s and, asked to
repair, fixes what it found (moves a damaged database aside, drops damaged entries, deletes
orphan files); a dropped summary is recomputed by the next precompute."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cnc.precompute.cache_db import DB_NAME, move_aside
from cnc.precompute.checked_disk import CheckedRows, DamagedEntry
from cnc.precompute.store import SummaryStore

SUMMARIES = "summaries"


@dataclass
class Finding:
    """One thing a check found: `ok` False is a problem (`repaired` once fixed)."""

    check: str
    ok: bool
    message: str
    repaired: bool = False


def summaries_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / SUMMARIES


def check_database(cache_dir: Path, repair: bool = False) -> list[Finding]:
    """SQLite's full integrity check (every page, every index) of the summary database."""
    db = summaries_dir(cache_dir) / DB_NAME
    if not db.exists():
        return [Finding("cache database", True, f"{db}: no cache yet (precompute creates it)")]
    try:
        con = sqlite3.connect(str(db), timeout=60)
        try:
            rows = [str(r[0]) for r in con.execute("PRAGMA integrity_check(20)").fetchall()]
        finally:
            con.close()
    except sqlite3.OperationalError as exc:  # busy or locked: not damage; nothing to repair
        return [Finding("cache database", False, f"{db}: could not be checked ({exc}). Fix: run again when no "
                        "precompute is writing.")]
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return [Finding("cache database", True, f"{db}: integrity check ok")]
    problem = "; ".join(rows[:3]) + (f" (+{len(rows) - 3} more)" if len(rows) > 3 else "")
    finding = Finding("cache database", False, f"{db} is damaged: {problem}")
    if repair:
        moved = move_aside(summaries_dir(cache_dir), problem)
        finding.repaired = True
        finding.message += f". Moved aside to {moved.moved_to}; the next precompute rebuilds the cache."
    else:
        finding.message += ". Fix: cnc doctor --repair moves it aside (the next precompute rebuilds it)."
    return [finding]


def check_entries(cache_dir: Path, repair: bool = False) -> list[Finding]:
    """Reads every entry and verifies its checksum (the probabilities against their model's
    outputs); a damaged one is reported, and dropped with `repair`."""
    if not (summaries_dir(cache_dir) / DB_NAME).exists():
        return []
    store = SummaryStore(cache_dir, check=False)
    store.drops = False  # report only; dropped below when repairing
    damaged: list[tuple[tuple, str]] = []
    count = 0
    try:
        keys = list(store.cache.iterkeys())
    except sqlite3.DatabaseError as exc:
        return [Finding("cache entries", False, f"cannot list the entries ({exc}); see the database check")]
    for key in keys:
        count += 1
        why = _entry_problem(store, key)
        if why is not None:
            damaged.append((key, why))
    if not damaged:
        return [Finding("cache entries", True, f"{count} entries, every checksum verified")]
    findings = []
    store.drops = repair
    for key, why in damaged:
        shown = ", ".join(str(part) for part in key) if isinstance(key, tuple) else repr(key)
        finding = Finding("cache entries", False, f"entry ({shown}) is damaged: {why}")
        if repair:
            store.drop_damaged(key if isinstance(key, tuple) else (key,), why)
            finding.repaired = True
            finding.message += "; dropped (the next precompute recomputes it)"
        findings.append(finding)
    if not repair:
        findings.append(Finding("cache entries", False, f"{len(damaged)} of {count} entries damaged. "
                                 "Fix: cnc doctor --repair drops them; the next precompute recomputes them."))
    return findings


def _entry_problem(store: SummaryStore, key) -> str | None:
    if isinstance(key, tuple) and len(key) == 3 and key[0] == "probs":
        try:
            out = store.cache.get(("outputs", key[1], key[2]), retry=True)
        except Exception:
            return "its model's outputs are damaged, so its checksum is unknown"
        if out is None:
            return None  # orphaned by a killed write: harmless, rewritten with the model
        if "probs_crcs" not in out:
            return "no checksum (written by an older version)"
        try:
            rows = store.get_probs(key[1], key[2], out["shape"], out["probs_crcs"])
        except (OSError, KeyError, TypeError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if rows is None:
            return "probabilities of the wrong size"
        try:
            if isinstance(rows, CheckedRows):
                rows.check()
        except DamagedEntry as exc:
            return str(exc)
        return None
    try:
        store.cache.get(key, retry=True)
    except DamagedEntry as exc:
        return str(exc)
    except Exception as exc:  # unpicklable after a matching checksum: written by other code
        return f"{type(exc).__name__}: {exc}"
    return None


def check_files(cache_dir: Path, repair: bool = False) -> list[Finding]:
    """Value files no entry names (left by a write killed between file and row) and entries whose
    file is gone (deleted by hand): the first waste disk, the second read as missing."""
    folder = summaries_dir(cache_dir)
    db = folder / DB_NAME
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(str(db), timeout=60)
        try:
            named = {str(r[0]) for r in con.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return [Finding("cache files", False, f"cannot list the entries' files ({exc}); see the database check")]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.glob("*/*/*.val")}
    orphans, lost = sorted(on_disk - named), sorted(named - on_disk)
    findings = []
    if orphans:
        size = sum((folder / f).stat().st_size for f in orphans)
        finding = Finding("cache files", False, f"{len(orphans)} value file(s) ({size / 2 ** 20:.1f} MB) belong to no entry")
        if repair:
            for f in orphans:
                (folder / f).unlink(missing_ok=True)
            finding.repaired, finding.message = True, finding.message + "; deleted"
        else:
            finding.message += ". Fix: cnc doctor --repair deletes them."
        findings.append(finding)
    if lost:
        finding = Finding("cache files", False, f"{len(lost)} entr{'y names a file' if len(lost) == 1 else 'ies name files'} "
                          "that no longer exist (read as missing)")
        if repair:
            store = SummaryStore(cache_dir, check=False)
            rows = store.cache._sql(f"SELECT key, raw FROM Cache WHERE filename IN ({','.join('?' * len(lost))})",
                                    lost).fetchall()
            for key, raw in rows:
                key = store.cache._disk.get(key, raw)
                store.drop_damaged(key if isinstance(key, tuple) else (key,), "its value file is gone")
            finding.repaired, finding.message = True, finding.message + "; their entries were dropped"
        else:
            finding.message += ". Fix: cnc doctor --repair drops them; the next precompute recomputes them."
        findings.append(finding)
    return findings or [Finding("cache files", True, f"{len(on_disk)} value files, each named by one entry")]
