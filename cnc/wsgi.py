"""WSGI entry for production servers: `gunicorn cnc.wsgi:server`.

Configured by environment (CNC_CONFIG, CNC_CACHE_DIR). Workers never precompute: run
`python app.py --precompute-only` first (the Dockerfile does); models not yet cached show as pending.
"""
from __future__ import annotations

import os

from cnc.cli import DEMO_CONFIG, load
from cnc.webapp import build_app

ctx = load(os.environ.get("CNC_CONFIG", str(DEMO_CONFIG)), os.environ.get("CNC_CACHE_DIR"), precompute=False,
           background=os.environ.get("CNC_READ_ONLY", "") in ("", "0"))
app = build_app(ctx)
server = app.server
