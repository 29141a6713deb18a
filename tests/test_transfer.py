"""Responses are compressed, static files compressed once and kept by the browser, plotly.js
fetched from the start (cnc/app/transfer.py). The first-paint figure itself is a benchmark
(`python -m cnc.bench --only first_paint`), not a timed test."""
from __future__ import annotations

import gzip
import json
import re

import pytest

from cnc.app import transfer
from cnc.app.webapp import build_app


@pytest.fixture
def app(synthetic_ctx, monkeypatch):
    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.delenv("CNC_AUTH_FILE", raising=False)
    return build_app(synthetic_ctx)


def _scripts(client) -> list[str]:
    return re.findall(r'<script src="([^"]+)"', client.get("/").get_data(as_text=True))


def test_page_scripts_come_gzipped_and_kept_for_a_year(app):
    client = app.server.test_client()
    cytoscape = next(s for s in _scripts(client) if "dash_cytoscape" in s)
    plain = client.get(cytoscape, headers={"Accept-Encoding": "identity"})
    packed = client.get(cytoscape, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 2
    assert "max-age=31536000" in packed.headers["Cache-Control"]
    assert "Accept-Encoding" in packed.headers["Vary"]


@pytest.mark.parametrize("accept, chosen", [("gzip, deflate, br, zstd", "br"), ("gzip, zstd", "zstd"),
                                            ("gzip", "gzip"), ("identity", None)])
def test_best_encoding_the_browser_offers(app, accept, chosen):
    client = app.server.test_client()
    css = re.search(r'href="(/assets/app.css\?m=[^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    resp = client.get(css, headers={"Accept-Encoding": accept})
    assert resp.headers.get("Content-Encoding") == chosen
    assert "immutable" in resp.headers["Cache-Control"]


def test_plotly_is_preloaded_and_revalidated_not_kept(app):
    client = app.server.test_client()
    page = client.get("/").get_data(as_text=True)
    assert f'<link rel="preload" as="script" href="/{transfer.PLOTLY_JS}" fetchpriority="low">' in page
    resp = client.get("/" + transfer.PLOTLY_JS, headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert "max-age" not in resp.headers.get("Cache-Control", "")  # its URL has no fingerprint
    again = client.get("/" + transfer.PLOTLY_JS, headers={"If-None-Match": resp.headers["ETag"].split(":")[0] + '"'})
    assert again.status_code == 304


def test_callbacks_are_compressed_but_never_cached(app, monkeypatch):
    caches, set_item = [], transfer.StaticCache.set
    monkeypatch.setattr(transfer.StaticCache, "set", lambda self, k, v: (caches.append(self), set_item(self, k, v)))
    client = app.server.test_client()
    deps = client.get("/_dash-dependencies", headers={"Accept-Encoding": "gzip"})
    assert deps.headers["Content-Encoding"] == "gzip"
    json.loads(gzip.decompress(deps.data))
    assert caches and not caches[0]._items  # offered (flask-compress offers every body), not kept
    client.get(_scripts(client)[0], headers={"Accept-Encoding": "gzip"})
    assert [k.split(";")[0] for k in caches[0]._items] == ["gzip"]
    assert all("/_dash-component-suites/" in k for k in caches[0]._items)


def test_static_files_come_at_brotlis_best_quality_once_it_is_made(app):
    """The first visitor gets a fast brotli level, later ones the best quality, made meanwhile in a
    background thread (the same bytes unpacked, the ETag per encoding)."""
    import brotli

    client = app.server.test_client()
    plain = client.get("/" + transfer.PLOTLY_JS, headers={"Accept-Encoding": "identity"}).data
    first = client.get("/" + transfer.PLOTLY_JS, headers={"Accept-Encoding": "gzip, br, zstd"})
    assert first.headers["Content-Encoding"] == "br" and brotli.decompress(first.data) == plain
    cache = app.server.extensions["compress"].cache
    cache.settle()
    later = client.get("/" + transfer.PLOTLY_JS, headers={"Accept-Encoding": "gzip, br, zstd"})
    assert brotli.decompress(later.data) == plain
    assert len(later.data) < 0.95 * len(first.data)  # quality 11 against flask-compress's 5
    assert later.headers["ETag"].endswith(':br"')
    assert client.get("/" + transfer.PLOTLY_JS, headers={"Accept-Encoding": "br"}).data == later.data


def test_a_body_brotli_cannot_read_keeps_its_fast_level_and_the_worker_goes_on():
    import brotli

    cache = transfer.StaticCache()
    cache.set("br;/garbled", b"not brotli at all")
    good = brotli.compress(b"x" * 10_000, quality=1)
    cache.set("br;/good", good)
    cache.settle()  # returns: the garbled body did not stop the worker
    assert cache.get("br;/garbled") == b"not brotli at all"
    assert brotli.decompress(cache.get("br;/good")) == b"x" * 10_000 and len(cache.get("br;/good")) < len(good)


def test_static_cache_is_bounded_and_skips_uncacheable():
    cache = transfer.StaticCache(max_bytes=10)
    cache.set("gzip;", b"12345")
    assert cache.get("gzip;") is None
    cache.set("gzip;/a", b"123456")
    cache.set("gzip;/b", b"123456")
    assert cache.get("gzip;/a") is None and cache.get("gzip;/b") == b"123456" and cache.size == 6
