"""CLI of the benchmarks (see cnc.bench)."""
from __future__ import annotations

import argparse
import json
import sys

from cnc.bench import AREAS, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cnc.bench", description="Server-side timings of the app's views.")
    p.add_argument("--json", action="store_true", help="print one JSON list of records")
    p.add_argument("--quick", action="store_true", help="a smoke run: smallest sizes, each timing once (CI)")
    p.add_argument("--only", action="append", choices=AREAS, help="run only these areas")
    args = p.parse_args(argv)
    records = []
    for area in args.only or AREAS:
        for rec in run(area, args.quick):
            records.append(rec)
            if not args.json:
                extra = ", ".join(f"{k}={v}" for k, v in rec.items() if k not in ("scenario", "ms"))
                ms = "n/a" if rec["ms"] is None else f"{rec['ms']:.2f}"
                print(f"{rec['scenario']:<32} {ms:>10} ms   {extra}", flush=True)
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
