"""Behaviors for generative models in headless Chromium: the top changes in outputs, read as a
user reads them (synthetic stored dicts shaped like precompute's: cnc.bench.generative_behaviors)."""
from __future__ import annotations

import pytest

from cnc.bench.browser import choose
from cnc.bench.generative_behaviors import SyntheticGenerative
from tests.conftest import screenshot, wait_for
from tests.test_behaviors_browser import header, query_of, texts, wait_until

MODELS = ["root0", "m2", "m3"]


def outputs(driver) -> dict[str, str]:
    """Model id -> the output text shown in the instance panel (without the struck-out words of
    the base's output, which the diff shows in place, and the "(empty output)" mark)."""
    return driver.execute_script("""
        return Object.fromEntries([...document.querySelectorAll('.bh-outputs tr[data-model]')].map(r => {
            const cell = r.querySelector('.bh-out').cloneNode(true);
            cell.querySelectorAll('del, .bh-empty-out').forEach(d => d.remove());
            return [r.dataset.model, cell.textContent.replace(/\\s+/g, ' ').trim()];
        }))""")


def panel_instance(driver) -> int | None:
    """The instance the panel shows ("Instance #12 · ..."), None while it shows none."""
    title = driver.find_element("css selector", ".bh-detail h4").text
    return int(title.split("#")[1].split()[0]) if "#" in title else None


def open_top_change(driver, url: str, models: list[str]) -> int:
    """Compare `models` (Behaviors' default rows) and return the top change the panel opens on."""
    driver.get(url + "/compare?models=" + ",".join(models))
    wait_for(driver, f".bh-outputs tr[data-model='{models[1]}']")
    assert "the top change in outputs" in driver.find_element("css selector", ".bh-detail h4").text
    return panel_instance(driver)


