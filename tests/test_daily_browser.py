"""Issue 15 in headless Chromium: CSV and experiment downloads, the Compare strip, the model
picker, loading indicators and keyboard focus."""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from cnc.analysis import behavior_metrics, behavior_table, behavior_view
from cnc.analysis.metric_change import change
from cnc.bench.behaviors import SyntheticOutputs
from cnc.bench.browser import choose
from cnc.experiment.config import load_config
from cnc.ui import behaviors as bh_ui
from cnc.ui import selection_details
from tests.conftest import screenshot, wait_for
from tests.test_behaviors_browser import query_of, texts, wait_until
from tests.test_overview_browser import cy_eval

MODELS = ["root0", "m2", "m3", "m4"]


def allow_downloads(driver, folder: Path) -> None:
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})


def downloaded(folder: Path, name: str, timeout: float = 30) -> Path:
    path = folder / name
    wait_until(lambda: path.exists() and not list(folder.glob("*.crdownload")), timeout)
    return path


def test_behaviors_csv_has_every_row_of_the_view(synthetic_ctx, serve, chrome, tmp_path):
    data = SyntheticOutputs(MODELS, n=5_000, classes=10)
    data.attach(synthetic_ctx)
    allow_downloads(chrome, tmp_path)
    chrome.get(serve(synthetic_ctx) + "/compare?models=" + ",".join(MODELS)
               + "&brows=instances&bfilt=flipped&bmetric=conf&brel=1&bsort=m4&bdir=asc")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='i']", count=5)
    chrome.find_element("css selector", ".bh-status-row .btn.download").click()
    rows = list(csv.reader(io.StringIO(downloaded(tmp_path, "behaviors.csv").read_text())))

    # the same view, computed directly by the analysis functions
    table = behavior_table.build_table(data.labels, MODELS, data.outputs)
    state = behavior_view.ViewState(mode="instances", metric="conf", rel=True, filt="flipped", sort="m4", desc=False)
    view = behavior_view.build_view(table, state, behavior_metrics.metric_specs(), data.class_names, data.attributes)
    assert view.row_count > 100  # more than the one block the grid loads
    assert len(rows) == view.row_count + 1
    assert rows[0][:4] == ["instance", "true label", "base prediction", "models changed"]
    assert [int(r[0]) for r in rows[1:]] == view.order.tolist()
    for r, i in zip(rows[1:], view.order.tolist()):
        assert [float(v) for v in r[4:]] == pytest.approx(view.shown[:, i].tolist())
    assert rows[1][1] == data.class_names[data.labels[view.order[0]]]


def test_compare_strip_shows_changes_against_the_base(synthetic_ctx, serve, chrome):
    exp = synthetic_ctx.experiment
    chrome.get(serve(synthetic_ctx) + "/compare?models=root0,m2,m3")
    strip = wait_for(chrome, ".compare-strip .cs-table")[0]
    rows = strip.find_elements("css selector", "tr")
    assert len(rows) == 4 and "base" in rows[1].text
    metric = next(m for m in exp.metrics.values() if m.primary) if any(
        m.primary for m in exp.metrics.values()) else next(iter(exp.metrics.values()))
    expected = change(metric, exp.models["m2"].metrics.get(metric.name), exp.models["root0"].metrics.get(metric.name))
    assert expected.text in rows[2].find_elements("css selector", "td")[0].text
    screenshot(chrome, "daily_compare_strip")
    # choosing another base updates the strip: m2 becomes the reference row
    chrome.find_elements("css selector", ".compare-page .controls .control")[1].click()
    option = next(o for o in wait_for(chrome, "[role='option']", count=3) if "fine-tune 2" in o.text)
    chrome.execute_script("arguments[0].click()", option)
    wait_until(lambda: texts(chrome, ".compare-strip tr")[1].startswith("fine-tune 2"))
    assert "base" in texts(chrome, ".compare-strip tr")[1]


def n_sel(driver) -> int:
    return len([s for s in query_of(driver).get("sel", "").split(",") if s])


