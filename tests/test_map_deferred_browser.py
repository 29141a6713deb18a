"""A large Model Map in headless Chromium: a change restyles the nodes in view at once and the
rest in idle time (assets/model_map.js), and nothing ever shows or selects stale values — moving
the view or selecting a model brings every node up to date first."""
from __future__ import annotations

import json

import pytest
from conftest import wait_for
from selenium.webdriver.support.ui import WebDriverWait

from cnc.analysis.encoding import colors
from cnc.pages import overview
from cnc.ui import filters, legend
from cnc.ui.model_map import node_id

N_MODELS = 1500  # opens at a readable zoom on its top-left corner: most nodes out of view
CY = "var cy = window.cncCyto.get('cnc-model-map');"
STATE = CY + """
var e = cy.extent(), nodes = cy.nodes('[mid]');
var inView = function(n) { var p = n.position(); return p.x >= e.x1 && p.x <= e.x2 && p.y >= e.y1 && p.y <= e.y2; };
return {pending: window.dash_clientside.cncMap.pending(),
        colours: nodes.map(function(n) { return [n.id(), n.data('c'), inView(n), n.hasClass('off'), n.selectable()]; })};
"""


@pytest.fixture
def large_ctx(tmp_path):
    from cnc.experiment.config import load_config
    from cnc.experiment.synthetic import write_experiment
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(write_experiment(N_MODELS, tmp_path / "exp.json"), cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))


def _set(driver, component_id: dict, props: dict) -> None:
    driver.execute_script("window.dash_clientside.set_props(arguments[0], arguments[1]);", component_id, props)


def _open(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, ".cnc-model-map canvas")
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        CY + f"return !!cy && cy.nodes('[mid]').length === {N_MODELS};"))


def test_colour_change_shows_in_view_first_and_everywhere_after(large_ctx, serve, chrome):
    exp = large_ctx.experiment
    want = {node_id(m): c for m, c in zip(exp.models, colors(exp, "Latency"))}
    _open(chrome, serve(large_ctx) + "/")
    state = chrome.execute_script(STATE)
    assert sum(1 for *_, seen, _, _ in state["colours"] if seen) < N_MODELS / 4  # most of the map is out of view
    _set(chrome, legend.COLOR, {"value": "Latency"})
    WebDriverWait(chrome, 30).until(lambda d: all(
        c == want[i] for i, c, seen, *_ in d.execute_script(STATE)["colours"] if seen))
    # a pan applies whatever is still deferred before the view moves
    after_pan = chrome.execute_script(CY + "cy.panBy({x: -40, y: -40});" + STATE.replace(CY, ""))
    assert after_pan["pending"] == 0
    assert all(c == want[i] for i, c, *_ in after_pan["colours"])


def test_a_model_enabled_out_of_view_can_be_selected_at_once(large_ctx, serve, chrome):
    exp = large_ctx.experiment
    base = serve(large_ctx)
    _open(chrome, base + "/?f.Accuracy=0.99:")  # almost every model filtered out
    last = list(exp.models)[-1]  # bottom of the map: out of view
    state = {i: (seen, off) for i, _, seen, off, _ in chrome.execute_script(STATE)["colours"]}
    assert not state[node_id(last)][0]
    _set(chrome, filters._part("hist", "Accuracy"), {"selectedData": {"points": [], "range": {"x": [0.0, 1.0]}}})
    WebDriverWait(chrome, 30).until(lambda d: d.execute_script(
        CY + "return cy.nodes('.off').length;") == 0 or d.execute_script(STATE)["pending"] > 0)
    _set(chrome, overview.SELECTION, {"data": [last]})
    WebDriverWait(chrome, 30).until(lambda d: d.execute_script(
        CY + f"return cy.getElementById({json.dumps(node_id(last))}).selected();"))
