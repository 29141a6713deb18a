"""Shared steps of the worked-example tests: run the script, then see its models in the browser."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import screenshot, wait_for

ROOT = Path(__file__).resolve().parent.parent
_NODES = "var b = document.querySelector('.cnc-model-map'); return b._cyreg ? b._cyreg.cy.nodes('[c]').length : 0;"


def run_example(script: str, out: Path) -> None:
    module = script.removesuffix(".py").replace("/", ".")  # run as the README says: python -m examples...
    res = subprocess.run([sys.executable, "-m", module, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr


def overview_shows(chrome, url: str, models: int, title: str, name: str) -> None:
    """The Overview's map draws every model under the experiment's title; saves a screenshot."""
    chrome.get(url + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    WebDriverWait(chrome, 20).until(lambda d: d.execute_script(_NODES) == models)
    assert title in chrome.find_element("css selector", ".header").text
    screenshot(chrome, name)