def test_model_picker_selects_in_map_and_scatter(synthetic_ctx, serve, chrome):
    chrome.get(serve(synthetic_ctx) + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    wait_until(lambda: cy_eval(chrome, "cy.nodes('[mid]').length") == len(synthetic_ctx.experiment.models))
    wait_for(chrome, ".model-picker-wrap button")  # drawn with its options, which may come after the map
    chrome.execute_script("document.querySelector('.model-picker-wrap button').click()")
    search = wait_for(chrome, ".dash-dropdown-search")[0]
    search.send_keys("m2")
    wait_until(lambda: texts(chrome, ".dash-dropdown-options")[0].startswith("fine-tune 2 · m2"))
    assert all("m2" in line for line in texts(chrome, ".dash-dropdown-options")[0].splitlines())
    ActionChains(chrome).send_keys(Keys.ARROW_DOWN, Keys.ENTER).perform()
    wait_until(lambda: query_of(chrome).get("sel", "").split(",")[:1] == ["m2"])
    wait_until(lambda: cy_eval(chrome, "cy.nodes(':selected').map(n => n.data('mid'))") == ["m2"])
    wait_until(lambda: len(chrome.execute_script(
        "return document.querySelector('.scatter-graph .js-plotly-plot').layout.shapes || []")) == 1)
    outline = chrome.execute_script("var s = document.querySelector('.scatter-graph .js-plotly-plot').layout.shapes[0];"
                                    "return [s.xanchor, s.yanchor]")  # the selection outline circles m2's point
    m2 = list(synthetic_ctx.experiment.models["m2"].metrics.values())
    assert all(any(v == pytest.approx(w) for w in m2) for v in outline)
    assert chrome.find_element("css selector", ".sel-count").text == "1 selected"
    screenshot(chrome, "daily_model_picker_open")
    ActionChains(chrome).send_keys(Keys.ESCAPE).perform()
    wait_until(lambda: "fine-tune 2 · m2" in texts(chrome, ".model-picker-wrap")[0])
    # a selection made elsewhere shows in the picker: Clear empties it
    chrome.execute_script("[...document.querySelectorAll('.selection-bar button')]"
                          ".find(b => b.innerText.includes('Clear')).click()")
    wait_until(lambda: n_sel(chrome) == 0)
    wait_until(lambda: "Find models" in texts(chrome, ".model-picker-wrap")[0])
    screenshot(chrome, "daily_model_picker")


def test_loading_indicators_show_on_slow_work(synthetic_ctx, serve, chrome, monkeypatch):
    SyntheticOutputs(MODELS, n=2_000, classes=10).attach(synthetic_ctx)
    slow_table, slow_panel = bh_ui.render_table, selection_details.panel_content

    def slowly(fn):
        def wrapped(*args, **kwargs):
            time.sleep(1.5)
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(bh_ui, "render_table", slowly(slow_table))
    url = serve(synthetic_ctx)
    chrome.get(url + "/compare?models=" + ",".join(MODELS))
    wait_for(chrome, ".bh-grid .ag-row", count=3, timeout=60)
    choose(chrome, 0, "Instances")
    wait_for(chrome, ".bh-table-loading .dash-spinner, .bh-table-loading [class*='spinner'], "
                     ".bh-table-loading [class*='loading']", timeout=5)
    screenshot(chrome, "daily_behaviors_loading")

    monkeypatch.setattr(selection_details, "panel_content", slowly(slow_panel))
    chrome.get(url + "/?sel=root0,m2")
    wait_for(chrome, ".sd-table")
    chrome.execute_script("document.querySelector('button.sd-metric').click()")
    option = wait_for(chrome, ".dash-dropdown-options [role='option'], .dash-dropdown-options label", count=2)[1]
    chrome.execute_script("arguments[0].click()", option)
    wait_for(chrome, ".sd-loading .dash-spinner, .sd-loading [class*='spinner'], .sd-loading [class*='loading']",
             timeout=5)


def test_keyboard_reaches_tabs_and_buttons_with_a_visible_focus(synthetic_ctx, serve, chrome):
    chrome.get(serve(synthetic_ctx) + "/compare?models=root0,m2")
    wait_for(chrome, ".compare-strip .cs-table")
    wait_for(chrome, ".tab[tabindex='0']", count=2)
    chrome.find_element("css selector", "body").click()
    seen = []
    for _ in range(40):
        ActionChains(chrome).send_keys(Keys.TAB).perform()
        el = chrome.switch_to.active_element
        seen.append(el.text.strip() or el.get_attribute("class"))
        style = chrome.execute_script("return getComputedStyle(arguments[0]).outlineStyle", el)
        assert style != "none", f"no visible focus on {seen[-1]!r}"
        if el.text.strip() == "Layers":
            ActionChains(chrome).send_keys(Keys.ENTER).perform()
            break
    assert "Download experiment" in seen and "Layers" in seen, seen
    wait_until(lambda: query_of(chrome).get("tab") == "layers")
    screenshot(chrome, "daily_keyboard_focus")


def test_download_experiment_round_trips(demo_ctx, serve, chrome, tmp_path):
    allow_downloads(chrome, tmp_path)
    chrome.get(serve(demo_ctx) + "/")
    wait_for(chrome, ".header .btn.download")[0].click()
    path = downloaded(tmp_path, "experiment.yaml")
    again = load_config(path, cache_dir=tmp_path / "cache").experiment
    exp = demo_ctx.config.experiment  # as loaded: derived metrics are recomputed where it is opened
    assert list(again.models) == list(exp.models)
    for mid, m in exp.models.items():
        assert again.models[mid].metrics == m.metrics and again.models[mid].base == m.base
        assert (again.models[mid].operation == m.operation)
