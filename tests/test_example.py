"""The worked example runs end to end and its models are summarized for the app."""
import subprocess
import sys
from pathlib import Path

from selenium.webdriver.support.ui import WebDriverWait

from cnc.cli import load
from tests.conftest import screenshot, wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_wine_example_end_to_end(tmp_path, serve, chrome):
    run = tmp_path / "wine"
    res = subprocess.run([sys.executable, "examples/wine/train.py", str(run)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    ctx = load(str(run), str(tmp_path / "cache"), progress=False)
    assert ctx.title == "Wine MLP compression" and len(ctx.experiment.models) == 10
    assert all(ctx.status(m) == "ready" for m in ctx.experiment.models)
    assert ctx.task_data()["attributes"]["alcohol"][0] in ("low", "high")
    assert ctx.params("prune80")["0"]["zeros"] > 0.5 * ctx.params("prune80")["0"]["count"]

    # ...and its models show up in the app.
    chrome.get(serve(ctx) + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    count = "var b = document.querySelector('.cnc-model-map'); return b._cyreg ? b._cyreg.cy.nodes('[c]').length : 0;"
    WebDriverWait(chrome, 20).until(lambda d: d.execute_script(count) == 10)
    assert "Wine MLP compression" in chrome.find_element("css selector", ".header").text
    screenshot(chrome, "example_wine_overview")
