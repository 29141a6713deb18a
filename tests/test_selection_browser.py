"""Selection Details on the Overview page in headless Chromium, with the real demo (issue 4)."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.conftest import screenshot, wait_for, wait_until

SWEEP = ["mag10", "mag30", "mag50", "mag90", "mag10-ft", "mag30-ft", "mag50-ft", "mag90-ft"]
MIXED = ["mag50", "mag50-ft", "mag50-bn", "mag50-ft-int8s", "layer50", "taylor50-ft", "base-int8d"]
GRAPH = ".selection-details .sd-graph .js-plotly-plot"


def query_of(driver) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(driver.current_url).query).items()}




def figure(driver) -> dict:
    """What plotly drew: trace names, x/y per trace and the axis / legend titles."""
    return driver.execute_script("""
        const gd = document.querySelector(arguments[0]);
        if (!gd || !gd.data) return null;
        return {traces: gd.data.map(t => ({name: t.name, x: t.x, y: t.y, ids: t.customdata})),
                x: gd.layout.xaxis.title.text, legend: (gd.layout.legend.title || {}).text || ''};
    """, GRAPH)


def scroll_to_panel(driver) -> None:
    driver.execute_script("document.querySelector('.selection-details').scrollIntoView()")
    time.sleep(0.5)


def click_text(driver, css: str, text: str) -> None:
    el = next(e for e in wait_for(driver, css) if e.text.strip() == text)
    driver.execute_script("arguments[0].click()", el)


def choose_metric(driver, text: str) -> None:
    driver.execute_script("document.querySelector('.sd-metric-pick button').click()")
    option = next(o for o in wait_for(driver, "[role='option']") if o.text.strip() == text)
    driver.execute_script("arguments[0].click()", option)
    if any(o.is_displayed() for o in driver.find_elements("css selector", "[role='option']")):
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()


def test_magnitude_sweep_with_and_without_fine_tuning(demo_ctx, serve, chrome):
    url = serve(demo_ctx)
    chrome.get(url + "/?sel=" + ",".join(SWEEP))
    wait_for(chrome, GRAPH)
    wait_until(lambda: figure(chrome) and len(figure(chrome)["traces"]) == 2)
    fig = figure(chrome)
    assert fig["x"] == "amount" and fig["legend"].strip() == "fine-tune"
    assert [t["name"] for t in fig["traces"]] == ["no", "yes"]
    assert fig["traces"][0]["x"] == ["0.1", "0.3", "0.5", "0.9"]
    acc = {m: demo_ctx.experiment.models[m].metrics["Accuracy"] for m in SWEEP}
    assert fig["traces"][1]["y"] == [acc[f"mag{p}-ft"] for p in (10, 30, 50, 90)]
    rows = chrome.find_elements("css selector", ".selection-details .sd-table tbody tr")
    assert len(rows) == len(SWEEP)
    assert "%" in rows[0].text  # formatted per metric
    current = chrome.find_elements("css selector", ".sd-table thead th.current")
    assert [c.text for c in current] == ["Accuracy"]  # drawn by assets/selection_table.js
    assert len(chrome.find_elements("css selector", ".sd-table tbody td.current")) == len(SWEEP)
    assert len(chrome.find_elements("css selector", ".sd-table tbody td.var-col")) == len(SWEEP) * 2
    assert len(chrome.find_elements("css selector", f"{GRAPH} .bars .point")) == len(SWEEP)
    compare = chrome.find_element("css selector", ".selection-details a.btn")
    assert compare.get_attribute("href").endswith("/compare?models=" + ",".join(SWEEP))
    scroll_to_panel(chrome)
    screenshot(chrome, "selection_details_sweep")
    # the chart metric goes into the link and survives a reload
    choose_metric(chrome, "Size (KB)")
    wait_until(lambda: query_of(chrome).get("smetric") == "Size")
    wait_until(lambda: figure(chrome)["traces"][0]["y"][0] == demo_ctx.experiment.models["mag10"].metrics["Size"])
    chrome.get(chrome.current_url)
    wait_for(chrome, GRAPH)
    wait_until(lambda: "Size" in chrome.find_element("css selector", ".sd-metric-pick").text)
    # Compare opens the Performance Comparison page with the selection
    click_text(chrome, ".selection-details a.btn", "Compare in detail →")
    wait_until(lambda: urlparse(chrome.current_url).path == "/compare")
    assert query_of(chrome)["models"] == ",".join(SWEEP)


def test_refine_comparison_flatten_values_and_link(demo_ctx, serve, chrome):
    url = serve(demo_ctx)
    chrome.get(url + "/?sel=" + ",".join(MIXED))
    wait_for(chrome, ".sd-refine[open]")
    wait_until(lambda: figure(chrome) is not None)
    notes = chrome.find_element("css selector", ".selection-details .sd-notes").text
    assert "More than two variables differ" in notes
    assert len(figure(chrome)["traces"][0]["x"]) >= 1
    # one bar per model, labelled with its recipe
    click_text(chrome, ".sd-mode label", "One bar per model (recipe)")
    wait_until(lambda: query_of(chrome).get("sflat") == "1")
    wait_until(lambda: len(figure(chrome)["traces"]) == 1 and len(figure(chrome)["traces"][0]["x"]) == len(MIXED))
    assert figure(chrome)["x"] == ""  # recipe bars need no axis title
    assert any("fine-tune 3" in x for x in figure(chrome)["traces"][0]["x"])
    # leave out the quantized models by unticking a value
    click_text(chrome, ".sd-mode label", "Chart up to two variables")
    wait_until(lambda: "sflat" not in query_of(chrome))
    values = chrome.find_elements("css selector", ".sd-var-values")
    op_row = next(v for v in values if v.text.startswith("first step"))
    box = next(o for o in op_row.find_elements("css selector", "label") if o.text.strip().startswith("simulated int8"))
    chrome.execute_script("arguments[0].click()", box)
    wait_until(lambda: "sval" in query_of(chrome))
    wait_until(lambda: "base-int8d" not in sum((t["ids"] for t in figure(chrome)["traces"]), []))
    muted = chrome.find_elements("css selector", ".sd-table tr.not-charted")
    assert any("int8" in r.text.lower() for r in muted)
    scroll_to_panel(chrome)
    screenshot(chrome, "selection_details_refine")
    # the refinement is in the link: reopening it shows the same chart
    link = chrome.current_url
    before = figure(chrome)
    chrome.get("about:blank")
    chrome.get(link)
    wait_for(chrome, GRAPH)
    wait_until(lambda: figure(chrome) is not None)
    assert figure(chrome) == before


def test_bad_link_values_are_reported_and_dropped(demo_ctx, serve, chrome):
    chrome.get(serve(demo_ctx) + "/?sel=mag50,mag50-ft&smetric=Bogus&svars=7&sxmod=ghost")
    wait_for(chrome, ".notice")
    text = " ".join(n.text for n in chrome.find_elements("css selector", ".notice"))
    assert "Bogus" in text and "refinement" in text and "excluded model" in text
    wait_for(chrome, GRAPH)
    assert "Accuracy" in chrome.find_element("css selector", ".sd-metric-pick").text


def test_selection_changes_update_the_panel(demo_ctx, serve, chrome):
    chrome.get(serve(demo_ctx) + "/?sel=mag50")
    wait_for(chrome, ".selection-details .sd-table")
    assert len(chrome.find_elements("css selector", ".sd-table tbody tr")) == 1
    assert not chrome.find_element("css selector", ".selection-details .sd-graph").is_displayed()
    assert "disabled" in chrome.find_element("css selector", ".selection-details a.btn").get_attribute("class")
    click_text(chrome, ".selection-bar button", "Select subtree")  # the Overview's own control
    wait_until(lambda: len(chrome.find_elements("css selector", ".sd-table tbody tr")) > 3)
    wait_until(lambda: figure(chrome) is not None and chrome.find_element(
        "css selector", ".selection-details .sd-graph").is_displayed())
    ids = set(sum((t["ids"] for t in figure(chrome)["traces"]), []))
    assert len(ids) >= 4 and ids <= set(demo_ctx.experiment.subtree("mag50"))
    assert "disabled" not in chrome.find_element("css selector", ".selection-details a.btn").get_attribute("class")
    click_text(chrome, ".selection-bar button", "Clear selection")
    wait_until(lambda: "Select models" in chrome.find_element("css selector", ".selection-details").text)
    assert not chrome.find_elements("css selector", ".sd-table tbody tr")
