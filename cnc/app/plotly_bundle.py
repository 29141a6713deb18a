"""plotly.js with only the trace types this app draws, served where Dash loads plotly.js from.

The full plotly.js that plotly.py ships is 4.8 MB to download and parse on every fresh browser
profile, most of it trace types (3D, maps, finance, …) no view of ours draws; parsing it was most
of the Overview's first paint. `vendor/plotly-cnc.min.js` is built from the same plotly.js version
by `scripts/build_plotly_bundle.sh` with the trace types in `TRACES` (1.6 MB). It is answered at
Dash's own plotly.js URL, so dcc.Graph and the preload link (transfer.preload_plotly) fetch it and
the full bundle is never sent. A figure whose trace type is missing would draw blank: the test
suite checks every trace type the figure builders use is in `TRACES` and in the file.
"""
from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, Response, request, send_file

from cnc.app.transfer import PLOTLY_JS

TRACES = ("scatter", "scattergl", "bar", "heatmap", "image")  # keep in step with the figure builders
BUNDLE = Path(__file__).resolve().parent / "vendor" / "plotly-cnc.min.js"
_TRACE_MODULE = re.compile(rb'moduleType:"trace",name:"([a-z0-9]+)"')


def bundled_traces(path: Path = BUNDLE) -> set[str]:
    """The trace types a built bundle registers (each trace module names itself in the code)."""
    return {m.decode() for m in _TRACE_MODULE.findall(path.read_bytes())}


def install(server: Flask, prefix: str) -> None:
    """Answer Dash's plotly.js URL (under the app's `prefix`) with the partial bundle."""
    url = prefix + PLOTLY_JS

    @server.before_request
    def _partial_plotly() -> Response | None:
        if request.method == "GET" and request.path == url:
            return send_file(BUNDLE, mimetype="application/javascript", conditional=True, etag=True)
        return None
