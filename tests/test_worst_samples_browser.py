"""Worst samples of one model in headless Chromium: the "Worst samples of" and "Ranked by" controls
rank Behaviors' instance rows by one compressed model's damage, and the link keeps the choice."""
from __future__ import annotations

import numpy as np

from cnc.analysis import behavior_view
from cnc.bench.browser import choose
from cnc.bench.generative_behaviors import SyntheticGenerative
from cnc.ui.behaviors_data import table_for, view_for
from tests.conftest import screenshot, wait_for
from tests.test_behaviors_browser import query_of, wait_until

MODELS = ["root0", "m2", "m3"]
ROW = ".bh-grid .ag-center-cols-container .ag-row[row-index='{}']"
WORST, BY = 8, 9  # the controls' positions in the Behaviors bar (hidden ones count)


def first_rows(driver, n: int = 3) -> list[int]:
    return [int(wait_for(driver, ROW.format(i))[0].get_attribute("row-id")[1:]) for i in range(n)]


def expected(ctx, **state) -> list[int]:
    table = table_for(ctx, MODELS)
    state = behavior_view.ViewState(mode="exemplars", metric=table.default_metric(), **state)
    return view_for(ctx, table, state).order[:3].tolist()


def test_worst_samples_of_one_model(synthetic_ctx, serve, chrome):
    SyntheticGenerative(MODELS, n=300).attach(synthetic_ctx)
    url = serve(synthetic_ctx)
    chrome.get(url + "/compare?models=" + ",".join(MODELS))
    wait_for(chrome, ROW.format(0))
    controls = chrome.find_elements("css selector", ".bh-controls .bh-control")
    assert controls[WORST].text.startswith("Worst samples of") and controls[WORST].is_displayed()
    assert not controls[BY].is_displayed()  # "Ranked by" shows once a model is chosen
    default = first_rows(chrome)

    choose(chrome, WORST, "quantize 3")  # the model's label (its tag)
    wait_until(lambda: query_of(chrome).get("bworst") == "m3")
    want = expected(synthetic_ctx, worst="m3")
    wait_until(lambda: first_rows(chrome) == want)
    assert want != default
    table = table_for(synthetic_ctx, MODELS)
    em = table.scores["exact_match"]
    assert em[0, want[0]] >= 0.5 and em[2, want[0]] < 0.5  # the base right, m3 wrong: m3's worst first
    assert controls[BY].is_displayed() and not controls[WORST - 1].is_displayed()  # replaces the Order choice

    choose(chrome, BY, "Largest KL divergence first (per token, vs its root)")
    wait_until(lambda: query_of(chrome).get("bworstby") == "kl")
    want = expected(synthetic_ctx, worst="m3", worst_by="kl")
    wait_until(lambda: first_rows(chrome) == want)
    kl = table.per_token["kl"][2]
    kept = view_for(synthetic_ctx, table, behavior_view.ViewState(mode="exemplars", metric="flip")).order
    assert kl[want[0]] == np.nanmax(kl[kept])  # the largest KL among the rows shown
    title = f"Instance #{want[0]} · the worst sample of quantize 3"
    wait_until(lambda: chrome.find_element("css selector", ".bh-detail h4").text == title)
    screenshot(chrome, "worst_samples_kl")

    # the link reopens the same ranking, with the controls showing it
    chrome.get(url + "/compare?models=" + ",".join(MODELS) + "&bworst=m3&bworstby=kl")
    wait_until(lambda: first_rows(chrome) == want)
    controls = chrome.find_elements("css selector", ".bh-controls .bh-control")
    assert "quantize 3" in controls[WORST].text and "Largest KL" in controls[BY].text
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements("css selector", ".dash-fe-error__title")
