"""WSGI entry for production servers: `gunicorn cnc.app.wsgi:server`.

Configured by environment (CNC_CONFIG, CNC_CACHE_DIR, CNC_MEMO_MB, CNC_DEVICE, CNC_SCHEDULER, CNC_DASK_WORKERS). Workers never precompute: run
`python app.py --precompute-only` first (the Dockerfile does); models not yet cached show as pending.
"""
from __future__ import annotations

import os

from cnc.app.cli import demo_config, load
from cnc.app.webapp import build_app
from cnc.server import memo

memo.set_budget(max(16, int(os.environ.get("CNC_MEMO_MB", "1024"))) << 20)
ctx = load(os.environ.get("CNC_CONFIG", str(demo_config("digits"))), os.environ.get("CNC_CACHE_DIR"), precompute=False,
           background=os.environ.get("CNC_READ_ONLY", "") in ("", "0"), device=os.environ.get("CNC_DEVICE"),
           scheduler=os.environ.get("CNC_SCHEDULER"),
           workers=int(os.environ["CNC_DASK_WORKERS"]) if os.environ.get("CNC_DASK_WORKERS") else None)
app = build_app(ctx)
server = app.server
