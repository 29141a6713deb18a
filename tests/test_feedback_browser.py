"""Slow redraws show a spinner (the map, the Layers tab), and the map's one bridge into
dash-cytoscape's internals still finds them in the installed version."""
from __future__ import annotations

import time
from pathlib import Path

import dash_cytoscape
import pytest

from cnc.pages import overview
from cnc.ui import layers, model_map
from tests.conftest import ROOT, wait_for
from tests.test_layers_browser import tiny_app_ctx  # noqa: F401  (fixture)

SPINNER = ".dash-spinner, .dash-spinner-container"


def slowed(fn, seconds: float):
    def slow(*args, **kwargs):
        time.sleep(seconds)
        return fn(*args, **kwargs)
    return slow


def spinner_shows(driver, inside: str, timeout: float = 10) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(f"return !!document.querySelector('{inside}') && "
                                 f"Array.from(document.querySelectorAll('{SPINNER}')).some(function(s) {{"
                                 f"  return s.closest('{inside}') && s.offsetParent !== null; }})"):
            return True
        time.sleep(0.1)
    return False


def test_a_slow_map_redraw_shows_a_spinner_over_the_map(synthetic_ctx, serve, chrome, monkeypatch):
    from selenium.webdriver.common.by import By

    url = serve(synthetic_ctx)
    chrome.get(url + "/")
    wait_for(chrome, ".map-box canvas")
    assert not spinner_shows(chrome, ".map-loading", timeout=1)  # nothing slow yet
    monkeypatch.setattr(overview, "map_outputs", slowed(overview.map_outputs, 1.5))
    chrome.find_element(By.XPATH, "//label[.//span[text()='By operation']]").click()
    assert spinner_shows(chrome, ".map-loading")
    assert chrome.find_element(By.CSS_SELECTOR, ".map-box").is_displayed()  # the map stays visible under it


def test_a_slow_layers_tab_shows_a_spinner(tiny_app_ctx, serve, chrome, monkeypatch):  # noqa: F811
    from selenium.webdriver.common.by import By

    url = serve(tiny_app_ctx)
    chrome.get(f"{url}/compare?models=base,copy,pruned")
    wait_for(chrome, ".tab")
    monkeypatch.setattr(layers, "render_body", slowed(layers.render_body, 1.5))
    next(t for t in chrome.find_elements(By.CSS_SELECTOR, ".tab") if t.text.strip() == "Layers").click()
    assert spinner_shows(chrome, ".layers")
    wait_for(chrome, ".layers-row", count=6)


def test_the_cytoscape_bridge_matches_the_installed_dash_cytoscape():
    """assets/cyto_bridge.js is the only user of dash-cytoscape's internals; when an upgrade
    drops them this fails here (and the bridge reports it in the page)."""
    bundle = (Path(dash_cytoscape.__file__).parent / "dash_cytoscape.min.js").read_text(errors="replace")
    assert "_cyreg" in bundle, "dash-cytoscape no longer keeps its registry (_cyreg) on the container"
    assert "invalidateContainerClientCoordsCache" in bundle
    assert dash_cytoscape.__version__.startswith(model_map.CYTO_TESTED + "."), (
        f"dash-cytoscape {dash_cytoscape.__version__}: check assets/cyto_bridge.js against it, then "
        f"update CYTO_TESTED")
    internals = [p.name for p in (ROOT / "cnc" / "assets").glob("*.js") if "_cyreg" in p.read_text()
                 or "invalidateContainerClientCoordsCache" in p.read_text()]
    assert internals == ["cyto_bridge.js"]
    assert not any("_cyreg" in p.read_text() for p in (ROOT / "cnc").rglob("*.py"))


@pytest.mark.parametrize("missing", ["_cyreg"])
def test_the_bridge_reports_missing_internals_in_the_page(synthetic_ctx, serve, chrome, missing):
    url = serve(synthetic_ctx)
    chrome.get(url + "/")
    wait_for(chrome, ".map-box canvas")
    # simulate a dash-cytoscape that no longer keeps its registry on the container
    chrome.execute_script("var b = document.querySelector('.cnc-model-map'); delete b._cyreg; "
                          "return window.cncCyto.get('cnc-model-map');")
    note = wait_for(chrome, ".map-bridge-error")[0]
    assert "dash-cytoscape" in note.text and "_cyreg" in note.text and dash_cytoscape.__version__ in note.text
