"""Layers tab in headless Chromium: a tiny nested model (tree toggles) and the real demo."""
from __future__ import annotations

import time

import pytest

from cnc.experiment.config import Config, TaskSection
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from tests.conftest import screenshot, wait_for, wait_until
from tests.test_layers_callbacks import TinyCtx


@pytest.fixture
def tiny_app_ctx(tmp_path):
    """A real AppContext whose store holds the tiny models' summaries (nested module names)."""
    tiny = TinyCtx()
    data = {"metrics": [{"name": "Accuracy", "format": ".1%"}], "operations": [{"name": "prune"}],
            "models": []}
    for m in tiny.experiment.models.values():
        ckpt = tmp_path / f"{m.id}.pt"
        ckpt.write_text(m.id)
        data["models"].append({"id": m.id, "base": m.base, "tag": m.tag, "checkpoint": str(ckpt)})
    from cnc.evaluation.keys import config_spec
    from cnc.experiment.forest import parse_experiment

    config = Config(title="Tiny", experiment=parse_experiment(data), path=None, experiment_path=None,
                    cache_dir=tmp_path / "cache", task=TaskSection(entry="tests.none:task"))
    store = SummaryStore(config.cache_dir)
    store.put_taskref(config_spec(config), "tiny-task")  # as precompute records it
    ctx = AppContext(config=config, store=store)
    for mid in ("base", "copy", "pruned"):
        ch = ctx._model_hash(mid)
        ctx.store.put("params", ctx.task_hash, ch, tiny.params(mid))
        ctx.store.put("activations", ctx.task_hash, ch, tiny.activations(mid))
        ctx.store.mark_done(ctx.task_hash, ch)
    return ctx


