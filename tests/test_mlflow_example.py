"""The MLflow example runs end to end, and the Overview shows its runs in the browser."""
import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import screenshot, wait_for

pytest.importorskip("mlflow")
ROOT = Path(__file__).resolve().parent.parent


def test_mlflow_example_end_to_end(tmp_path, serve, chrome):
    from cnc.cli import load

    out = tmp_path / "mlflow-wine"
    res = subprocess.run([sys.executable, "examples/mlflow/train.py", str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    ctx = load(str(out / "config.yaml"), str(tmp_path / "cache"), progress=False)
    exp = ctx.experiment
    assert len(exp.models) == 10 and all(ctx.status(m) == "ready" for m in exp.models)
    assert exp.models["prune80-ft-int8"].base == "prune80-ft" and exp.models["prune80"].base == "base"
    assert exp.models["prune80"].operation.parameters == {"amount": 0.8}
    assert exp.metrics["Size"].unit == "KB" and exp.metrics["Latency"].higher_is_better is False

    chrome.get(serve(ctx) + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    count = "var b = document.querySelector('.cnc-model-map'); return b._cyreg ? b._cyreg.cy.nodes('[c]').length : 0;"
    WebDriverWait(chrome, 20).until(lambda d: d.execute_script(count) == 10)
    assert "Wine MLP compression (MLflow)" in chrome.find_element("css selector", ".header").text
    screenshot(chrome, "example_mlflow_overview")
