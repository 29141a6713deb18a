"""Behaviors tab in headless Chromium: synthetic outputs (fast) and the real demo (issue 5)."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from cnc.bench.behaviors import SyntheticOutputs
from cnc.bench.browser import choose
from tests.conftest import screenshot, wait_for, wait_until

MODELS = ["root0", "m2", "m3", "m4"]


def query_of(driver) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(driver.current_url).query).items()}




def header(driver, text: str):
    for el in driver.find_elements("css selector", ".bh-grid .ag-header-cell"):
        if text in el.text:
            return el
    raise AssertionError(f"no header {text!r}")


def texts(driver, css: str) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim())", css)


def header_texts(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.bh-grid .ag-header-cell')].map(e => e.innerText.trim())")


def test_metrics_only_experiment_explains(synthetic_ctx, serve, chrome):
    chrome.get(serve(synthetic_ctx) + "/compare?models=root0,m2")
    wait_for(chrome, ".bh-empty")
    assert "no evaluation task" in chrome.find_element("css selector", ".bh-empty").text
    chrome.find_elements("css selector", ".compare-page .controls .control")[1].click()
    option = wait_for(chrome, "[role='option']", count=2)[-1]
    chrome.execute_script("arguments[0].click()", option)
    wait_until(lambda: query_of(chrome).get("base") == "m2")  # the selection store changed
    time.sleep(1)
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements("css selector", ".dash-fe-error__title")


def test_synthetic_instances_sort_filter_and_detail(synthetic_ctx, serve, chrome):
    SyntheticOutputs(MODELS, n=20_000, classes=10).attach(synthetic_ctx)
    url = serve(synthetic_ctx)
    chrome.get(url + "/compare?models=" + ",".join(MODELS) + "&brows=instances&bmetric=kl")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='i']", count=5)
    rendered = len(chrome.find_elements("css selector", ".bh-grid .ag-row"))
    assert rendered < 200  # paged: the browser never holds the whole table
    header(chrome, "Flips").click()
    wait_until(lambda: query_of(chrome).get("bsort") == "flips")
    first = chrome.find_element("css selector", ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    flips = int(first.find_element("css selector", "[col-id='flips']").text)
    assert flips == len(MODELS) - 1 or flips >= 2
    first.find_element("css selector", "[col-id='flips']").click()
    wait_for(chrome, ".bh-detail .bh-image .main-svg")
    wait_until(lambda: "bi" in query_of(chrome))
    assert "Instance #" in chrome.find_element("css selector", ".bh-detail").text
    screenshot(chrome, "behaviors_synthetic_instances")
    # a copied link reopens the same view
    link = chrome.current_url
    chrome.get("about:blank")
    chrome.get(link)
    wait_for(chrome, ".bh-detail h4")
    wait_for(chrome, ".bh-grid .ag-header-cell[aria-sort='descending']")
    # switch the row mode with the control: subgroups, relative to the base
    choose(chrome, 0, "Subgroups")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='g']", count=3)
    choose(chrome, 2, "Error rate")
    chrome.find_elements("css selector", ".bh-radio input")[1].click()
    wait_until(lambda: query_of(chrome).get("brows") == "subgroups" and query_of(chrome).get("brel") == "1")
    assert "bmetric" not in query_of(chrome) and "bi" not in query_of(chrome)
    header(chrome, "ink density")
    wait_until(lambda: "pp" in chrome.find_element("css selector", ".bh-grid .ag-center-cols-container").text)
    screenshot(chrome, "behaviors_synthetic_subgroups")


def test_demo_subgroups_and_exemplars(demo_ctx, serve, chrome):
    ids = demo_ctx.experiment.models
    assert {"base", "mag90", "mag99"} <= set(ids)
    url = serve(demo_ctx)
    chrome.get(url + "/compare?models=base,mag90,mag99&brows=subgroups&brel=1")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='g']", count=2)
    wait_until(lambda: any("pp" in t for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='c2']")))
    # (change in error rate per subgroup, in percentage points)
    screenshot(chrome, "behaviors_demo_subgroups")
    chrome.get(url + "/compare?models=base,mag90,mag99&brows=instances&bsort=flips")
    wait_for(chrome, ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    row = chrome.find_element("css selector", ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    assert int(row.find_element("css selector", "[col-id='flips']").text) == 2
    row.find_element("css selector", "[col-id='flips']").click()
    wait_for(chrome, ".bh-detail .bh-image")
    assert "True label" in chrome.find_element("css selector", ".bh-detail").text
    screenshot(chrome, "behaviors_demo_instance")


def test_demo_exemplars_and_base_change(demo_ctx, serve, chrome):
    models = "base,mag50,mag70,mag90-ft,layer90,taylor90-ft,base-int8s"
    chrome.get(serve(demo_ctx) + f"/compare?models={models}&brows=exemplars&bmetric=flip&bflips=2")
    wait_for(chrome, ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    # texts are read in one script (no stale elements), once the grid has drawn its rows
    read = lambda: [int(t) for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='flips']") if t]  # noqa: E731
    wait_until(lambda: len(read()) > 0)
    flips = read()
    assert flips == sorted(flips, reverse=True) and min(flips) >= 2
    screenshot(chrome, "behaviors_demo_exemplars")
    # the page's base control drives the columns: the new base comes first
    chrome.find_elements("css selector", ".compare-page .controls .control")[1].click()
    wait_until(lambda: any("Magnitude 50%" in t for t in texts(chrome, "[role='option']")))
    chrome.execute_script("[...document.querySelectorAll(\"[role='option']\")]"
                          ".find(o => o.innerText.includes('Magnitude 50%')).click()")
    wait_until(lambda: header_texts(chrome)[:2] == ["Instance", "True label"]
               and "Magnitude 50% (base)" in header_texts(chrome))
    assert query_of(chrome)["base"] == "mag50" and query_of(chrome)["brows"] == "exemplars"


def test_demo_drill_from_a_class_row_to_its_instances(demo_ctx, serve, chrome):
    labels = demo_ctx.task_data()["labels"]
    n, in_class = len(labels), int((labels == 8).sum())
    url = serve(demo_ctx)
    chrome.get(url + "/compare?models=base,mag90&brel=1")
    cell = ".bh-grid .ag-pinned-left-cols-container .ag-row[row-id='g8'] [col-id='row']"
    wait_for(chrome, cell)
    ActionChains(chrome).move_to_element(chrome.find_element("css selector", cell)).perform()
    time.sleep(0.3)
    screenshot(chrome, "behaviors_demo_drill_classes")  # the hovered row shows "instances →"
    chrome.find_element("css selector", cell).click()
    wait_until(lambda: query_of(chrome).get("bgroup") == "class:8" and query_of(chrome).get("brows") == "instances")
    assert query_of(chrome).get("brel") == "1"  # the metric view carries over
    wait_for(chrome, ".bh-grid .ag-row[row-id^='i']", count=3)
    chip = chrome.find_element("css selector", ".bh-chip")
    assert chip.is_displayed() and "Only class 8" in chip.text
    summary = chrome.find_element("css selector", ".bh-summary").text
    assert f"{in_class} of {in_class} instances in class 8 ({n:,} in all)" in summary
    time.sleep(0.5)
    shown = [t for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='label']") if t]
    assert shown and set(shown) == {"8"}
    screenshot(chrome, "behaviors_demo_drill_class8")
    # a copied link reopens the restricted view
    link = chrome.current_url
    chrome.get("about:blank")
    chrome.get(link)
    wait_for(chrome, ".bh-grid .ag-row[row-id^='i']", count=3)
    assert "Only class 8" in chrome.find_element("css selector", ".bh-chip").text
    # the chip's x removes the restriction, keeping instance rows
    chrome.find_element("css selector", ".bh-chip-x").click()
    wait_until(lambda: "bgroup" not in query_of(chrome) and query_of(chrome).get("brows") == "instances")
    wait_until(lambda: f"of {n:,} instances" in chrome.find_element("css selector", ".bh-summary").text)
    assert not chrome.find_element("css selector", ".bh-chip").is_displayed()
    time.sleep(0.5)
    assert len(set(texts(chrome, ".bh-grid .ag-center-cols-container [col-id='label']")) - {""}) > 1
    screenshot(chrome, "behaviors_demo_drill_removed")


def test_demo_drill_from_a_subgroup_row_and_back(demo_ctx, serve, chrome):
    attrs = demo_ctx.task_data()["attributes"]["ink density"]
    high = sum(v == "high" for v in attrs)
    chrome.get(serve(demo_ctx) + "/compare?models=base,mag90,mag99&brows=subgroups&battr=ink+density&bfilt=newerr")
    rows = wait_for(chrome, ".bh-grid .ag-pinned-left-cols-container .ag-row[row-id^='g']", count=3)
    row_id = next(r.get_attribute("row-id") for r in rows if r.text.strip() == "high")
    chrome.find_element("css selector", f".bh-grid .ag-center-cols-container .ag-row[row-id='{row_id}'] [col-id='n']").click()
    wait_until(lambda: query_of(chrome).get("bgroup") == "attr:ink density:high")
    assert query_of(chrome).get("bfilt") == "newerr" and "battr" not in query_of(chrome)
    wait_until(lambda: "Only ink density = high" in chrome.find_element("css selector", ".bh-chip").text)
    wait_until(lambda: "instances in ink density = high" in chrome.find_element("css selector", ".bh-summary").text)
    assert f"of {high} instances" in chrome.find_element("css selector", ".bh-summary").text
    screenshot(chrome, "behaviors_demo_drill_subgroup")
    chrome.back()  # history: the subgroup rows again, without the chip
    wait_until(lambda: query_of(chrome).get("brows") == "subgroups" and "bgroup" not in query_of(chrome))
    wait_for(chrome, ".bh-grid .ag-row[row-id^='g']", count=3)
    assert not chrome.find_element("css selector", ".bh-chip").is_displayed()


def test_threshold_stepper_and_direction(synthetic_ctx, serve, chrome):
    SyntheticOutputs(MODELS, n=2_000, classes=10).attach(synthetic_ctx)
    chrome.get(serve(synthetic_ctx) + "/compare?models=" + ",".join(MODELS) + "&brows=instances&bmetric=confabs")
    box = wait_for(chrome, ".bh-threshold input")[0]
    assert not any(b.is_displayed() for b in chrome.find_elements("css selector", ".bh-threshold .dash-input-stepper"))
    box.send_keys("0.5", Keys.ENTER)
    wait_until(lambda: query_of(chrome).get("bmin") == "0.5")
    chrome.find_element("css selector", ".bh-step-up").click()  # used to jump to 2 ("0 of … instances")
    wait_until(lambda: query_of(chrome).get("bmin") == "0.51")
    assert box.get_attribute("value") == "0.51"
    wait_until(lambda: chrome.find_element("css selector", ".bh-summary").text.startswith(("1", "2", "3", "4", "5",
                                                                                           "6", "7", "8", "9")))
    chrome.find_element("css selector", ".bh-step-down").click()
    chrome.find_element("css selector", ".bh-step-down").click()
    wait_until(lambda: query_of(chrome).get("bmin") == "0.49")
    screenshot(chrome, "behaviors_threshold_step")
    # confidence drops: relative confidence, "≤ −0.2"
    choose(chrome, 2, "Confidence on true label")
    chrome.find_elements("css selector", ".bh-radio input")[1].click()
    choose(chrome, 6, "≤")
    box.clear()
    box.send_keys("-0.2", Keys.ENTER)
    wait_until(lambda: query_of(chrome).get("bcmp") == "le" and query_of(chrome).get("bmin") == "-0.2"
               and query_of(chrome).get("bmetric") == "conf")
    wait_until(lambda: any(t.startswith("-0.") for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='c3']")))
    values = [float(t) for t in texts(chrome, ".bh-grid .ag-center-cols-container .bh-cell") if t]
    assert values and min(values) <= -0.2
    screenshot(chrome, "behaviors_threshold_drops")
    link = chrome.current_url  # a copied link restores the direction
    chrome.get("about:blank")
    chrome.get(link)
    wait_for(chrome, ".bh-grid .ag-row[row-id^='i']")
    assert "≤" in chrome.find_elements("css selector", ".bh-controls .bh-control")[6].text


def test_demo_new_errors_sort_first_and_pass_the_threshold(demo_ctx, serve, chrome):
    url = serve(demo_ctx) + "/compare?models=base,mag70,mag90&bmetric=moreerr&bsort=mag70"
    chrome.get(url)
    wait_until(lambda: len([t for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='c1']") if t]) >= 10)
    mag70 = [t for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='c1']") if t]
    assert "—" not in mag70
    new = mag70.count("new errors")
    assert new > 0 and mag70[:new] == ["new errors"] * new  # the classes compression broke come first
    assert "and new errors" in chrome.find_element("css selector", ".bh-summary").text
    screenshot(chrome, "behaviors_demo_new_errors")
    chrome.get(url + "&bmin=1")
    wait_until(lambda: "new errors" in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='c1']"))
    shown = [t for t in texts(chrome, ".bh-grid .ag-center-cols-container [col-id='c1']") if t]
    assert shown.count("new errors") == new
