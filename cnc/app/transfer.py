"""What the browser downloads, made small and kept: compressed responses, cached static files.

A first visit used to fetch 8 MB uncompressed (plotly.js alone is 4.8 MB); over a 20 Mbit/s
office or VPN link that was seconds before anything showed. Responses are compressed with the best
encoding the browser offers (zstd, then brotli, then gzip: browsers offer the first two on HTTPS
and localhost); static files are compressed once per process, and those whose URLs carry a
fingerprint (Dash's component suites a version and mtime, our assets `?m=<mtime>`) are kept by the
browser for a year.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from dash.fingerprint import check_fingerprint
from flask import Flask, Request, Response, request

STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/")
YEAR = 365 * 24 * 3600
CACHE_MB = 64  # compressed static files kept per process; all of Dash's and ours take about 3 MB per encoding


def static(req: Request) -> bool:
    """A GET of a file that stays the same while this process runs (an asset's URL names its mtime)."""
    return req.method == "GET" and req.path.startswith(STATIC_PREFIXES)


def fingerprinted(req: Request) -> bool:
    """A GET of a static file whose URL changes when the file does (plotly.js, which Dash
    loads by a plain URL, is revalidated by its ETag instead)."""
    if req.method != "GET":
        return False
    if req.path.startswith(STATIC_PREFIXES[0]):
        return check_fingerprint(req.path)[1]
    return req.path.startswith(STATIC_PREFIXES[1]) and "m" in req.args


class StaticCache:
    """flask-compress's cache backend: compressed bodies of static files only (a
    callback's response is never stored: its key is empty), least recently used first out."""

    def __init__(self, max_bytes: int = CACHE_MB * 2**20):
        self.max_bytes, self.size = max_bytes, 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        if key.endswith(";") or len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self.size += len(value) - (len(old) if old is not None else 0)
            self._items[key] = value
            while self.size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)


def _cache_key(req: Request) -> str:
    return req.full_path if static(req) else ""


def _static(response: Response) -> Response:
    """A static file is read whole (Flask streams files, and flask-compress neither caches a
    stream nor gzips one); a fingerprinted one is kept by the browser for a year."""
    if static(request) and response.status_code == 200:
        if fingerprinted(request):
            response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        response.direct_passthrough = False
        response.make_sequence()
    return response


PLOTLY_JS = "_dash-component-suites/plotly/package_data/plotly.min.js"  # the URL dash-renderer loads it from
# dcc's chunks that a Graph and a Dropdown fetch when they first mount, after the page's layout came
_LOW = ' fetchpriority="low"'
GRAPH_CHUNKS = ("_dash-component-suites/dash/dcc/async-graph.js", "_dash-component-suites/dash/dcc/async-dropdown.js")


def preload_plotly(index_string: str, prefix: str) -> str:
    """Dash's page with plotly.js (and dcc's graph and dropdown chunks) fetched from the start:
    the renderer asks for them only once a graph mounts, after the other scripts, the layout and
    the first callbacks (2 s later on a 20 Mbit/s link); fetched alongside them they are there when
    the scatterplot needs them. plotly.js (half of the page's bytes) at low priority: the scripts
    the page runs first are not slowed by it, and it still comes before a graph mounts (about
    0.1 s earlier first paint on the demo over 20 Mbit/s, A/B medians of 8 runs)."""
    links = "".join(f'<link rel="preload" as="script" href="{prefix}{url}"{_LOW if url == PLOTLY_JS else ""}>\n        '
                    for url in (PLOTLY_JS, *GRAPH_CHUNKS))
    return index_string.replace("{%css%}", links + "{%css%}", 1)


def enable(server: Flask) -> None:
    """Compress `server`'s responses and let browsers keep its fingerprinted static files."""
    from flask_compress import Compress

    server.config.update(
        COMPRESS_ALGORITHM=["zstd", "br", "gzip"],
        COMPRESS_BR_LEVEL=5,  # callbacks are compressed on every request: 5 is fast and near 9's size
        COMPRESS_CACHE_BACKEND=StaticCache,
        COMPRESS_CACHE_KEY=_cache_key,
    )
    Compress(server)
    server.after_request(_static)  # Flask runs after-request hooks last-registered first: this one before compression
