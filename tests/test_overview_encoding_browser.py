"""The Overview's encodings computed in the browser (cnc/assets/encoding.js, scatter.js,
filters.js) against the server's rules (cnc.analysis.encoding, filters, pareto): the same
colours, sizes, hollow rings, passing set, Pareto front and count, in the map and the
scatterplot, after the first draw and after a colour change, a size change and a brush."""
from __future__ import annotations

import json

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from cnc.analysis.encoding import MISSING_COLOR, colors, size_missing, sizes
from cnc.analysis.filters import Filter, enabled_models
from cnc.analysis.pareto import pareto_front
from cnc.experiment.config import load_config
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from cnc.ui import filters as filter_ui
from cnc.ui import legend, model_map, scatter
from tests.conftest import wait_for

STATE = """
var cy = window.cncCyto.get('cnc-model-map'), gd = document.querySelector('.scatter-graph .js-plotly-plot');
if (!cy || !gd || !gd.data || !gd.data[1]) { return null; }
var nodes = {};
cy.nodes('[mid]').forEach(function(n) {
    nodes[n.data('mid')] = [n.data('c'), n.data('s'), !!n.data('m'), n.hasClass('off')]; });
/* WebGL traces take colours as [r, g, b, alpha] channels (0..1): compare them as the text they encode */
var text = function(c) {
    if (!Array.isArray(c)) { return c; }
    var rgb = c.slice(0, 3).map(function(v) { return Math.round(v * 255); });
    return c[3] >= 1 ? '#' + rgb.map(function(v) { return ('0' + v.toString(16)).slice(-2); }).join('')
                     : 'rgba(' + rgb.join(',') + ',' + c[3] + ')';
};
var trace = function(t) { return {ids: t.customdata || [], color: [].concat(t.marker.color).map(text),
                                  size: [].concat(t.marker.size), symbol: t.marker.symbol || null}; };
return {kind: gd.data[1].type, pending: window.dash_clientside.cncMap.pending(), nodes: nodes, off: trace(gd.data[0]), on: trace(gd.data[1]),
        front: document.querySelectorAll('.front-list .chip').length,
        frontX: gd.data[2].x, count: document.querySelector('.pass-count').textContent,
        shapes: (gd.layout.shapes || []).length};
"""


def _ctx(tmp_path) -> AppContext:
    """Eleven models with awkward values: a missing colour, a missing size, ties, a value on a
    palette level's rounding edge and one at each end of the range."""
    values = [(0.5, 1.0, 3.0), (0.6, 9.0, 2.5), (0.7, None, 2.0), (None, 4.0, 1.0), (0.9, 2.0, 1.0),
              (0.9, 2.0, 1.0), (0.8125, 7.25, 0.5), (0.55, 3.3, 4.0), (0.95, 8.0, 0.25), (0.65, 10.0, 5.0),
              (0.75, 5.5, 1.5)]
    models = [{"id": f"m{i}", "metrics": {"acc": a, "size": s, "lat": la},
               **({"base": "m0", "operation": "prune"} if i else {})} for i, (a, s, la) in enumerate(values)]
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"metrics": [{"name": "acc"}, {"name": "size", "higher_is_better": False, "unit": "KB"},
                                            {"name": "lat", "higher_is_better": False}], "models": models}))
    config = load_config(path, cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))


