"""The first layout holds the page its Referer names (cnc/app/first_page.py): no router round trip
before the map and the scatterplot can draw; the router's first call then changes nothing, and
any later address (Back to the first one included) is drawn by the router as before."""
from __future__ import annotations

import json

import pytest
from dash._utils import stringify_id

from cnc.app import webapp
from cnc.app.webapp import build_app
from cnc.ui import model_map
from tests.dash_client import call_with, find_key


@pytest.fixture
def app(synthetic_ctx, monkeypatch):
    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.delenv("CNC_AUTH_FILE", raising=False)
    return build_app(synthetic_ctx)


def _layout(client, referrer: str | None) -> dict:
    headers = {"Referer": referrer} if referrer is not None else {}
    r = client.get("/_dash-layout", headers=headers)
    assert r.status_code == 200
    return r.get_json()


def _stores(layout: dict) -> dict:
    """id -> data of the shell's stores (the router's markers)."""
    return {c["props"]["id"]: c["props"].get("data") for c in layout["props"]["children"]
            if c.get("type") == "Store"}


def _has(layout: dict, component_id: dict) -> bool:
    return json.dumps(component_id, sort_keys=True) in json.dumps(layout, sort_keys=True)


def test_the_layout_holds_the_page_its_referrer_names(app):
    client = app.server.test_client()
    page = _layout(client, "http://localhost/?x=Size&y=Accuracy")
    assert _stores(page) == {webapp.RENDERED: "/", webapp.FIRST: "?x=Size&y=Accuracy"}
    assert _has(page, model_map.DATA)  # the Overview's map data is there at once
    # Compare is left to the router, whose spinner shows while a big selection is drawn
    assert _stores(_layout(client, "http://localhost/compare?models=m2,m3"))[webapp.RENDERED] is None
    # a link too long for the address bar (hundreds of selected models) is the router's, which shortens it
    long_link = "http://localhost/?sel=" + ",".join(f"model-{i}" for i in range(400))
    assert _stores(_layout(client, long_link))[webapp.RENDERED] is None


@pytest.mark.parametrize("referrer", [None, "", "http://elsewhere.example/", "http://localhost/nope",
                                      "http://localhost/../etc/passwd", "not a url", "http://[::1/"])
def test_anything_else_leaves_the_page_to_the_router(app, referrer):
    page = _layout(app.server.test_client(), referrer)
    assert _stores(page) == {webapp.RENDERED: None, webapp.FIRST: None}
    assert not _has(page, model_map.DATA)


def _route(app, client, pathname, search, rendered, first):
    r = call_with(app, client, find_key(app, webapp.PAGE, "children"), {
        (stringify_id(webapp.URL), "pathname"): pathname, (stringify_id(webapp.URL), "search"): search,
        (stringify_id(webapp.RENDERED), "data"): rendered, (stringify_id(webapp.FIRST), "data"): first})
    assert r.status_code in (200, 204), r.data[:300]
    return r.get_json()["response"] if r.status_code == 200 else {}


def test_router_skips_the_drawn_page_once(app):
    client = app.server.test_client()
    out = _route(app, client, "/", "?x=Size", "/", "?x=Size")
    assert stringify_id(webapp.PAGE) not in out  # the page stays as the layout drew it
    assert out[stringify_id(webapp.FIRST)]["data"] is None  # and the marker is spent
    # later, Back to that same address (after the app rewrote it): drawn again by the router
    again = _route(app, client, "/", "?x=Size", "/", None)
    assert stringify_id(webapp.PAGE) in again
    # another page: drawn by the router
    other = _route(app, client, "/compare", "", "/", "?x=Size")
    assert stringify_id(webapp.PAGE) in other and other[stringify_id(webapp.RENDERED)]["data"] == "/compare"
