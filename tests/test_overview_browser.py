"""The Overview page in headless Chromium: layout mode, colour, a filter, linked selection, and
the copied URL reopening the same state."""
from __future__ import annotations

import statistics
import time
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import screenshot, wait_for
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from cnc.analysis.recipe_text import step_text
from cnc.ui.model_map import node_id

CY = "var b = document.querySelector('.cnc-model-map'); var cy = b && b._cyreg && b._cyreg.cy;"


@pytest.fixture
def overview_ctx(demo_ctx):
    """The real demo (39 models): the Overview must show every one of them."""
    assert len(demo_ctx.experiment.models) >= 30
    return demo_ctx


def cy_eval(driver, expr: str):
    return driver.execute_script(CY + f"return cy ? ({expr}) : null;")


def wait_until(driver, fn, timeout: float = 20):
    """Wait for fn(driver); elements going stale while a page re-renders just mean 'not yet'."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: fn(d))


def query(driver) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(driver.current_url).query).items()}


def pick_option(driver, dropdown_css: str, label: str) -> None:
    wait_for(driver, dropdown_css)[0].click()  # the page may still be drawing
    option = wait_until(driver, lambda d: next(
        (o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content .dash-dropdown-option")
         if o.text.strip().split(" (")[0] == label), None))
    option.click()


def hover_tooltip(driver, model_id: str, expect: str, attempts: int = 5) -> bool:
    """Point at a model's node (viewport coordinates from cytoscape) until its tooltip shows; retried
    because the page may still be settling (late layout shifts move the map)."""
    for _ in range(attempts):
        at = cy_eval(driver, f"(function() {{ var p = cy.getElementById('{node_id(model_id)}').renderedPosition(), "
                             "r = b.getBoundingClientRect(); return [r.left + p.x, r.top + p.y, r.right - 4]; })()")
        actions = ActionBuilder(driver)  # come in from the right: nothing lies right of a leaf on its row
        actions.pointer_action.move_to_location(int(at[2]), int(at[1]))
        actions.pointer_action.move_to_location(int(at[0]), int(at[1]))
        actions.perform()
        try:
            WebDriverWait(driver, 2).until(
                lambda d: expect in d.find_element(By.CSS_SELECTOR, ".map-tooltip").text)
            return True
        except TimeoutException:
            continue
    return False


def open_overview(driver, url: str, n_models: int) -> None:
    driver.get(url)
    wait_for(driver, ".cnc-model-map canvas")
    wait_until(driver, lambda d: cy_eval(d, "cy.nodes('[c]').length") == n_models)


def test_overview_end_to_end(overview_ctx, serve, chrome):
    exp = overview_ctx.experiment
    n = len(exp.models)
    base = serve(overview_ctx)
    open_overview(chrome, base + "/", n)
    screenshot(chrome, "overview_1_initial")

    # Hover a node: a tooltip with its label, primary metrics and operation.
    child = next(m for m in exp.models.values() if m.base is not None and not exp.children[m.id])  # top leaf
    assert hover_tooltip(chrome, child.id, f"({child.id})"), \
        chrome.find_element(By.CSS_SELECTOR, ".map-tooltip").text
    tip = chrome.find_element(By.CSS_SELECTOR, ".map-tooltip").text
    assert "Accuracy" in tip and child.label in tip and step_text(child.operation.name, child.operation.parameters) in tip
    screenshot(chrome, "overview_1b_hover")

    # Layout mode: by operation -> one column header per operation type, state in the URL.
    chrome.find_element(By.XPATH, "//label[.//span[text()='By operation']]").click()
    wait_until(chrome, lambda d: query(d).get("map") == "op")
    headers = cy_eval(chrome, "cy.nodes('.head').map(function(n) { return n.data('label'); })")
    ops = {m.operation.name for m in exp.models.values() if m.operation}
    assert ops <= {h.split(" #")[0] for h in headers}

    # Colour metric.
    pick_option(chrome, ".metric-pick[id*='encoding'][id*='color']", "Latency")
    wait_until(chrome, lambda d: query(d).get("color") == "Latency")
    wait_until(chrome, lambda d: "Latency" in d.find_element(By.CSS_SELECTOR, ".legends").text)

    # A filter that excludes some models: they turn transparent and the count updates.
    accs = [m.metrics["Accuracy"] for m in exp.models.values() if m.metrics.get("Accuracy") is not None]
    threshold = round(statistics.median(accs), 4)
    n_pass = sum(1 for a in accs if a >= threshold)
    assert 0 < n_pass < n
    pick_option(chrome, ".add-filter", "Accuracy")
    lo = wait_for(chrome, ".filter-card .range-input input")[0]
    lo.send_keys(f"{threshold * 100:g}", Keys.ENTER)  # a percentage metric: bounds are typed in percent
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".pass-count").text == f"{n_pass} of {n} models pass")
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes('[c].off').length") == n - n_pass)
    wait_until(chrome, lambda d: query(d).get("f.Accuracy", "").startswith(f"{threshold:g}:"))  # the URL follows

    # Box-select the whole scatterplot: only passing models get selected, and the map follows.
    drag = chrome.find_element(By.CSS_SELECTOR, ".scatter-graph .nsewdrag")
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center'});", drag)
    w, h = drag.size["width"], drag.size["height"]
    ActionChains(chrome).move_to_element_with_offset(drag, -w // 2 + 3, -h // 2 + 3).click_and_hold() \
        .move_by_offset((w - 6) // 2, (h - 6) // 2).move_by_offset((w - 6) // 2, (h - 6) // 2).release().perform()
    wait_until(chrome, lambda d: len((query(d).get("sel") or "").split(",")) == n_pass)
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes(':selected').length") == n_pass)
    assert cy_eval(chrome, "cy.nodes(':selected.off').length") == 0
    assert chrome.find_element(By.CSS_SELECTOR, ".sel-count").text == f"{n_pass} selected"
    screenshot(chrome, "overview_2_filtered_selected")

    # The copied URL reopens the same state in a fresh page.
    url = chrome.current_url
    chrome.get("about:blank")
    open_overview(chrome, url, n)
    assert "selected" in chrome.find_element(By.XPATH, "//label[.//span[text()='By operation']]").get_attribute("class")
    assert "Latency" in chrome.find_element(By.CSS_SELECTOR, ".legends").text
    assert chrome.find_element(By.CSS_SELECTOR, ".pass-count").text == f"{n_pass} of {n} models pass"
    assert float(chrome.find_element(By.CSS_SELECTOR, ".filter-card .range-input input").get_attribute("value")) \
        == pytest.approx(threshold * 100)
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes(':selected').length") == n_pass)
    assert cy_eval(chrome, "cy.nodes('[c].off').length") == n - n_pass
    assert query(chrome) == {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    screenshot(chrome, "overview_3_reopened")

    # Clear selection empties both views.
    chrome.find_element(By.XPATH, "//button[text()='Clear selection']").click()
    try:
        wait_until(chrome, lambda d: cy_eval(d, "cy.nodes(':selected').length") == 0)
        wait_until(chrome, lambda d: "sel" not in query(d))
    finally:
        screenshot(chrome, "overview_5_cleared")

    # Browser back restores the selection, and the re-rendered map outlines it again.
    chrome.back()
    wait_until(chrome, lambda d: len((query(d).get("sel") or "").split(",")) == n_pass)
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes(':selected').length") == n_pass)

    # Browser back steps to the previous view state.
    chrome.find_element(By.XPATH, "//label[.//span[text()='By step']]").click()
    wait_until(chrome, lambda d: "map" not in query(d))
    chrome.back()
    wait_until(chrome, lambda d: query(d).get("map") == "op")
    wait_until(chrome, lambda d: "selected" in d.find_element(
        By.XPATH, "//label[.//span[text()='By operation']]").get_attribute("class"))


def test_hostile_url_shows_notices(synthetic_ctx, serve, chrome):
    base = serve(synthetic_ctx)
    chrome.get(base + "/?map=zzz&color=Nope&x=%3Cscript%3E&sel=ghost,root0,root0&f.Bogus=1:2&f.Latency=abc:"
                      "&size=" + "A" * 500)
    wait_for(chrome, ".cnc-model-map canvas")
    text = chrome.find_element(By.CSS_SELECTOR, ".notices").text
    assert "map" in text and "Nope" in text and "Bogus" in text and "Latency" in text
    assert "unknown or repeated" in text
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes(':selected').length") == 1)
    screenshot(chrome, "overview_4_hostile_url")


def box_select_scatter(driver) -> None:
    """Drag a box over the whole scatterplot."""
    drag = wait_for(driver, ".scatter-graph .nsewdrag")[0]  # the plot may still be drawing
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", drag)
    w, h = drag.size["width"], drag.size["height"]
    ActionChains(driver).move_to_element_with_offset(drag, -w // 2 + 3, -h // 2 + 3).click_and_hold() \
        .move_by_offset((w - 6) // 2, (h - 6) // 2).move_by_offset((w - 6) // 2, (h - 6) // 2).release().perform()


def n_selected(driver) -> int:
    return len([s for s in (query(driver).get("sel") or "").split(",") if s])


def test_scatter_selection_survives_redraws(overview_ctx, serve, chrome):
    """QA 1, 6, 7: a box selection survives axis / colour changes, a filter drops only failing
    models (and the map keeps no ring on them), unselected points are not dimmed, and a
    double-click still clears."""
    exp = overview_ctx.experiment
    n = len(exp.models)
    open_overview(chrome, serve(overview_ctx) + "/", n)
    box_select_scatter(chrome)
    wait_until(chrome, lambda d: n_selected(d) == n)
    # plotly keeps full opacity for points outside a selection (ours are outlined instead)
    assert chrome.execute_script(
        "return document.querySelector('.scatter-graph .js-plotly-plot')._fullData[1].unselected.marker.opacity") == 1

    pick_option(chrome, ".metric-pick[id*='scatter'][id*='\"x\"']", "Latency")
    wait_until(chrome, lambda d: query(d).get("x") == "Latency")
    pick_option(chrome, ".metric-pick[id*='encoding'][id*='color']", "Latency")
    wait_until(chrome, lambda d: query(d).get("color") == "Latency")
    time.sleep(1)  # let any echo of the redraws arrive
    assert n_selected(chrome) == n

    accs = {m.id: m.metrics.get("Accuracy") for m in exp.models.values()}
    threshold = round(statistics.median(a for a in accs.values() if a is not None), 3)
    passing = [m for m, a in accs.items() if a is not None and a >= threshold]
    pick_option(chrome, ".add-filter", "Accuracy")
    lo = wait_for(chrome, ".filter-card .range-input input")[0]
    lo.send_keys(f"{threshold * 100:g}", Keys.ENTER)  # percent metric: typed in percent
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".pass-count").text.startswith(f"{len(passing)} of"))
    wait_until(chrome, lambda d: n_selected(d) == len(passing))
    time.sleep(1)
    assert set(query(chrome)["sel"].split(",")) == set(passing)
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes(':selected').length") == len(passing))
    assert cy_eval(chrome, "cy.nodes(':selected.off').length") == 0
    screenshot(chrome, "overview_6_selection_after_redraws")

    box_select_scatter(chrome)
    time.sleep(1)
    drag = chrome.find_element(By.CSS_SELECTOR, ".scatter-graph .nsewdrag")
    ActionChains(chrome).move_to_element_with_offset(drag, 5, 5).double_click().perform()
    wait_until(chrome, lambda d: "sel" not in query(d))


def test_filter_units_notice_and_histogram_click(overview_ctx, serve, chrome):
    """QA 2, 3: percent bounds in percent, a notice for a bound outside the data, and a click on
    the histogram clears that filter's range."""
    exp = overview_ctx.experiment
    n = len(exp.models)
    open_overview(chrome, serve(overview_ctx) + "/", n)
    pick_option(chrome, ".add-filter", "Accuracy")
    lo = wait_for(chrome, ".filter-card .range-input input")[0]
    lo.send_keys("90", Keys.ENTER)
    n_pass = sum(1 for m in exp.models.values() if (m.metrics.get("Accuracy") or 0) >= 0.9)
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".pass-count").text == f"{n_pass} of {n} models pass")
    wait_until(chrome, lambda d: query(d).get("f.Accuracy") == "0.9:")  # stored as a fraction
    assert 0 < n_pass < n
    assert chrome.find_element(By.CSS_SELECTOR, ".filter-card .range-unit").text == "%"
    assert chrome.find_element(By.CSS_SELECTOR, ".filter-warn").text == ""

    lo.send_keys(Keys.BACKSPACE * 4, "999", Keys.ENTER)
    wait_until(chrome, lambda d: "above every model" in d.find_element(By.CSS_SELECTOR, ".filter-warn").text)
    assert chrome.find_element(By.CSS_SELECTOR, ".pass-count").text == f"0 of {n} models pass"
    screenshot(chrome, "overview_7_filter_notice")

    # A reload keeps the percent display of the stored fraction.
    chrome.refresh()
    wait_for(chrome, ".cnc-model-map canvas")
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".filter-card .range-input input")
               .get_attribute("value") == "999")

    # A click (no drag) on the histogram clears the range.
    hist = wait_for(chrome, ".filter-card .nsewdrag")[0]
    ActionChains(chrome).move_to_element_with_offset(hist, -hist.size["width"] // 2 + 10, 0).click().perform()
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".pass-count").text == f"{n} of {n} models pass")
    wait_until(chrome, lambda d: query(d).get("f.Accuracy") == ":")
    assert chrome.find_element(By.CSS_SELECTOR, ".filter-card .range-input input").get_attribute("value") == ""

    # A brush sets it again, and the redraw that follows keeps it.
    hist = chrome.find_element(By.CSS_SELECTOR, ".filter-card .nsewdrag")
    w = hist.size["width"]
    ActionChains(chrome).move_to_element_with_offset(hist, w // 2 - w // 5, 0).click_and_hold() \
        .move_by_offset(w // 10, 0).move_by_offset(w // 10, 0).release().perform()
    wait_until(chrome, lambda d: query(d).get("f.Accuracy", ":") != ":")
    time.sleep(1)
    assert query(chrome).get("f.Accuracy", ":") != ":"


def extent_misses(driver) -> int:
    """Model nodes outside the map's visible area."""
    return cy_eval(driver, "cy.nodes('[c]').filter(function(n) { var e = cy.extent(), p = n.position(); "
                           "return p.x < e.x1 || p.x > e.x2 || p.y < e.y1 || p.y > e.y2; }).length")


def test_map_opens_showing_every_model_and_fit_button(overview_ctx, serve, chrome):
    """QA 5: at 1400x1000 the whole demo map is in view in both column modes; "Fit" restores it."""
    n = len(overview_ctx.experiment.models)
    open_overview(chrome, serve(overview_ctx) + "/", n)
    wait_until(chrome, lambda d: extent_misses(d) == 0)
    assert cy_eval(chrome, "cy.zoom()") >= 0.5
    chrome.find_element(By.XPATH, "//label[.//span[text()='By operation']]").click()
    wait_until(chrome, lambda d: query(d).get("map") == "op")
    wait_until(chrome, lambda d: extent_misses(d) == 0)
    screenshot(chrome, "overview_8_map_by_op_fitted")
    cy_eval(chrome, "(cy.zoom(2.5), cy.pan({x: -400, y: -300}), 1)")
    assert extent_misses(chrome) > 0
    chrome.find_element(By.CSS_SELECTOR, ".map-fit").click()
    wait_until(chrome, lambda d: extent_misses(d) == 0)
