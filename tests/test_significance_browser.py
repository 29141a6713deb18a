"""Paired tests in the browser (issue 31): in Behaviors' class rows, relative to the base, a change
the exact McNemar test finds significant keeps its ▼, one it does not reads muted "n.s.", and
hovering it shows the interval and the counts."""
from __future__ import annotations

import numpy as np
from selenium.webdriver.common.action_chains import ActionChains

from tests.conftest import screenshot, wait_for, wait_until

CLASSES = ["broken", "noisy", "same"]


class FlipOutputs:
    """600 instances, 3 classes: model m2 loses 40 of the base's 200 right answers in "broken"
    (significant), trades 6 right→wrong against 4 wrong→right in "noisy" (not significant)."""

    def __init__(self):
        self.labels = np.repeat([0, 1, 2], 200)
        base, model = self.labels.copy(), self.labels.copy()
        model[:40] = 1
        model[200:206] = 0
        base[206:210] = 0
        self.preds = {"root0": base, "m2": model}

    def task_data(self) -> dict:
        return {"labels": self.labels, "class_names": CLASSES, "attributes": {}, "sample_index": np.arange(8)}

    def outputs(self, mid: str) -> dict | None:
        if mid not in self.preds:
            return None
        probs = np.full((600, 3), 0.1, np.float32)
        probs[np.arange(600), self.preds[mid]] = 0.8
        return {"probs": probs, "preds": self.preds[mid]}

    def instance(self, i: int) -> dict:
        return {"kind": "image", "pixels": [[i % 16] * 8] * 8}

    def status(self, mid: str) -> str:
        return "ready" if mid in self.preds else "no data"


def cell(driver, row: int, col: str):
    return driver.find_element("css selector", f".bh-grid .ag-center-cols-container .ag-row[row-id='g{row}'] "
                                               f"[col-id='{col}']")


def after(driver, el) -> str:
    return driver.execute_script("return getComputedStyle(arguments[0], '::after').content", el)


def test_significant_change_keeps_its_mark_and_a_non_significant_one_reads_muted(synthetic_ctx, serve, chrome):
    data = FlipOutputs()
    synthetic_ctx.task_data, synthetic_ctx.outputs = data.task_data, data.outputs
    synthetic_ctx.instance, synthetic_ctx.status = data.instance, data.status
    chrome.set_window_size(1400, 900)
    chrome.get(serve(synthetic_ctx) + "/compare?models=root0,m2&brows=classes&bmetric=error&brel=1")
    wait_for(chrome, ".bh-grid .ag-row[row-id^='g']", count=3)
    broken, noisy = cell(chrome, 0, "c1"), cell(chrome, 1, "c1")
    assert broken.text.startswith("+20.0 pp") and noisy.text.startswith("+1.0 pp")
    assert "bh-worse" in broken.get_attribute("class") and "bh-ns" not in broken.get_attribute("class")
    assert after(chrome, broken) == '" ▼"'
    assert "bh-ns" in noisy.get_attribute("class") and "bh-worse" not in noisy.get_attribute("class")
    assert after(chrome, noisy) == '" n.s."'
    status = chrome.find_element("css selector", ".bh-status").text
    assert "“n.s.”: no significant change at 5% (exact McNemar test per row and model, Holm-adjusted" in status
    assert "Δ error rate against the base over all 600 instances: m2 +7.0 pt [" in status
    ActionChains(chrome).move_to_element(noisy).perform()
    tip = wait_for(chrome, ".ag-tooltip")[0]
    wait_until(lambda: "No significant change" in tip.text)
    assert "6 right → wrong, 4 wrong → right" in tip.text and "cannot be told from noise" in tip.text
    screenshot(chrome, "significance_not_significant")
    ActionChains(chrome).move_to_element(broken).perform()
    wait_until(lambda: chrome.find_elements("css selector", ".ag-tooltip")
               and "Significant change" in chrome.find_element("css selector", ".ag-tooltip").text)
    screenshot(chrome, "significance_significant")
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors
