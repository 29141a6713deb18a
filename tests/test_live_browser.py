"""Live logging in headless Chromium (issue 14): with the Overview open on a Tracker directory,
a training script logs a model; the page gains it on the next interaction, and the user can
colour, filter, select it and open it in Compare. Also: a failed callback shows a notice."""
from __future__ import annotations

from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from cnc import Tracker
from cnc.app.cli import load
from cnc.pages import overview
from cnc.ui.model_map import node_id
from tests.conftest import screenshot, wait_for
from tests.test_overview_browser import cy_eval, pick_option, query, wait_until
from tests.tiny_task import make_model


def click_node(driver, model_id: str, shift: bool = False) -> None:
    """A real mouse click on a model's node (viewport coordinates from cytoscape)."""
    driver.execute_script("document.querySelector('.cnc-model-map').scrollIntoView({block: 'center'});")
    x, y = cy_eval(driver, f"(function() {{ var p = cy.getElementById('{node_id(model_id)}').renderedPosition(), "
                           "r = b.getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; })()")
    actions = ActionBuilder(driver)
    if shift:  # devices advance in lockstep ticks: hold shift over the move, press and release
        actions.key_action.key_down(Keys.SHIFT).pause(0).pause(0).pause(0)
    actions.pointer_action.pause(0).move_to_location(int(x), int(y)).click()
    if shift:
        actions.key_action.key_up(Keys.SHIFT)
    actions.perform()


def test_model_logged_while_the_overview_is_open(tmp_path, serve, chrome):
    t = Tracker(tmp_path / "run", task="tests.tiny_task:TinyTask")
    t.metric("Acc", format=".1%", primary=True)
    t.metric("Size", unit="KB", higher_is_better=False)
    t.log_model("base", metrics={"Acc": 0.9, "Size": 10}, model=make_model())
    t.log_model("p50", base="base", operation=("prune", {"amount": 0.5}), metrics={"Acc": 0.85, "Size": 6},
                model=make_model())
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    url = serve(ctx)
    chrome.get(url + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes('[mid]').length") == 2)

    t.log_model("late", base="p50", operation=("prune", {"amount": 0.9}), metrics={"Acc": 0.7, "Size": 2},
                model=make_model())
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".model-count").text == "3 models")

    pick_option(chrome, ".metric-pick[id*='encoding'][id*='color']", "Size")  # colour
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes('[mid]').length") == 3)
    assert cy_eval(chrome, f"cy.getElementById('{node_id('late')}').hasClass('off')") is False

    pick_option(chrome, ".add-filter", "Acc")  # a filter: the new model counts and passes
    lo = wait_for(chrome, ".filter-card .range-input input")[0]
    lo.send_keys("60", Keys.ENTER)  # percent metric: typed in percent
    wait_until(chrome, lambda d: d.find_element(By.CSS_SELECTOR, ".pass-count").text == "3 of 3 models pass")
    assert "late" in [p["id"] for p in chrome.execute_script(
        "return document.querySelector('.scatter-graph .js-plotly-plot')._fullData[1].customdata"
        ".map(function(id) { return {id: id}; })")]

    chrome.find_element(By.CSS_SELECTOR, ".map-fit").click()  # the new column lies right of the old view
    wait_until(chrome, lambda d: 0 < cy_eval(d, f"cy.getElementById('{node_id('late')}').renderedPosition().x")
               < cy_eval(d, "cy.width()"))
    click_node(chrome, "late")  # select it on the map (node ids follow model ids, not positions)
    wait_until(chrome, lambda d: query(d).get("sel") == "late")
    click_node(chrome, "p50", shift=True)
    wait_until(chrome, lambda d: set((query(d).get("sel") or "").split(",")) == {"late", "p50"})
    screenshot(chrome, "live_overview_after_logging")

    chrome.find_element(By.CSS_SELECTOR, ".selection-bar a.primary").click()  # Compare selected →
    wait_until(chrome, lambda d: d.current_url.split("?")[0].endswith("/compare"))
    wait_for(chrome, ".bh-grid .ag-cell", timeout=60)
    wait_until(chrome, lambda d: any("late" in h.text for h in d.find_elements(By.CSS_SELECTOR, ".ag-header-cell")),
               timeout=60)
    assert not chrome.find_elements(By.CSS_SELECTOR, ".error-area .notice")
    screenshot(chrome, "live_compare_new_model")


def test_failed_callback_shows_a_notice_in_the_page(synthetic_ctx, serve, chrome, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    url = serve(synthetic_ctx)
    chrome.get(url + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    monkeypatch.setattr(overview, "scatter_outputs", broken)
    pick_option(chrome, ".metric-pick[id*='scatter'][id*='\"x\"']", "Latency")
    notice = wait_for(chrome, ".error-area .notice-error")[0]
    assert "Something went wrong while updating the scatter" in notice.text and "Reference" in notice.text
    screenshot(chrome, "callback_error_notice")
    notice.find_element(By.CSS_SELECTOR, ".error-dismiss").click()
    wait_until(chrome, lambda d: not d.find_elements(By.CSS_SELECTOR, ".error-area .notice"))
