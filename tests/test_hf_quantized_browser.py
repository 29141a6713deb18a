"""Quantized checkpoints in headless Chromium: a compressed-tensors variant that ran on the CPU
and a GPTQ one that cannot run here, side by side with their base in Layers and Behaviors."""
from __future__ import annotations

import pytest

pytest.importorskip("compressed_tensors")

from tests.conftest import screenshot, wait_for, wait_until  # noqa: E402
from tests.test_hf_quantized import made, quant_ctx  # noqa: E402,F401  (the precomputed experiment)


def test_layers_of_a_model_that_cannot_run_and_its_notice(quant_ctx, serve, chrome):  # noqa: F811
    from selenium.webdriver.common.by import By

    url = serve(quant_ctx[0])
    chrome.get(f"{url}/compare?models=base,w4,gptq&tab=layers&lmode=weights&lopen=*")
    wait_for(chrome, ".layers-row")
    table = chrome.find_element(By.CSS_SELECTOR, ".layers")
    wait_until(lambda: "q_proj" in table.text)
    names = chrome.execute_script(
        "return Array.from(document.querySelectorAll('.layers-row .module-name')).map(e => e.title)")
    assert sum(n.endswith(("_proj", "embed_tokens", "lm_head")) for n in names) >= 10
    assert "missing" not in chrome.find_element(By.CSS_SELECTOR, ".layers-table").text
    screenshot(chrome, "layers_quantized_weights")
    # Behaviors: the GPTQ model says why it has no outputs
    chrome.get(f"{url}/compare?models=base,w4,gptq")
    wait_until(lambda: "cannot run here" in chrome.find_element(By.TAG_NAME, "body").text, timeout=60)
    screenshot(chrome, "behaviors_quantized_notice")
