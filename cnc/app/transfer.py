"""What the browser downloads, made small and kept: compressed responses, cached static files.

A first visit used to fetch 8 MB uncompressed (plotly.js alone is 4.8 MB); over a 20 Mbit/s
office or VPN link that was seconds before anything showed. Responses are compressed with the best
encoding the browser offers (brotli, then zstd, then gzip: browsers offer the first two on HTTPS
and localhost); static files are compressed once per process, and those whose URLs carry a
fingerprint (Dash's component suites a version and mtime, our assets `?m=<mtime>`) are kept by the
browser for a year. A static file's brotli body is made again at brotli's best quality in a
background thread (plotly.js 2.5 s of CPU, once): later visitors get it, 14% fewer bytes than a
fast level (the Overview at 1,000 models: 1.09 -> 0.89 MB), the first one is not kept waiting.
"""
from __future__ import annotations

import queue
import threading
from collections import OrderedDict

import brotli
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


BEST_BR = 11


class StaticCache:
    """flask-compress's cache backend: compressed bodies of static files only (a
    callback's response is never stored: its key is empty), least recently used first out. A
    brotli body is replaced by one at brotli's best quality, made in a background thread."""

    def __init__(self, max_bytes: int = CACHE_MB * 2**20):
        self.max_bytes, self.size = max_bytes, 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._best: set[str] = set()  # keys whose body is (or is being made) at the best quality
        self._todo: queue.Queue[tuple[str, bytes]] | None = None

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
            if key in self._best and key in self._items:  # flask-compress sets what it got back: keep the best
                self._items.move_to_end(key)
                return
            if key.startswith("br;") and key not in self._best:
                self._best.add(key)
                self._improve(key, value)
            self._store(key, value)

    def _improve(self, key: str, value: bytes) -> None:
        if self._todo is None:
            self._todo = queue.Queue()
            threading.Thread(target=self._work, name="cnc-brotli", daemon=True).start()
        self._todo.put((key, value))

    def _work(self) -> None:
        assert self._todo is not None
        while True:
            key, value = self._todo.get()
            try:  # a body that fails here keeps its fast-level brotli; the worker and `settle` go on
                best = brotli.compress(brotli.decompress(value), quality=BEST_BR)  # brotli releases the GIL
                with self._lock:
                    if key in self._items and len(best) < len(value):
                        self._store(key, best)
            except (brotli.error, MemoryError):
                pass
            finally:
                self._todo.task_done()

    def settle(self) -> None:
        """Wait for the best-quality bodies being made (tests, benchmarks)."""
        if self._todo is not None:
            self._todo.join()

    def _store(self, key: str, value: bytes) -> None:  # under the lock
        old = self._items.pop(key, None)
        self.size += len(value) - (len(old) if old is not None else 0)
        self._items[key] = value
        while self.size > self.max_bytes:
            dropped_key, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)
            self._best.discard(dropped_key)


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
        COMPRESS_ALGORITHM=["br", "zstd", "gzip"],
        COMPRESS_BR_LEVEL=5,  # callbacks are compressed on every request: 5 is fast and near 9's size
        COMPRESS_CACHE_BACKEND=StaticCache,
        COMPRESS_CACHE_KEY=_cache_key,
    )
    server.extensions["compress"] = Compress(server)  # its `cache`: StaticCache
    server.after_request(_static)  # Flask runs after-request hooks last-registered first: this one before compression
