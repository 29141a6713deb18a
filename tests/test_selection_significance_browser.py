"""Selection Details' paired tests in headless Chromium: a bar's hover says whether the model's change
against its root is significant (a real precomputed classifier, tests/test_selection_significance)."""
from __future__ import annotations

from urllib.parse import quote

from cnc.analysis.derived_metrics import SUFFIX
from tests.conftest import screenshot, wait_for, wait_until
from tests.test_selection_browser import GRAPH, scroll_to_panel
from tests.test_selection_significance import MODELS, _direct, classifier_ctx


def hover_text(driver, model: str) -> str:
    """Hover `model`'s bar the way plotly does on a mouse-over and return the tooltip's text."""
    driver.execute_script("""
        const gd = document.querySelector(arguments[0]);
        for (let c = 0; c < gd.data.length; c++) {
            const j = (gd.data[c].customdata || []).indexOf(arguments[1]);
            if (j >= 0) { Plotly.Fx.hover(gd, [{curveNumber: c, pointNumber: j}]); return; }
        }""", GRAPH, model)
    return "".join(e.text for e in wait_for(driver, ".hoverlayer .hovertext")).replace(" ", "")  # SVG lines: no spaces


def test_bar_hover_carries_the_paired_test(tmp_path, serve, chrome):
    ctx = classifier_ctx(tmp_path)
    url = serve(ctx)
    chrome.get(url + "/?sel=" + ",".join(MODELS) + "&smetric=" + quote("Accuracy" + SUFFIX))
    wait_for(chrome, GRAPH)
    scroll_to_panel(chrome)
    wait_until(lambda: "exact McNemar test" in chrome.find_element("css selector", ".selection-details").text)
    b = hover_text(chrome, "b")
    worse, better, _ = _direct(ctx)["b"]
    assert "vsa:Significantchange" in b and f"{worse}right→wrong,{better}wrong→right" in b
    assert "Holmoverthe3modelstested" in b
    screenshot(chrome, "selection_significant_change")
    e = hover_text(chrome, "e")
    assert "vsa:Nosignificantchange" in e and "cannotbetoldfromnoise" in e
    screenshot(chrome, "selection_not_significant")
    errors = [x for x in chrome.get_log("browser") if x["level"] == "SEVERE" and "favicon" not in x["message"]]
    assert not errors
