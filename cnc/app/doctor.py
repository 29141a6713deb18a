"""`cnc doctor`: checks what the app keeps on disk and says what is wrong, with `--repair` to fix
it. Each check is one entry of CHECKS, a function (cache directory, repair) -> findings, so a new
one (say, a Tracker run folder's stale files) is one more line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from cnc.precompute.cache_check import Finding, check_database, check_entries, check_files

Check = Callable[[Path, bool], list[Finding]]
CHECKS: list[Check] = [
    check_database,  # first: a damaged database makes the others moot
    check_entries,
    check_files,
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cnc doctor",
        description="Check the summary cache (database integrity, every entry's checksum, orphan files) and "
                    "report; exit code 0 when everything is sound (or was repaired), 1 when a problem is left.")
    p.add_argument("--cache-dir", default=os.environ.get("CNC_CACHE_DIR"),
                   help="the cache directory (default: CNC_CACHE_DIR, else the --config's cache_dir, else .cnc-cache)")
    p.add_argument("--config", default=os.environ.get("CNC_CONFIG"),
                   help="a config whose cache_dir to check (when no --cache-dir)")
    p.add_argument("--run-dir", default=None,
                   help="also check a Tracker run folder (default: the --config when it is one) for temporary files "
                        "of killed writers and checkpoints no model references")
    p.add_argument("--repair", action="store_true",
                   help="fix what is found: move a damaged database aside, drop damaged entries, delete orphan files "
                        "(the next precompute recomputes what was dropped)")
    return p.parse_args(argv)


def cache_dir_of(args: argparse.Namespace) -> Path:
    if args.cache_dir:
        return Path(args.cache_dir)
    if args.config:
        from cnc.experiment.config import load_config

        return Path(load_config(args.config).cache_dir)
    return Path(".cnc-cache")


def run_dir_of(args: argparse.Namespace) -> Path | None:
    """The Tracker run folder to check: --run-dir, else a --config that is one (holds experiment.yaml)."""
    if args.run_dir:
        return Path(args.run_dir)
    if args.config and Path(args.config).is_dir() and (Path(args.config) / "experiment.yaml").is_file():
        return Path(args.config)
    return None


def tracker_check(run_dir: Path) -> Check:
    """The debris of a Tracker run folder (cnc.experiment.tracker.find_debris) as a doctor check."""
    def check(_cache_dir: Path, repair: bool) -> list[Finding]:
        from cnc.experiment.tracker import clean_debris, find_debris

        name = "tracker run folder"
        found = find_debris(run_dir)
        if found.problem:
            return [Finding(name, False, f"{run_dir}: {found.problem}")]
        if not found.files:
            return [Finding(name, True, f"{run_dir}: no stale temporary files or unreferenced checkpoints")]
        what = (f"{len(found.temp_files)} temporary file(s) of killed writers and {len(found.unreferenced)} "
                f"checkpoint/output file(s) no model references ({found.bytes / 1e6:.1f} MB)")
        if repair:
            gone = clean_debris(run_dir)
            return [Finding(name, False, f"{run_dir}: deleted {len(gone.files)} file(s): {what}", repaired=True)]
        listed = ", ".join(p.name for p in found.files[:5]) + (" ..." if len(found.files) > 5 else "")
        return [Finding(name, False, f"{run_dir}: {what}: {listed}. Fix: --repair deletes them")]
    return check


def run_checks(cache_dir: Path, repair: bool = False, checks: list[Check] = CHECKS) -> list[Finding]:
    """Every check in order; with `repair`, a writer lock keeps precompute out meanwhile."""
    from cnc.precompute.lock import writer_lock

    found: list[Finding] = []
    lock = writer_lock(cache_dir) if repair and cache_dir.is_dir() else None
    if lock is not None:
        lock.acquire()
    try:
        for check in checks:
            found.extend(check(cache_dir, repair))
    finally:
        if lock is not None:
            lock.release()
    return found


def report(findings: list[Finding]) -> str:
    marks = {(True, False): "ok     ", (False, True): "REPAIRED", (False, False): "PROBLEM "}
    return "\n".join(f"{marks[(f.ok, f.repaired)]} {f.check}: {f.message}" for f in findings)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cache_dir = cache_dir_of(args)
    except Exception as exc:  # a config that does not load: say so, as the app would
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not cache_dir.is_dir():
        print(f"error: no cache directory at {cache_dir}. Fix: pass --cache-dir (or --config) of an existing cache.",
              file=sys.stderr)
        return 2
    run_dir = run_dir_of(args)
    findings = run_checks(cache_dir, args.repair, CHECKS + ([tracker_check(run_dir)] if run_dir else []))
    print(f"cnc doctor: {cache_dir}")
    print(report(findings))
    left = [f for f in findings if not f.ok and not f.repaired]
    fixed = [f for f in findings if f.repaired]
    print(f"{len(left)} problem(s) left, {len(fixed)} repaired." if left or fixed else "Everything is sound.")
    return 1 if left else 0
