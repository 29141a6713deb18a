"""In the browser: Model Map labels are readable when the whole map is fitted (never under 11 px on
screen), never overlap each other or a node, still tell siblings apart, grow back to their longer
texts on zoom, and are left out where the map is too dense (assets/model_map.js, `fitLabels`)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from conftest import screenshot, wait_until

from cnc.experiment.config import load_config
from cnc.experiment.synthetic import write_experiment
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from cnc.ui.model_map import LABEL_PX

# Each model node's shown text, rendered font size and label box, and every node's body box (screen px).
LABELS = """var cy = window.cncCyto && window.cncCyto.get('cnc-model-map');
if (!cy || !cy._cncLabels) { return null; }
var box = function(b) { return [b.x1, b.y1, b.x2, b.y2]; };
return {zoom: cy.zoom(), nodes: cy.nodes('[mid]').map(function(n) {
    var shown = !!n.style('label');
    return {mid: n.data('mid'), text: shown ? n.style('label') : null, full: n.data('label'),
            px: parseFloat(n.style('font-size')) * cy.zoom(),
            label: shown ? box(n.renderedBoundingBox({includeNodes: false, includeEdges: false, includeLabels: true})) : null,
            body: box(n.renderedBoundingBox({includeLabels: false, includeOverlays: false}))};
})};"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def _check(view: dict, exp) -> list[dict]:
    """Assert the drawn labels are readable, apart and distinct among siblings; the ones shown."""
    shown = [n for n in view["nodes"] if n["text"]]
    for n in shown:
        assert n["px"] >= LABEL_PX - 0.01, n
    for i, a in enumerate(shown):
        for b in shown[i + 1:]:
            assert not _overlap(a["label"], b["label"]), (a, b)
    for a in shown:
        for b in view["nodes"]:
            if b["mid"] != a["mid"]:
                assert not _overlap(a["label"], b["body"]), (a, b)
    siblings = defaultdict(list)
    for n in shown:
        siblings[exp.models[n["mid"]].base].append(n["text"])
    for base, texts in siblings.items():
        assert len(set(texts)) == len(texts), (base, texts)
    return shown


def _zoom(chrome, factor: float) -> None:
    chrome.execute_script("""var cy = window.cncCyto.get('cnc-model-map'), e = cy.extent();
        cy.zoom({level: cy.zoom() * arguments[0], position: {x: e.x1, y: e.y1}});""", factor)


def test_demo_labels_readable_apart_and_longer_on_zoom(chrome, serve, demo_ctx):
    exp = demo_ctx.experiment
    chrome.set_window_size(1400, 1000)
    chrome.get(serve(demo_ctx) + "/")
    wait_until(lambda: chrome.execute_script(LABELS))
    fitted = chrome.execute_script(LABELS)
    assert fitted["zoom"] < 1  # the whole map fitted: the old labels were 11 model px * zoom, ~7 px
    shown = _check(fitted, exp)
    assert len(shown) >= 0.9 * len(exp.models)  # the demo's map has room for nearly every label
    screenshot(chrome, "map-labels-demo-fitted")
    _zoom(chrome, 2.5)
    before = {n["mid"]: n["text"] for n in shown}

    def grown():  # fitLabels runs once the zoom has settled
        view = chrome.execute_script(LABELS)
        return view["zoom"] > fitted["zoom"] * 2 and any(
            n["text"] and len(n["text"]) > len(before[n["mid"]]) for n in view["nodes"])

    wait_until(grown)
    zoomed = chrome.execute_script(LABELS)
    assert any(n["text"] == n["full"] != before[n["mid"]] for n in _check(zoomed, exp))

    # another column mode: new positions, labels chosen for them (still apart, still readable)
    chrome.execute_script("document.querySelector('.map-fit').click();")
    chrome.execute_script("[...document.querySelectorAll('.segmented label')]"
                          ".find(l => l.innerText.includes('By operation')).click();")
    old = {n["mid"]: n["body"] for n in zoomed["nodes"]}

    def relaid():
        view = chrome.execute_script(LABELS)
        return view["zoom"] < 1 and sum(n["body"] != old[n["mid"]] for n in view["nodes"]) > len(old) / 2

    wait_until(relaid)
    wait_until(lambda: len(_check(chrome.execute_script(LABELS), exp)) >= 0.5 * len(exp.models))
    assert len(_check(chrome.execute_script(LABELS), exp)) >= 0.5 * len(exp.models)  # and it stays so
    screenshot(chrome, "map-labels-demo-by-operation")


def test_dense_map_leaves_out_what_does_not_fit(chrome, serve, tmp_path):
    config = load_config(write_experiment(1000, Path(tmp_path) / "exp.json"), cache_dir=tmp_path / "cache")
    ctx = AppContext(config=config, store=SummaryStore(config.cache_dir))
    chrome.set_window_size(1400, 1000)
    chrome.get(serve(ctx) + "/")
    wait_until(lambda: len((chrome.execute_script(LABELS) or {}).get("nodes", [])) == 1000, timeout=60)
    view = chrome.execute_script(LABELS)
    shown = _check(view, ctx.experiment)
    assert 0 < len(shown) < 1000
    chrome.execute_script("document.querySelector('.map-fit').click();")  # the whole map: 1,000 rows
    wait_until(lambda: chrome.execute_script(LABELS)["zoom"] < view["zoom"] / 2)
    wait_until(lambda: not any(n["text"] for n in chrome.execute_script(LABELS)["nodes"]))
