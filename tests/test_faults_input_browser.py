"""Issue 33 in headless Chromium: a cut Tracker run file opens with a notice in the header (not
silently), and a metric an lm-evaluation-harness run logged as NaN shows as missing, with a notice."""
from __future__ import annotations

import json

from selenium.webdriver.common.by import By

from cnc.app.cli import load
from tests.conftest import screenshot, wait_for
from tests.test_faults_input import _cut_at_a_model, _twenty_models
from tests.test_overview_browser import cy_eval, wait_until


def test_cut_run_file_shows_a_notice_and_the_models_it_still_lists(tmp_path, serve, chrome):
    run = tmp_path / "run"
    _twenty_models(run)
    _cut_at_a_model(run / "experiment.yaml", 12)
    url = serve(load(str(run), str(tmp_path / "cache"), precompute=False))
    chrome.get(url + "/")
    wait_for(chrome, ".cnc-model-map canvas")
    wait_until(chrome, lambda d: "cut short" in d.find_element(By.CLASS_NAME, "status-line").text)
    status = chrome.find_element(By.CLASS_NAME, "status-line").text
    assert "showing the 12 model(s) it still lists" in status and ".experiment.last-good.yaml" in status
    wait_until(chrome, lambda d: cy_eval(d, "cy.nodes('[mid]').length") == 12)
    assert chrome.find_element(By.CLASS_NAME, "model-count").text == "12 models"
    screenshot(chrome, "faults-input-cut-run-file")


def test_nan_from_the_harness_is_missing_with_a_notice(tmp_path, serve, chrome):
    for name, acc in (("base", 0.5), ("int8", float("nan"))):
        folder = tmp_path / "out" / name / "org__model"
        folder.mkdir(parents=True)
        (folder / "results_2024-01-01T00-00-00.json").write_text(json.dumps(
            {"results": {"arc_easy": {"acc,none": acc, "acc_norm,none": 0.6}},
             "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True}}}))
    (tmp_path / "exp.yaml").write_text("models:\n  - {id: base, lm_eval: out/base}\n"
                                       "  - {id: int8, base: base, operation: int8, lm_eval: out/int8}\n")
    url = serve(load(str(tmp_path / "exp.yaml"), str(tmp_path / "cache"), precompute=False))
    chrome.get(url + "/?color=arc_easy%2Facc")
    wait_for(chrome, ".cnc-model-map canvas")
    wait_until(chrome, lambda d: "arc_easy/acc = nan; shown as missing" in
               d.find_element(By.CLASS_NAME, "status-line").text)
    page = chrome.find_element(By.TAG_NAME, "body").text
    assert "NaN" not in page and "inf" not in page.replace("int8", "").replace("info", "")
    screenshot(chrome, "faults-input-harness-nan")
