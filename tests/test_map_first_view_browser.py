"""A large Model Map's first frame holds only what its first view shows (assets/map_view.js,
`cncMap.elements`); the rest comes in idle time, or at once when a pan, the Fit button or a
selection needs it. Idle time is switched off here, so each of those is what brings the rest."""
from __future__ import annotations

import json

import pytest
from conftest import wait_for
from selenium.webdriver.support.ui import WebDriverWait

from cnc.bench.first_paint import map_positions
from cnc.pages import overview
from cnc.ui.model_map import node_id

N_MODELS = 1500
CY = "var cy = window.cncCyto.get('cnc-model-map');"
NO_IDLE = "window.requestIdleCallback = function() { return 0; };"  # the rest never comes by itself
STATE = CY + """
if (!cy) { return null; }
var e = cy.extent(), all = arguments[0];
var inView = all.filter(function(m) { return m[1] >= e.x1 && m[1] <= e.x2 && m[2] >= e.y1 && m[2] <= e.y2; });
return {nodes: cy.nodes('[mid]').length, inView: inView.length,
        missingInView: inView.filter(function(m) { return !cy.getElementById(m[0]).length; }).length,
        edgesOk: cy.edges().every(function(ed) { return ed.source().length && ed.target().length; }),
        zoom: cy.zoom()};
"""


@pytest.fixture
def large_ctx(tmp_path):
    from cnc.experiment.config import load_config
    from cnc.experiment.synthetic import write_experiment
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(write_experiment(N_MODELS, tmp_path / "exp.json"), cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))


def _open_partial(chrome, url: str, positions: list) -> dict:
    chrome.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NO_IDLE})
    chrome.get(url)
    wait_for(chrome, ".cnc-model-map canvas")
    WebDriverWait(chrome, 60).until(lambda d: (d.execute_script(STATE, positions) or {}).get("nodes", 0) > 0)
    return chrome.execute_script(STATE, positions)


def _complete(chrome, positions: list) -> dict:
    WebDriverWait(chrome, 30).until(lambda d: d.execute_script(STATE, positions)["nodes"] == N_MODELS)
    return chrome.execute_script(STATE, positions)


def test_first_frame_holds_the_view_and_a_pan_brings_the_rest(large_ctx, serve, chrome):
    positions = map_positions(large_ctx.experiment)
    first = _open_partial(chrome, serve(large_ctx) + "/", positions)
    assert 0 < first["nodes"] < N_MODELS / 2  # only the first view's part, though nothing else comes
    assert first["inView"] > 0 and first["missingInView"] == 0 and first["edgesOk"]
    assert first["zoom"] == pytest.approx(0.5)  # the first view is already the readable top-left one
    chrome.execute_script(CY + "cy.panBy({x: 0, y: -300});")
    after = _complete(chrome, positions)
    assert after["missingInView"] == 0 and after["edgesOk"]
    links = sum(m.base is not None for m in large_ctx.experiment.models.values())
    assert chrome.execute_script(CY + "return cy.edges().length;") == links


def test_fit_shows_every_model(large_ctx, serve, chrome):
    positions = map_positions(large_ctx.experiment)
    _open_partial(chrome, serve(large_ctx) + "/", positions)
    chrome.find_element("css selector", ".map-fit").click()
    _complete(chrome, positions)
    centred = CY + """var e = cy.extent(), b = cy.elements().not('.blank').boundingBox();
        return [cy.zoom(), (e.x1 + e.x2) / 2 - (b.x1 + b.x2) / 2, (e.y1 + e.y2) / 2 - (b.y1 + b.y2) / 2, b.h];"""
    # the fit is of the whole map (centred on it), not of the part drawn first
    WebDriverWait(chrome, 30).until(lambda d: d.execute_script(centred)[0] < 0.5)
    zoom, dx, dy, height = chrome.execute_script(centred)
    assert abs(dx) < 5 / zoom and abs(dy) < 5 / zoom and height > 10_000


def test_a_model_out_of_the_first_view_can_be_selected(large_ctx, serve, chrome):
    positions = map_positions(large_ctx.experiment)
    last = list(large_ctx.experiment.models)[-1]  # bottom of the map: not in the first part
    _open_partial(chrome, serve(large_ctx) + "/", positions)
    assert not chrome.execute_script(CY + f"return cy.getElementById({json.dumps(node_id(last))}).length;")
    chrome.execute_script("window.dash_clientside.set_props(arguments[0], arguments[1]);",
                          overview.SELECTION, {"data": [last]})
    WebDriverWait(chrome, 30).until(lambda d: d.execute_script(
        CY + f"var n = cy.getElementById({json.dumps(node_id(last))}); return n.length > 0 && n.selected();"))
    assert chrome.execute_script(STATE, positions)["nodes"] == N_MODELS



@pytest.mark.parametrize("n_models", [40, N_MODELS])
def test_labels_are_styled_once_before_the_elements_go_in(n_models, tmp_path, serve, chrome):
    """The label rule for the first view is set while cytoscape holds no element (a rule set later
    restyles every element: 0.4-0.6 s at 1,000 models); the view then keeps it."""
    from cnc.experiment.config import load_config
    from cnc.experiment.synthetic import write_experiment
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(write_experiment(n_models, tmp_path / "exp.json"), cache_dir=tmp_path / "cache")
    ctx = AppContext(config=config, store=SummaryStore(config.cache_dir))
    chrome.get(serve(ctx) + "/")
    WebDriverWait(chrome, 60).until(lambda d: d.execute_script(CY + f"return !!cy && cy.nodes('[mid]').length === {n_models};"))
    labelled = chrome.execute_script(CY + "return cy.nodes('[mid]').filter(function(n) { return !!n.data('lt'); }).length;")
    assert labelled > 0.5 * min(n_models, 100)  # readable labels are shown
    rules = chrome.execute_script(CY + "return cy._cncRules;")
    assert rules == [0], rules  # one rule, set while cytoscape held no node
