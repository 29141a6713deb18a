"""Issue 11's three selections charted in headless Chromium (tests/fixtures/recipe_branches.yaml):
two models and three models from different branches draw one bar per model labelled by recipe; the
subtree of m60 charts two variables whose values read as ordered steps with parameter values.
Issue 25's three cases on fixtures in the original model-info format (mixed ImageNet branches, two
architectures, T5 restore / retrain recipes): one bar per model by recipe, best first.
Screenshots: tests/screenshots/ (set CNC_SHOTS_DIR=docs/screenshots to refresh the docs' copies)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import screenshot, wait_for
from tests.test_selection_browser import GRAPH, figure, scroll_to_panel, wait_until

FIXTURE = Path(__file__).parent / "fixtures" / "recipe_branches.yaml"
M60 = ["m60", "m60-q8", "m60-ft", "m60-ft-m60", "m60-ft-m60-ft", "m60-ft-m60-ft-q8", "m60-cal", "m60-cal-q8"]


@pytest.fixture
def branches_ctx(tmp_path):
    from cnc.experiment.config import load_config
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(str(FIXTURE), cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))


def _shot(driver, name: str) -> None:
    path = screenshot(driver, name)
    keep = os.environ.get("CNC_SHOTS_DIR")  # e.g. a folder outside the repository for review
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _labels(driver) -> list[str]:
    fig = figure(driver)
    return [x.replace("<br>", " ") for t in fig["traces"] for x in t["x"]]


@pytest.mark.parametrize("name, selection, expected", [
    ("explain-two-branches", ["t30-ft", "m60-q8"],
     ["taylor prune 0.3 → fine-tune 5", "magnitude prune 0.6 → quantize 8"]),
    ("explain-three-branches", ["t30-ft", "m60-q8", "m60-ft-m60-ft-q8"],
     ["taylor prune 0.3 → fine-tune 5", "magnitude prune 0.6 → quantize 8",
      "magnitude prune 0.6 → fine-tune 5 → magnitude prune 0.6 → fine-tune 5 → quantize 8"]),
])
def test_small_selections_draw_one_bar_per_recipe(chrome, serve, branches_ctx, name, selection, expected):
    chrome.get(serve(branches_ctx) + "/?sel=" + ",".join(selection))
    wait_for(chrome, GRAPH)
    wait_until(lambda: figure(chrome) and sorted(_labels(chrome)) == sorted(expected))
    summary = chrome.find_element("css selector", ".sd-summary").text
    assert "one bar per model" in summary
    scroll_to_panel(chrome)
    _shot(chrome, name)


def test_subtree_values_read_as_ordered_steps(chrome, serve, branches_ctx):
    chrome.get(serve(branches_ctx) + "/?sel=" + ",".join(M60))
    wait_for(chrome, GRAPH)
    wait_until(lambda: figure(chrome) and "fine-tune" in figure(chrome)["x"])
    fig = figure(chrome)
    shown = " ".join(_labels(chrome) + [t["name"] for t in fig["traces"]] + [fig["x"], fig["legend"]])
    assert "fine-tune 5 → magnitude prune 0.6 → fine-tune 5" in shown
    assert "calibrate train → quantize 8" in shown
    assert "#" not in shown and " + " not in shown and " &amp; " not in shown
    assert "all after magnitude prune 0.6" in chrome.find_element("css selector", ".sd-summary").text
    scroll_to_panel(chrome)
    _shot(chrome, "explain-m60-subtree")


def _json_ctx(tmp_path, fixture: str):
    """An original-format model-info file loaded unchanged, as `--config` would."""
    from cnc.experiment.config import load_config
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(str(FIXTURE.parent / f"{fixture}_models.json"), cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))


@pytest.mark.parametrize("case", ["mixed-branches", "two-architectures", "t5-restore-retrain"])
def test_issue_25_cases_draw_recipe_bars_best_first(chrome, serve, tmp_path, case):
    from tests.test_comparability_small_selections import CASES

    fixture, selection, recipes = CASES[case]
    ctx = _json_ctx(tmp_path, fixture)
    chrome.set_window_size(1400, 1000)
    chrome.get(serve(ctx) + "/?sel=" + ",".join(selection))
    wait_for(chrome, GRAPH)
    wait_until(lambda: figure(chrome) and sorted(_labels(chrome)) == sorted(recipes))
    accuracy = {r: ctx.experiment.models[m].metrics["Top-1 Accuracy"] for m, r in zip(selection, recipes)}
    order = chrome.execute_script(
        "const gd = document.querySelector(arguments[0]); return gd.layout.xaxis.categoryarray;", GRAPH)
    shown = [accuracy[" ".join(x.replace("<br>", " ").split())] for x in order]
    assert shown == sorted(shown, reverse=True)
    assert "one bar per model" in chrome.find_element("css selector", ".sd-summary").text
    table = chrome.find_element("css selector", ".sd-table-wrap").text
    assert "quantize int8" in table or "pruning 0.5" in table
    assert "method quantize" not in table and "(epochs:" not in table
    scroll_to_panel(chrome)
    _shot(chrome, f"selection-issue25-{case}")
