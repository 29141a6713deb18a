"""Derived metrics in the browser (issue 31): real checkpoints pruned by different amounts, their
size logged, and "Mean KL vs root (computed)" against size on the scatterplot with the Pareto
front the server's rule gives (the chart llama.cpp users draw by hand)."""
from __future__ import annotations

from urllib.parse import quote

import torch
from selenium.webdriver.support.ui import WebDriverWait

from cnc.analysis.pareto import pareto_front
from cnc.precompute.run import precompute
from cnc.server.context import AppContext
from tests.conftest import screenshot, wait_for
from tests.test_precompute import load
from tests.tiny_task import save_checkpoint

KL = "Mean KL vs root (computed)"
AMOUNTS = {"base": 0.0, "p20": 0.2, "p40": 0.4, "p60": 0.6, "p80": 0.8, "p95": 0.95}


def _experiment(folder):
    lines = ["metrics:", "  - {name: Size, unit: weights, higher_is_better: false}", "models:"]
    for mid, amount in AMOUNTS.items():
        save_checkpoint(folder / f"{mid}.pt", seed=0, prune=amount)
        state = torch.load(folder / f"{mid}.pt", weights_only=True)
        size = int(sum(int((v != 0).sum()) for k, v in state.items() if k.endswith("weight")))
        parent = "" if mid == "base" else f"base: base, operation: {{name: prune, parameters: {{amount: {amount}}}}}, "
        lines.append(f"  - {{id: {mid}, {parent}checkpoint: {mid}.pt, metrics: {{Size: {size}}}}}")
    (folder / "exp.yaml").write_text("\n".join(lines) + "\n")
    (folder / "cfg.yaml").write_text("experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask', activation_sample: 16}\n")


FRONT = """var gd = document.querySelector('.scatter-graph .js-plotly-plot');
return gd && gd.data && gd.data[2] ? {x: gd.data[2].x, y: gd.data[2].y, title: gd.layout.yaxis.title.text,
  chips: [...document.querySelectorAll('.front-list .chip')].map(c => c.title.split('\\n')[0])} : null;"""


def test_mean_kl_against_size_with_its_pareto_front(tmp_path, serve, chrome):
    _experiment(tmp_path)
    cfg, store = load(tmp_path)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    exp = ctx.experiment
    assert exp.models["p95"].metrics[KL] > exp.models["p20"].metrics[KL] > 0 == exp.models["base"].metrics[KL]
    points = [(mid, m.metrics["Size"], m.metrics[KL]) for mid, m in exp.models.items()]
    front = pareto_front(points, False, False)  # smaller and closer to the base are both better
    assert "base" in front and len(front) >= 2
    chrome.set_window_size(1400, 1000)
    chrome.get(serve(ctx) + "/?x=Size&y=" + quote(KL))
    wait_for(chrome, ".scatter-graph .js-plotly-plot")

    def drawn(driver):
        got = driver.execute_script(FRONT)
        return got if got and got["chips"] and KL in (got["title"] or "") else None
    got = WebDriverWait(chrome, 30).until(drawn)
    assert sorted(got["chips"]) == sorted(front)
    want = sorted((exp.models[m].metrics["Size"], exp.models[m].metrics[KL]) for m in front)
    drawn_points = sorted(zip(got["x"], got["y"]))
    assert all(p in drawn_points for p in want)  # the step line passes through every front model
    wait_for(chrome, ".scatter-graph .xtick")
    screenshot(chrome, "derived_mean_kl_vs_size")
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors
