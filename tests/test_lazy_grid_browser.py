"""The Overview does not fetch AG Grid (only Compare's Behaviors table uses it): its script comes
when a grid first mounts, or in idle time once the Overview is drawn (cnc/app/lazy_grid.py)."""
from __future__ import annotations

from conftest import wait_until
from selenium.webdriver.common.by import By

from cnc.app.lazy_grid import defer_grid

GRID_JS = "return performance.getEntriesByType('resource').filter(e => e.name.indexOf('dash_ag_grid.v') >= 0).length"
# fetched before the map was seen drawn and before the idle-time prefetch (3 s after the load event) could start
GRID_JS_EARLY = """var nav = performance.getEntriesByType('navigation')[0], until = Math.min(arguments[0], nav.loadEventEnd + 2900);
return performance.getEntriesByType('resource').filter(e => e.name.indexOf('dash_ag_grid.v') >= 0 && e.startTime < until).length"""
ROWS = "return document.querySelectorAll('.bh-grid .ag-row:not(.bh-spark-row) .bh-cell').length"


def test_only_compare_pages_carry_the_grid_tag():
    tag = '<script src="/_dash-component-suites/dash_ag_grid/dash_ag_grid.v35_3_0m1.min.js"></script>'
    other = '<script src="/_dash-component-suites/dash_cytoscape/dash_cytoscape.v1_0_2m1.min.js"></script>'
    assert defer_grid(tag + other, "/compare") == tag + other
    deferred = defer_grid(tag + other, "/")
    assert tag not in deferred and other in deferred
    assert 'window.cncGridSrc = "/_dash-component-suites/dash_ag_grid/dash_ag_grid.v35_3_0m1.min.js"' in deferred


def test_overview_draws_without_the_grid_and_compare_still_shows_it(demo_ctx, serve, chrome):
    url = serve(demo_ctx)
    chrome.execute_cdp_cmd("Network.enable", {})
    chrome.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    chrome.get(url + "/?sel=base,mag50,mag90")
    wait_until(lambda: chrome.execute_script(
        "var cy = window.cncCyto && window.cncCyto.get('cnc-model-map'); return !!cy && cy.nodes('[mid]').length > 30"))
    drawn = chrome.execute_script("return performance.now()")
    assert chrome.execute_script(GRID_JS_EARLY, drawn) == 0  # the map is drawn, the grid's script not fetched
    assert chrome.execute_script("return window.dash_ag_grid.AgGrid.name") == "LazyAgGrid"
    # in the same page (no reload), on to Compare: the stand-in fetches the script and the table appears
    def compare_button():
        return [b for b in chrome.find_elements(By.CSS_SELECTOR, "a, button") if "Compare selected" in b.text]

    wait_until(compare_button)
    chrome.execute_script("arguments[0].click()", compare_button()[0])
    wait_until(lambda: chrome.execute_script(ROWS) > 10, timeout=120)
    assert chrome.execute_script(GRID_JS) == 1
    assert "/compare" in chrome.current_url


def test_compare_opened_directly_loads_the_grid_with_the_page(demo_ctx, serve, chrome):
    chrome.get(serve(demo_ctx) + "/compare?models=base,mag50,mag90")
    wait_until(lambda: chrome.execute_script(ROWS) > 10, timeout=120)
    assert chrome.execute_script("return window.dash_ag_grid.AgGrid.name") != "LazyAgGrid"
