"""A folder of GGUF variants opened with no YAML, in headless Chromium: Layers sorted by error shows
each layer's storage type and the Q2_K variant's most damaged layer first."""
from __future__ import annotations

import numpy as np
import pytest

from cnc.app.cli import load
from tests.conftest import screenshot, wait_for, wait_until

IDS = "tiny-llama,tiny-llama-Q8_0,tiny-llama-Q4_K_M,tiny-llama-Q2_K"


@pytest.fixture
def folder_app_ctx(gguf_folder, tmp_path):
    return load(str(gguf_folder), str(tmp_path / "cache"), progress=False)


def table_text(driver) -> list[list[str]]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('.layers-row')).map(function(r) {
            return Array.from(r.querySelectorAll('td')).map(function(c) { return c.innerText; }); })""")


def test_folder_layers_sorted_by_error(folder_app_ctx, serve, chrome):
    from selenium.webdriver.common.by import By

    url = serve(folder_app_ctx)
    chrome.get(f"{url}/")  # the Overview: four models from the folder, the guessed bases noticed
    wait_until(lambda: "base guessed from the file name" in chrome.find_element(By.TAG_NAME, "body").text)
    chrome.get(f"{url}/compare?models={IDS}&base=tiny-llama&tab=layers&lmode=weights&lsort=error"
               "&lsortby=tiny-llama-Q2_K")
    wait_for(chrome, ".layers-row", count=20)
    wait_until(lambda: drawn_rows(chrome) >= 20)
    head = chrome.find_element(By.CSS_SELECTOR, ".layers-table thead").text
    assert "Storage" in head and "tiny-llama-Q2_K" in head
    rows = table_text(chrome)
    params = folder_app_ctx.params("tiny-llama-Q2_K")
    worst = max((m for m in params if "diff_sq" in params[m]),
                key=lambda m: params[m]["diff_sq"] / params[m]["ref_sq"])
    first = rows[0]
    assert first[0].split("\n")[0] == worst
    assert first[2].startswith(params[worst]["storage"] + " · ")  # the storage column: Q2_K's type
    error = float(np.sqrt(params[worst]["diff_sq"] / params[worst]["ref_sq"]))
    assert 0.26 <= error <= 0.30 and f"err {error:.2%}" in first[-1]
    storages = [r[2].split(" · ")[0] for r in rows]
    assert {"Q2_K", "Q3_K", "Q6_K", "F32"} <= set(storages)
    screenshot(chrome, "gguf_layers_sorted_by_error")
    # the storage filter from the page: only the layers the Q2_K mix kept in Q6_K
    chrome.get(f"{url}/compare?models={IDS}&base=tiny-llama&tab=layers&lmode=weights&lsort=error"
               "&lsortby=tiny-llama-Q2_K&lstore=Q6_K")
    wait_until(lambda: [r[0].split("\n")[0] for r in table_text(chrome)] == ["lm_head"])
    assert "Q6_K" in chrome.find_element(By.CSS_SELECTOR, ".layers-storage").text
    # opened on Behaviors (weights only: it says how to add prompts), the filter appears with Layers
    chrome.get(f"{url}/compare?models={IDS}&base=tiny-llama")
    wait_until(lambda: "no prompt file" in chrome.find_element(By.TAG_NAME, "body").text)
    next(t for t in chrome.find_elements(By.CSS_SELECTOR, ".tab") if t.text.strip() == "Layers").click()
    wait_until(lambda: chrome.find_element(By.CSS_SELECTOR, ".layers-storage").is_displayed())
    screenshot(chrome, "gguf_layers_from_behaviors")


def drawn_rows(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('.layers-row canvas.hist').length") // 4
