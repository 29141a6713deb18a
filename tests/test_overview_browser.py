"""The Overview page in headless Chromium: layout mode, colour, a filter, linked selection, and
the copied URL reopening the same state."""
from __future__ import annotations

import statistics
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import screenshot, wait_for

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
    driver.find_element(By.CSS_SELECTOR, dropdown_css).click()
    option = wait_until(driver, lambda d: next(
        (o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content .dash-dropdown-option")
         if o.text.strip().split(" (")[0] == label), None))
    option.click()


def hover_tooltip(driver, index: int, expect: str, attempts: int = 5) -> bool:
    """Point at node `index` (viewport coordinates from cytoscape) until its tooltip shows; retried
    because the page may still be settling (late layout shifts move the map)."""
    for _ in range(attempts):
        at = cy_eval(driver, f"(function() {{ var p = cy.getElementById('n{index}').renderedPosition(), "
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
    assert hover_tooltip(chrome, list(exp.models).index(child.id), f"({child.id})"), \
        chrome.find_element(By.CSS_SELECTOR, ".map-tooltip").text
    tip = chrome.find_element(By.CSS_SELECTOR, ".map-tooltip").text
    assert "Accuracy" in tip and child.label in tip and child.operation.label() in tip
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
    lo.send_keys(str(threshold), Keys.ENTER)
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".pass-count").text == f"{n_pass} of {n} models pass")
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes('[c].off').length") == n - n_pass)
    assert query(chrome)["f.Accuracy"].startswith(f"{threshold:g}:")

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
    assert float(chrome.find_element(By.CSS_SELECTOR, ".filter-card .range-input input").get_attribute("value")) == pytest.approx(threshold)
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