def test_top_changes_in_outputs_show_the_base_and_pruned_answers(synthetic_ctx, serve, chrome):
    data = SyntheticGenerative(MODELS, n=300)
    data.texts["m3"][5] = "<b>bold</b> & <script>window.hacked = 1</script>"  # text stays text
    data.attach(synthetic_ctx)
    url = serve(synthetic_ctx)
    chrome.get(url + "/compare?models=" + ",".join(MODELS))
    # the default rows are the top changes in outputs; the panel opens on the first one
    wait_for(chrome, ".bh-outputs tr[data-model='m3']")
    wait_for(chrome, ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    title = chrome.find_element("css selector", ".bh-detail h4").text
    assert "the top change in outputs" in title
    top = int(title.split("#")[1].split()[0])
    shown = outputs(chrome)
    assert shown["root0"] == data.texts["root0"][top] and shown["m3"] == data.texts["m3"][top]
    assert data.texts["m3"][top] != data.texts["root0"][top]
    marked = texts(chrome, ".bh-outputs tr[data-model='m3'] ins.bh-ins") + \
        texts(chrome, ".bh-outputs tr[data-model='m3'] del.bh-del")
    assert marked  # the changed words are marked
    prompt = chrome.find_element("css selector", ".bh-prompt").text
    assert prompt == data.prompts[top]
    assert "Reference: " + data.references[top][0] in chrome.find_element("css selector", ".bh-detail").text
    first = chrome.find_element("css selector", ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    assert first.find_element("css selector", "[col-id='base_out']").text == data.texts["root0"][top]
    screenshot(chrome, "generative_top_changes")

    # another row of the grid: its instance opens, and the link keeps it
    second = chrome.find_element("css selector", ".bh-grid .ag-center-cols-container .ag-row[row-index='1']")
    i = int(second.get_attribute("row-id")[1:])
    second.find_element("css selector", "[col-id='flips']").click()
    wait_until(lambda: query_of(chrome).get("bi") == str(i))
    wait_until(lambda: chrome.find_element("css selector", ".bh-detail h4").text == f"Instance #{i}")
    assert outputs(chrome)["m3"] == data.texts["m3"][i]

    # user text is shown as text, never run as HTML
    chrome.get(url + "/compare?models=" + ",".join(MODELS) + "&brows=instances&bi=5")
    wait_for(chrome, ".bh-outputs tr[data-model='m3']")
    assert "<script>window.hacked = 1</script>" in outputs(chrome)["m3"]
    assert chrome.execute_script("return window.hacked === undefined")
    assert not chrome.find_elements("css selector", ".bh-outputs b")

    # instance rows sorted by the change in F1 of the most pruned model, then subgroups
    chrome.get(url + "/compare?models=" + ",".join(MODELS) + "&brows=instances&brel=1&bsort=m3&bdir=asc")
    wait_for(chrome, ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    header(chrome, "Reference")
    cell = chrome.find_element("css selector",
                               ".bh-grid .ag-center-cols-container .ag-row[row-index='0'] [col-id='c2']")
    assert cell.text.startswith("-")  # the largest F1 drop first, in percentage points
    screenshot(chrome, "generative_instances_f1_change")
    choose(chrome, 0, "Subgroups")
    choose(chrome, 2, "Right → wrong (exact match)")
    wait_until(lambda: query_of(chrome).get("brows") == "subgroups" and query_of(chrome).get("bmetric") == "r2w")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='g']", count=2)
    assert "question type" in " ".join(t for t in texts(chrome, ".bh-grid .ag-header-cell"))
    screenshot(chrome, "generative_subgroups_r2w")
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements("css selector", ".dash-fe-error__title")


@pytest.fixture(scope="module")
def text_demo_ctx(demo_cache_dir):
    """AppContext of the real text demo: trained, compressed and precomputed (minutes, once;
    CNC_TEST_CACHE reuses a built one)."""
    from cnc.app.cli import demo_config, load

    return load(str(demo_config("text")), str(demo_cache_dir), progress=False)


def test_text_demo_top_changes_read_base_and_pruned_answers(text_demo_ctx, serve, chrome):
    ctx = text_demo_ctx
    models = ["base", "global30", "global30-norms"]
    assert set(models) <= set(ctx.experiment.models)
    url = serve(ctx)
    top = open_top_change(chrome, url, models)
    shown = outputs(chrome)
    stored = {m: ctx.outputs(m)["texts"][top] for m in models}
    assert shown == {m: " ".join(t.split()) for m, t in stored.items()}
    assert stored["global30"] != stored["base"]  # the globally pruned model's answer changed
    empty = [m for m in models if not stored[m].strip()]
    marks = texts(chrome, ".bh-outputs tr[data-model] .bh-empty-out")
    assert len(marks) == len(empty) and all(m == "(empty output)" for m in marks)
    task = ctx.task_data()
    assert chrome.find_element("css selector", ".bh-prompt").text == task["prompts"][top]
    screenshot(chrome, "generative_text_demo_top_changes")
    # instance rows sorted by the F1 drop of 2:4 pruning; the first row's instance opens on a click
    broken = ["base", "2of4", "global50"]
    chrome.get(url + "/compare?models=" + ",".join(broken) + "&brows=instances&brel=1&bsort=2of4&bdir=asc")
    first = wait_for(chrome, ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")[0]
    i = int(first.get_attribute("row-id")[1:])
    first.find_element("css selector", "[col-id='flips']").click()
    wait_until(lambda: chrome.find_element("css selector", ".bh-detail h4").text == f"Instance #{i}")
    assert outputs(chrome) == {m: " ".join(ctx.outputs(m)["texts"][i].split()) for m in broken}
    assert ctx.outputs("2of4")["scores"]["f1"][i] < ctx.outputs("base")["scores"]["f1"][i]
    screenshot(chrome, "generative_text_demo_f1_drop")
    # the F1 of each model over all instances, as the summary row of the subgroups
    chrome.get(url + "/compare?models=" + ",".join(models) + "&brows=subgroups&bmetric=sc:f1")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='g']", count=2)
    screenshot(chrome, "generative_text_demo_subgroups_f1")
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements("css selector", ".dash-fe-error__title")


def test_text_demo_top_changes_open_on_what_compression_broke(text_demo_ctx, serve, chrome):
    """The README's first click: the first top change is one the base answers right and global 10%
    breaks; the Order control (brank=fixed) turns to what a model fixed instead."""
    ctx = text_demo_ctx
    models = ["base", "global10", "layer10", "global10-norms"]
    url = serve(ctx)
    top = open_top_change(chrome, url, models)
    exact = {m: ctx.outputs(m)["scores"]["exact_match"][top] for m in models}
    assert exact["base"] == 1 and exact["global10"] == 0, exact
    assert outputs(chrome)["base"] == " ".join(ctx.outputs("base")["texts"][top].split())
    first = chrome.find_element("css selector", ".bh-grid .ag-center-cols-container .ag-row[row-index='0']")
    assert first.get_attribute("row-id") == f"i{top}"
    screenshot(chrome, "text-demo-behaviors-global10")

    choose(chrome, 7, "Base wrong, a model right first")
    wait_until(lambda: query_of(chrome).get("brank") == "fixed")
    wait_until(lambda: panel_instance(chrome) not in (None, top))
    fixed = panel_instance(chrome)
    assert ctx.outputs("base")["scores"]["exact_match"][fixed] == 0
    assert any(ctx.outputs(m)["scores"]["exact_match"][fixed] == 1 for m in models[1:])
    chrome.refresh()  # the choice is in the link
    wait_for(chrome, ".bh-outputs tr[data-model='global10']")
    assert panel_instance(chrome) == fixed
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements("css selector", ".dash-fe-error__title")
