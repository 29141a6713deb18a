"""Quantized checkpoints in headless Chromium: a compressed-tensors variant that ran on the CPU
and a GPTQ one that cannot run here, side by side with their base in Layers and Behaviors."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_experiments  # noqa: E402  (tests/ is on sys.path)
import hf_models  # noqa: E402
import llmcompressor_models  # noqa: E402

from tests.conftest import screenshot, wait_for, wait_until  # noqa: E402

pytest.importorskip("compressed_tensors")


@pytest.fixture(scope="module")
def quant_ctx(tmp_path_factory):
    from cnc.server.context import AppContext

    base, variants = llmcompressor_models.artifacts()
    folder = tmp_path_factory.mktemp("quant-exp")
    data = hf_models.write_jsonl(folder / "data.jsonl", hf_models.instances(4))
    options = {"model_dir": str(base), "data": str(data), "prompt_template": "Question: {question}\nAnswer:",
               "max_new_tokens": 4}
    cfg, store, _ = hf_experiments.precomputed(folder, [
        f"{{id: base, checkpoint: {base}}}",
        f"{{id: w4a16, base: base, checkpoint: {variants['w4a16-asym-rtn']}}}",
        f"{{id: gptq, base: base, checkpoint: {variants['gptq-autoround']}}}"], options, activation_sample=2)
    return AppContext(cfg, store)


def test_layers_of_a_model_that_cannot_run_and_its_notice(quant_ctx, serve, chrome):
    from selenium.webdriver.common.by import By

    url = serve(quant_ctx)
    chrome.get(f"{url}/compare?models=base,w4a16,gptq&tab=layers&lmode=weights&lopen=*")
    wait_for(chrome, ".layers-row")
    table = chrome.find_element(By.CSS_SELECTOR, ".layers")
    wait_until(lambda: "q_proj" in table.text)
    names = chrome.execute_script(
        "return Array.from(document.querySelectorAll('.layers-row .module-name')).map(e => e.title)")
    assert any(n.endswith("mlp.down_proj") for n in names)
    assert "missing" not in chrome.find_element(By.CSS_SELECTOR, ".layers-table").text
    screenshot(chrome, "layers_quantized_weights")
    # Behaviors: the GPTQ model says why it has no outputs
    chrome.get(f"{url}/compare?models=base,w4a16,gptq")
    wait_until(lambda: "cannot run here" in chrome.find_element(By.TAG_NAME, "body").text, timeout=60)
    screenshot(chrome, "behaviors_quantized_notice")