def _expect(exp, color: str, size: str, filters: list[Filter], x: str = "size", y: str = "acc") -> dict:
    ok = set(enabled_models(exp, filters))
    cols, node_px, hollow = colors(exp, color), sizes(exp, size, *model_map.NODE_PX), size_missing(exp, size)
    dot_px = sizes(exp, size, scatter.MIN_PX, scatter.MAX_PX)
    nodes = {mid: [cols[i], node_px[i], hollow[i], mid not in ok] for i, mid in enumerate(exp.models)}
    pts = [(mid, m.metrics.get(x), m.metrics.get(y)) for mid, m in exp.models.items()
           if m.metrics.get(x) is not None and m.metrics.get(y) is not None]
    front = pareto_front([p for p in pts if p[0] in ok], exp.metrics[x].higher_is_better,
                         exp.metrics[y].higher_is_better)
    index = {mid: i for i, mid in enumerate(exp.models)}
    on = [p[0] for p in pts if p[0] in ok]
    return {"nodes": nodes, "on_ids": on, "on_color": [cols[index[m]] for m in on],
            "on_size": [dot_px[index[m]] for m in on], "off_ids": [p[0] for p in pts if p[0] not in ok],
            "on_symbol": (["circle-open" if hollow[index[m]] else "circle" for m in on]
                          if any(hollow[index[m]] for m in on) else None),
            "front_x": [exp.models[m].metrics[x] for m in front], "count": f"{len(ok)} of {len(exp.models)} models pass"}


def _matches(state: dict | None, want: dict) -> bool:
    return bool(state) and state["pending"] == 0 and state["nodes"] == want["nodes"] and \
        state["on"]["ids"] == want["on_ids"] and state["on"]["color"] == want["on_color"] and \
        state["on"]["size"] == want["on_size"] and state["on"]["symbol"] == want["on_symbol"] and \
        state["off"]["ids"] == want["off_ids"] and state["frontX"] == want["front_x"] and \
        state["count"] == want["count"]


def _wait_for_state(driver, want: dict) -> dict:
    try:
        WebDriverWait(driver, 30).until(lambda d: _matches(d.execute_script(STATE), want))
    except Exception:
        state = driver.execute_script(STATE)
        raise AssertionError(f"browser drew {json.dumps(state, indent=1)[:3000]}\nexpected {want}") from None
    return driver.execute_script(STATE)


@pytest.mark.parametrize("webgl", [False, True], ids=["svg", "webgl"])
def test_browser_encodings_follow_the_server_rules(tmp_path, serve, chrome, monkeypatch, webgl):
    if webgl:  # large experiments' WebGL scatterplot (colours as channel arrays), on the same small one
        monkeypatch.setattr(scatter, "WEBGL_FROM", 1)
    ctx = _ctx(tmp_path)
    exp = ctx.experiment
    chrome.get(serve(ctx) + "/?f.lat=:3&sel=m1,m4&x=lat")
    wait_for(chrome, ".cnc-model-map canvas")
    state = _wait_for_state(chrome, _expect(exp, "acc", "size", [Filter("lat", None, 3.0)], x="lat"))
    assert state["kind"] == ("scattergl" if webgl else "scatter")
    assert state["nodes"]["m3"][0] == MISSING_COLOR  # no colour value: grey
    assert state["nodes"]["m2"][2] and state["on"]["symbol"] is not None  # no size value: a hollow ring
    assert state["shapes"] == 2  # the selection's outlines
    assert state["off"]["color"] and all(c.startswith("rgba(") and c.endswith(",0.2)") for c in state["off"]["color"])

    chrome.execute_script("window.dash_clientside.set_props(arguments[0], {value: 'lat'});", legend.COLOR)
    _wait_for_state(chrome, _expect(exp, "lat", "size", [Filter("lat", None, 3.0)], x="lat"))
    chrome.execute_script("window.dash_clientside.set_props(arguments[0], {value: 'acc'});", legend.SIZE)
    _wait_for_state(chrome, _expect(exp, "lat", "acc", [Filter("lat", None, 3.0)], x="lat"))
    # a brush redraws at once, and the server's rounding of it agrees
    brush = filter_ui._part("hist", "lat")
    chrome.execute_script("window.dash_clientside.set_props(arguments[0], "
                          "{selectedData: {points: [], range: {x: [0.9, 2.71828]}}});", brush)
    _wait_for_state(chrome, _expect(exp, "lat", "acc", [Filter("lat", 0.9, 2.718)], x="lat"))
    WebDriverWait(chrome, 30).until(lambda d: "f.lat=0.9%3A2.718" in d.current_url or "f.lat=0.9:2.718" in d.current_url)
    assert chrome.find_elements("css selector", ".front-list .chip")
