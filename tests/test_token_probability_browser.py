"""llama.cpp's Δp statistics in Compare's token-level panel, in headless Chromium, on the real
precomputed tiny language models (tests/tiny_lm)."""
from __future__ import annotations

from cnc.server.context import AppContext
from cnc.ui import token_stats
from tests.conftest import screenshot, wait_for, wait_until
from tests.test_generative_precompute import precomputed

MODELS = ["base", "p30", "p60"]


def test_token_panel_shows_delta_p(tmp_path, serve, chrome):
    ctx = AppContext(*precomputed(tmp_path))
    stats = token_stats.statistics(ctx, MODELS)
    url = serve(ctx)
    chrome.get(url + "/compare?models=" + ",".join(MODELS))
    summary = wait_for(chrome, ".bh-token-panel summary")[0]
    chrome.execute_script("arguments[0].click()", summary)
    wait_until(lambda: chrome.find_element("css selector", ".bh-token-stats").is_displayed())
    rows = {r.find_element("css selector", "th").text: [td.text for td in r.find_elements("css selector", "td")]
            for r in chrome.find_elements("css selector", ".bh-token-stats tbody tr")}
    names = ["Mean Δp", "Maximum Δp", "99.9% Δp", "Median Δp", "0.1% Δp", "Minimum Δp", "RMS Δp"]
    assert all(name in rows for name in names)
    assert rows["RMS Δp"] == [format(stats[m]["RMS Δp"], ".3%") for m in MODELS]
    assert rows["Mean Δp"][0] == "0.000%" and rows["Mean Δp"][2] != "0.000%"  # the root against itself; p60 moved
    chrome.execute_script("arguments[0].scrollIntoView()", chrome.find_element("css selector", ".bh-token-stats"))
    screenshot(chrome, "token_panel_delta_p")
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors
