"""CLI of the benchmarks (see cnc.bench)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from cnc.bench import AREAS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cnc.bench", description="Server-side timings of the app's views.")
    p.add_argument("--json", action="store_true", help="print one JSON list of records")
    p.add_argument("--quick", action="store_true", help="smaller sizes (for CI)")
    p.add_argument("--only", action="append", choices=AREAS, help="run only these areas")
    args = p.parse_args(argv)
    records = []
    for area in args.only or AREAS:
        try:
            module = importlib.import_module(f"cnc.bench.{area}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cnc.bench.{area}":
                raise
            continue
        for rec in module.scenarios(args.quick):
            records.append(rec)
            if not args.json:
                extra = ", ".join(f"{k}={v}" for k, v in rec.items() if k not in ("scenario", "ms"))
                print(f"{rec['scenario']:<32} {rec['ms']:>10.2f} ms   {extra}", flush=True)
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