def rows(driver) -> list[str]:
    """Full module names of the drawn rows (read in one go: the table re-renders under us)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.layers-row .module-name')).map(e => e.title)")


def drawn_histograms(driver) -> int:
    """Histogram canvases with any painted pixel."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('canvas.hist')).filter(function(c) {
            var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (var i = 3; i < d.length; i += 4) { if (d[i]) { return true; } }
            return false;
        }).length""")




def test_tree_toggles_modes_and_url(tiny_app_ctx, serve, chrome):
    from selenium.webdriver.common.by import By

    url = serve(tiny_app_ctx)
    chrome.get(f"{url}/compare?models=base,copy,pruned,late&tab=layers")
    wait_for(chrome, ".layers-row", count=6)
    assert rows(chrome) == ["features", "features.0", "features.1", "head", "head.1", "head.3"]
    assert "Late: pending" in chrome.find_element(By.CSS_SELECTOR, ".layers").text
    chrome.find_element(By.CSS_SELECTOR, "button.layers-toggle[title='Collapse features']").click()
    wait_until(lambda: len(rows(chrome)) == 4)
    wait_until(lambda: "lopen=head" in chrome.current_url)
    chrome.find_element(By.XPATH, "//label[contains(., 'Weight distribution')]").click()
    wait_for(chrome, "canvas.hist", count=6)
    wait_until(lambda: drawn_histograms(chrome) == 6)  # drawn from their codes by assets/layers.js
    wait_until(lambda: "lmode=weights" in chrome.current_url)
    screenshot(chrome, "layers_tiny_weights")
    chrome.find_element(By.XPATH, "//button[contains(., 'Expand all')]").click()
    wait_until(lambda: len(rows(chrome)) == 6)
    # a pasted link reproduces the view
    chrome.get(f"{url}/compare?models=base,pruned&tab=layers&lmode=activations&lopen=-")
    wait_until(lambda: rows(chrome) == ["features", "head"])
    # opened on the Behaviors tab, the Layers tab draws when it is first shown
    chrome.get(f"{url}/compare?models=base,pruned")
    wait_for(chrome, ".tab")
    time.sleep(1)
    assert rows(chrome) == []
    next(t for t in chrome.find_elements(By.CSS_SELECTOR, ".tab") if t.text.strip() == "Layers").click()
    wait_until(lambda: len(rows(chrome)) == 6)
    wait_until(lambda: "tab=layers" in chrome.current_url)


def test_demo_batchnorm_pruned_by_global_spared_by_layerwise(demo_ctx, serve, chrome):
    from selenium.webdriver.common.by import By

    for mid in ("base", "mag90", "layer90"):
        assert mid in demo_ctx.experiment.models and demo_ctx.status(mid) == "ready"
    url = serve(demo_ctx)
    chrome.get(f"{url}/compare?models=base,mag90,layer90&tab=layers")
    wait_for(chrome, ".layers-row", count=7)
    screenshot(chrome, "layers_demo_sparsity")
    by_name = {r.find_element(By.CSS_SELECTOR, ".module-name").get_attribute("title"): r
               for r in chrome.find_elements(By.CSS_SELECTOR, ".layers-row")}
    for bn in ("bn1", "bn2"):
        cells = by_name[bn].find_elements(By.CSS_SELECTOR, ".layers-cell")
        mag, layer = (float(c.find_element(By.CSS_SELECTOR, ".spars-bar").text.split("%")[0]) for c in cells[1:])
        assert mag > 10 and layer == 0, (bn, mag, layer)
    chrome.get(f"{url}/compare?models=base,mag90,layer90&tab=layers&lmode=weights&lsort=spread")
    wait_for(chrome, "canvas.hist", count=21)
    assert rows(chrome)[:2] in (["bn1", "bn2"], ["bn2", "bn1"])
    screenshot(chrome, "layers_demo_weights_spread")
    chrome.get(f"{url}/compare?models=base,mag90,layer90&tab=layers&lmode=weights&lsort=change&lsortby=mag90")
    wait_for(chrome, "canvas.hist", count=21)
    screenshot(chrome, "layers_demo_weights_change_mag90")
    # quantized weights compare on their dequantized values: small changes, nothing missing
    chrome.get(f"{url}/compare?models=base,mag90,layer90,base-int8s&tab=layers&lmode=activations")
    wait_for(chrome, "canvas.hist", count=28)
    assert "missing" not in chrome.find_element(By.CSS_SELECTOR, ".layers-table").text
    screenshot(chrome, "layers_demo_activations")


def test_metrics_only_experiment_shows_the_explanation_without_controls(synthetic_ctx, serve, chrome):
    from selenium.webdriver.common.by import By

    url = serve(synthetic_ctx)
    chrome.get(f"{url}/compare?models=root0,m2&tab=layers&lmode=weights")
    wait_for(chrome, ".layers .layers-empty")
    assert "metrics only" in chrome.find_element(By.CSS_SELECTOR, ".layers .layers-empty").text
    assert not chrome.find_elements(By.CSS_SELECTOR, ".layers-controls")
    screenshot(chrome, "layers_metrics_only")
    # opened on the other tab, then switched: the explanation is already there
    chrome.get(f"{url}/compare?models=root0,m2")
    wait_for(chrome, ".tab")
    next(t for t in chrome.find_elements(By.CSS_SELECTOR, ".tab") if t.text.strip() == "Layers").click()
    wait_until(lambda: "tab=layers" in chrome.current_url)
    assert chrome.find_element(By.CSS_SELECTOR, ".layers .layers-empty").is_displayed()
    assert not chrome.find_elements(By.CSS_SELECTOR, ".layers-controls")
    chrome.find_elements(By.CSS_SELECTOR, ".compare-page .controls .control")[1].click()  # a new base
    option = wait_for(chrome, "[role='option']", count=2)[-1]
    chrome.execute_script("arguments[0].click()", option)
    wait_until(lambda: "base=m2" in chrome.current_url)
    time.sleep(1)
    assert chrome.find_element(By.CSS_SELECTOR, ".layers .layers-empty").is_displayed()
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements(By.CSS_SELECTOR, ".dash-fe-error__title")


def test_unknown_open_modules_in_a_link_keep_the_default_expansion(tiny_app_ctx, serve, chrome):
    url = serve(tiny_app_ctx)
    chrome.get(f"{url}/compare?models=base,copy,pruned&tab=layers&lopen=ghost")
    wait_for(chrome, ".layers-row", count=6)
    assert rows(chrome) == ["features", "features.0", "features.1", "head", "head.1", "head.3"]
    assert "unknown module" in chrome.find_element("css selector", "body").text


def test_csv_download_has_the_rows_of_the_view(tiny_app_ctx, serve, chrome, tmp_path):
    import csv

    from selenium.webdriver.common.by import By

    from cnc.analysis import layers as L
    from cnc.ui import layers as ui

    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    url = serve(tiny_app_ctx)
    chrome.get(f"{url}/compare?models=base,copy,pruned&tab=layers&lmode=weights&lsort=change")
    wait_for(chrome, ".layers-row", count=4)
    chrome.find_element(By.XPATH, "//button[contains(., 'Download CSV')]").click()
    target = tmp_path / "layers.csv"
    wait_until(lambda: target.exists() and target.stat().st_size > 0)
    rows_ = list(csv.reader(target.open(encoding="utf-8")))
    table = ui.layer_table(tiny_app_ctx, ["base", "copy", "pruned"], "base", "params")
    order = L.visible_rows(table, "change", None)
    assert rows_[0] == ["module", "type", "parameters", "base change vs base", "copy change vs base",
                        "pruned change vs base"]
    assert [r[0] for r in rows_[1:]] == [table.tree.names[i] for i in order] == rows(chrome)
    values = L.shown_values(table, "weights")
    for r, i in zip(rows_[1:], order):
        assert [float(v) for v in r[3:]] == pytest.approx(values[i].tolist(), rel=1e-5)
