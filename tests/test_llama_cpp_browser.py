"""In headless Chromium: Behaviors of a folder of GGUF variants run by llama.cpp says so under the
table (screenshot: tests/screenshots/llama_cpp_behaviors.png)."""
from __future__ import annotations

import pytest

from cnc.app.cli import load
from tests.conftest import screenshot, wait_until
from tests.gguf_session import prompted_folder

IDS = "tiny-llama,tiny-llama-Q8_0,tiny-llama-Q2_K"


@pytest.fixture
def llama_ctx(gguf_variants, llama_cpp_python, tmp_path, monkeypatch):
    monkeypatch.setenv("CNC_GGUF_RUNTIME", "auto")
    folder = prompted_folder(gguf_variants, tmp_path, n=6)
    return load(str(folder), str(tmp_path / "cache"), progress=False)


def test_behaviors_names_the_kernels_that_ran(llama_ctx, llama_cpp_python, serve, chrome):
    from selenium.webdriver.common.by import By

    url = serve(llama_ctx)
    chrome.set_window_size(1440, 1000)
    chrome.get(f"{url}/compare?models={IDS}&base=tiny-llama&brows=instances&bmetric=kl")
    expected = f"tiny-llama-Q8_0, tiny-llama-Q2_K: run through llama.cpp kernels (llama-cpp-python {llama_cpp_python})"
    wait_until(lambda: expected in chrome.find_element(By.TAG_NAME, "body").text, timeout=60)
    cells = ".bh-grid .ag-row:not(.bh-spark-row) .bh-cell"
    wait_until(lambda: len([c for c in chrome.find_elements(By.CSS_SELECTOR, cells) if c.text.strip()]) >= 6, timeout=60)
    screenshot(chrome, "llama_cpp_behaviors")
    assert "dequantized to float" not in chrome.find_element(By.TAG_NAME, "body").text
