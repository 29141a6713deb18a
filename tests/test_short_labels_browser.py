"""In the browser: a user's experiment whose siblings differ in one parameter shows map labels
and Pareto chips that tell them apart, the full text on hover (cnc/analysis/short_labels.py)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from conftest import screenshot, wait_until
from selenium.webdriver.common.by import By

from cnc.experiment.config import load_config
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext

FIXTURE = Path(__file__).parent / "fixtures" / "user_parametrised.yaml"
NODES = """var cy = window.cncCyto && window.cncCyto.get('cnc-model-map');
return cy ? cy.nodes('[mid]').map(function(n) { return [n.data('mid'), n.data('label'), n.style('label')]; }) : null;"""


def test_sibling_labels_and_chips_differ_in_the_browser(chrome, serve, tmp_path):
    config = load_config(FIXTURE, cache_dir=tmp_path / "cache")
    ctx = AppContext(config=config, store=SummaryStore(config.cache_dir))
    exp = ctx.experiment
    chrome.set_window_size(1440, 1000)
    chrome.get(serve(ctx) + "/?x=Size&y=Accuracy")
    wait_until(lambda: len(chrome.execute_script(NODES) or []) == len(exp.models))
    nodes = chrome.execute_script(NODES)
    drawn = {mid: style for mid, _, style in nodes}
    siblings = defaultdict(list)
    for mid, model in exp.models.items():
        siblings[model.base].append(drawn[mid])
    for base, labels in siblings.items():
        assert len(set(labels)) == len(labels), (base, labels)
    # the longest text that fits the map's zoom (test_map_labels_browser.py): the parameter kept
    for mid, amount in (("g10", "0.1"), ("g30", "0.3")):
        assert drawn[mid] in {t.replace("0.1", amount) for t in ("global mag. prune 0.1", "global prune 0.1")}
    wait_until(lambda: chrome.find_elements(By.CSS_SELECTOR, ".front-list .chip"))
    chips = chrome.find_elements(By.CSS_SELECTOR, ".front-list .chip")
    texts = [c.text for c in chips]
    assert len(texts) >= 2 and len(set(texts)) == len(texts)
    for chip in chips:  # nothing cut by CSS either, and the whole name and recipe on hover
        assert chrome.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth + 1;", chip)
        assert chip.get_attribute("title").split("\n")[0] in {m.tag or mid for mid, m in exp.models.items()}
    screenshot(chrome, "short-labels-user-experiment")
