"""Command line: arguments, loading a config into an AppContext, serving."""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from cnc.app.loading import load  # noqa: F401  (cli.load: what tests, benchmarks and `cnc check` call)

DEMOS = Path(__file__).resolve().parent.parent / "demos"  # each demo: cnc/demos/<name>/config.yaml


def demo_names() -> list[str]:
    return sorted(p.parent.name for p in DEMOS.glob("*/config.yaml"))


def demo_config(name: str) -> Path:
    return DEMOS / name / "config.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        description="Compress and Compare: a web app to compare compressed variants of a model. "
                    "`cnc doctor --help`: check the cache.",
        epilog="Every flag can also be set by an environment variable (CNC_CONFIG, CNC_HOST, CNC_PORT, "
               "CNC_CACHE_DIR, CNC_DEVICE, CNC_SCHEDULER, CNC_DASK_WORKERS, CNC_MEMO_MB).",
    )
    p.add_argument("--config", default=env("CNC_CONFIG"),
                   help="YAML config, experiment file (YAML/JSON), original model-info JSON, Tracker directory, "
                        "or mlflow:<tracking uri>#<experiment> (default: the embedded demo)")
    p.add_argument("--demo", choices=demo_names(), default=None,
                   help="serve an embedded demo, built on first run (default when no --config: digits)")
    p.add_argument("--host", default=env("CNC_HOST", "127.0.0.1"),
                   help="interface to serve on (default 127.0.0.1; 0.0.0.0 to share on the network)")
    p.add_argument("--port", type=int, default=int(env("CNC_PORT", "8050")), help="port (default 8050)")
    p.add_argument("--cache-dir", default=env("CNC_CACHE_DIR"),
                   help="directory for precomputed summaries (default: the config's cache_dir or .cnc-cache)")
    p.add_argument("--device", default=env("CNC_DEVICE"),
                   help="where precompute evaluates models: auto (a GPU when there is one), cpu, cuda, "
                        "cuda:N or mps (default: the config's task.device, else auto)")
    p.add_argument("--scheduler", default=env("CNC_SCHEDULER"),
                   help="precompute on this running Dask scheduler (tcp://host:8786), one task per model "
                        "(default: the config's precompute.scheduler, else in this process)")
    p.add_argument("--workers", type=int, default=env("CNC_DASK_WORKERS"),
                   help="without --scheduler: precompute on a local Dask cluster of N processes "
                        "(default: the config's precompute.workers, else in this process)")
    p.add_argument("--memo-mb", type=int, default=int(env("CNC_MEMO_MB", "1024")),
                   help="memory each server process may use for memoized summaries and tables (default 1024 MB)")
    p.add_argument("--precompute-only", action="store_true",
                   help="evaluate and summarize every model into the cache, then exit (no server)")
    p.add_argument("--no-precompute", action="store_true",
                   help="serve immediately; models not yet cached show as pending")
    p.add_argument("--read-only", action="store_true", default=env("CNC_READ_ONLY", "") not in ("", "0"),
                   help="never write summaries from the web server (no background precompute); env CNC_READ_ONLY=1")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (hot reload, dev tools)")
    args = p.parse_args(argv)
    if args.config and args.demo:
        p.error("--config and --demo name two experiments; give one.")
    if not args.config:
        args.config = str(demo_config(args.demo or "digits"))
    return args


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False



def main(argv: list[str] | None = None) -> int:
    from cnc.experiment.errors import ConfigError, ExperimentError, TaskError
    from cnc.server import memo

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:  # `cnc doctor`: check (and repair) the cache
        from cnc.app.doctor import main as doctor

        return doctor(argv[1:])
    if argv[:1] == ["check"]:  # `cnc check`: cnc/app/check.py
        from cnc.app.check import main as check_main

        return check_main(argv[1:])
    args = parse_args(argv)
    if args.debug and not is_loopback(args.host):
        print(f"error: --debug serves the Werkzeug debugger, which runs any code a visitor sends; refusing it on "
              f"--host {args.host}. Fix: drop --debug, or use --host 127.0.0.1.", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 0:
        print(f"error: --workers {args.workers}: a number of Dask worker processes must be 0 or more.", file=sys.stderr)
        return 2
    memo.set_budget(max(16, args.memo_mb) << 20)
    try:
        ctx = load(args.config, args.cache_dir, precompute=not (args.no_precompute or args.read_only),
                   background=not args.read_only, device=args.device, scheduler=args.scheduler,
                   workers=args.workers)
    except (ConfigError, ExperimentError, TaskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # finished models are cached; the next run skips them
        print("\n[cnc] precompute interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    for w in ctx.experiment.warnings:
        print(f"[cnc] warning: {w}", file=sys.stderr)
    if args.precompute_only:
        print(f"[cnc] cache ready in {ctx.config.cache_dir}", file=sys.stderr)
        return 0
    from cnc.app.webapp import build_app
    from cnc.server.auth import load_credentials

    try:
        protected = bool(load_credentials())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not protected and not is_loopback(args.host):
        print("[cnc] WARNING: serving on a network interface WITHOUT authentication. Set CNC_AUTH=user:password "
              "or CNC_AUTH_FILE to protect this instance.", file=sys.stderr)

    app = build_app(ctx)
    print(f"[cnc] serving {len(ctx.experiment.models)} models on http://{args.host}:{args.port}", file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0



def run() -> None:
    """The `cnc` console command (same flags as `python app.py`)."""
    sys.exit(main())
