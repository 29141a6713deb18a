"""The page a browser asked for, drawn into the first layout instead of by a callback after it.

Dash fetches the layout (`/_dash-layout`), then the callback map, then fires the router callback,
and only its answer holds the page: one more round trip and the renderer's dispatch before the Model
Map and the scatterplot can start drawing, on every first visit. The layout request carries the
page's address as its Referer (same origin, so the whole URL); when it names a page drawn this way
(the Overview), the layout holds that page already and the router's first call changes nothing.
Anything else (no Referer, another origin, another path) leaves the page to the router as before. The address is
data: only its path is looked up among the pages, its query is parsed like the router's.
"""
from __future__ import annotations

from typing import Container
from urllib.parse import urlsplit

import flask


def requested(pages: Container[str]) -> tuple[str, str] | None:
    """(path, search) of the page whose layout is being fetched, if this is a layout request from
    one of `pages` on this server; `search` is "" or "?…" as dcc.Location reports it."""
    if not flask.has_request_context():
        return None
    referrer = flask.request.referrer
    if not referrer or len(referrer) > 8192:
        return None
    try:
        url = urlsplit(referrer)
    except ValueError:
        return None
    if url.netloc != flask.request.host or (url.path or "/") not in pages:
        return None
    return url.path or "/", f"?{url.query}" if url.query else ""
