"""browser.*: time from a user action to the view drawn, measured by headless Chromium itself.

Synthetic 1,000- and 5,000-model experiments are served in-process, one after the other (records
carry `models`); a page script starts a clock
(`performance.now()`), performs the action the way the browser would (a dropdown value set through
Dash, a brush on a filter histogram, a button click, a tab click), then checks every animation
frame whether the view shows the result (the map's nodes in view carry the new colours or
dimming, the front is selected, the Layers rows are drawn) and stops the clock one frame after it
does (so the frame is painted). The map restyles what is out of view in idle time afterwards:
`settled_ms` is when every node holds the new values. Each scenario runs a few times; records
give the median.
The Layers scenario (with the largest experiment only) compares 20 of the models over a synthetic
2,000-module summary.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from cnc.bench.layers import synthetic_summaries
from cnc.experiment.config import load_config
from cnc.experiment.synthetic import write_experiment
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext

SIZES, N_MODULES, N_COMPARED = (1000, 5000), 2000, 20
REPEAT = 3
QUICK = ((200,), 100, 5, 1)  # --quick (a smoke run): model counts, modules, compared, repeats

_CLOCK = """
window.cncBench = function(action, done, timeout, settled) {
    var b = window.__cncBench = {finished: false, ms: null, settledMs: null};
    var t0 = performance.now();
    action();
    var check = function(fn) { try { return fn(); } catch (e) { return false; } };
    var tick = function() {
        var now = performance.now();
        if (b.ms === null && check(done)) {
            requestAnimationFrame(function() { b.ms = performance.now() - t0; });
        }
        if (b.settledMs === null && settled && b.ms !== null && check(settled)) {
            requestAnimationFrame(function() { b.settledMs = performance.now() - t0; });
        }
        if ((b.ms !== null && (!settled || b.settledMs !== null)) || now - t0 > timeout) {
            requestAnimationFrame(function() { b.finished = true; });
            return;
        }
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
};
window.cncMapCy = function() { return window.cncCyto && window.cncCyto.get('cnc-model-map'); };
/* The model nodes in the map's view: what a user sees change. */
window.cncInView = function() {
    var cy = window.cncMapCy(), e = cy.extent();
    return cy.nodes('[mid]').filter(function(n) {
        var p = n.position(); return p.x >= e.x1 && p.x <= e.x2 && p.y >= e.y1 && p.y <= e.y2; });
};
/* What the scatterplot draws: its traces' point counts and colours. */
window.cncScatter = function() {
    var gd = document.querySelector('.scatter-graph .js-plotly-plot');
    return gd.data.map(function(t) { return (t.x || []).length + ':' + [].concat(t.marker && t.marker.color).join(); }).join('|');
};
window.cncPending = function() { return window.dash_clientside.cncMap.pending(); };
"""


class _LayersContext(AppContext):
    """The synthetic experiment, with synthetic layer summaries for the compared models."""

    def __init__(self, config, store, summaries: dict):
        super().__init__(config, store)
        self._layers = summaries

    @property
    def task_hash(self) -> str | None:
        return "bench"

    def params(self, model_id: str) -> dict | None:
        return self._layers.get(model_id)

    activations = params

    def outputs(self, model_id: str) -> dict | None:
        return None

    def task_data(self) -> dict | None:
        return None

    def status(self, model_id: str) -> str:
        return "ready" if model_id in self._layers else "no layer summaries (benchmark)"


def _js(component_id: dict) -> str:
    """A dict id as Dash writes it into the DOM (sorted keys, no spaces); also a JS object literal."""
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _measure(driver, action: str, done: str, timeout_ms: int = 30000, settled: str | None = None):
    """Milliseconds from the action to the frame after `done` holds (None on timeout); with
    `settled`, also to the frame after it holds: (ms, settled_ms)."""
    from selenium.webdriver.support.ui import WebDriverWait

    settle = "null" if settled is None else f"function() {{ {settled} }}"
    driver.execute_script(f"window.cncBench(function() {{ {action} }}, function() {{ {done} }}, {timeout_ms}, {settle});")
    WebDriverWait(driver, timeout_ms / 1000 + 5, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.__cncBench && window.__cncBench.finished"))
    ms, settled_ms = driver.execute_script("return [window.__cncBench.ms, window.__cncBench.settledMs]")
    ms = None if ms is None else round(ms, 1)
    if settled is None:
        return ms
    return ms, None if settled_ms is None else round(settled_ms, 1)


def _open(driver, url: str, ready: str, timeout: float = 120) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(
        "try { return !!(" + ready + "); } catch (e) { return false; }"))
    driver.execute_script(_CLOCK)
    time.sleep(0.5)


def _record(name: str, samples: list, models: int, **extra) -> dict:
    ok = [s for s in samples if s is not None]
    return {"scenario": f"browser.{name}", "models": models, "ms": statistics.median(ok) if ok else None,
            "runs_ms": samples, **extra}


def _map_change(driver, node_state: str, set_props: str) -> tuple:
    """Time `set_props(...)` until the map's nodes in view and the scatterplot show its change, and
    until every node does; `node_state` is a JS expression of a node `n` that the change alters."""
    state = f"function(n) {{ return {node_state}; }}"
    action = (f"window.__vis = window.cncInView(); window.__before = window.__vis.map({state}).join();"
              f"window.__all = window.cncMapCy().nodes('[mid]').map({state}).join();"
              f"window.__scatter = window.cncScatter(); window.dash_clientside.set_props({set_props});")
    everywhere = (f"window.cncPending() === 0 && "
                  f"window.cncMapCy().nodes('[mid]').map({state}).join() !== window.__all")
    done = (f"return (window.__vis.map({state}).join() !== window.__before || ({everywhere})) "
            f"&& window.cncScatter() !== window.__scatter;")
    return _measure(driver, action, done, settled=f"return {everywhere};")


def _settled_record(name: str, runs: list, models: int, **extra) -> dict:
    """A record of (view drawn, every element updated) pairs: `ms` is the first."""
    settled = [r[1] for r in runs]
    ok = [s for s in settled if s is not None]
    return _record(name, [r[0] for r in runs], models, settled_ms=statistics.median(ok) if ok else None,
                   settled_runs_ms=settled, **extra)


def _overview(driver, url: str, n_models: int, repeat: int) -> list[dict]:
    """Colour change, filter drag and Select front on the Overview at `url`."""
    from cnc.pages import overview
    from cnc.ui import filters as filter_ui
    from cnc.ui import legend, scatter

    out: list[dict] = []
    map_ready = (f"window.cncCyto && window.cncCyto.get('cnc-model-map') && "
                 f"window.cncCyto.get('cnc-model-map').nodes('[mid]').length === {n_models} && "
                 "document.querySelector('.scatter-graph .js-plotly-plot').data[1].x.length > 0")
    # colour change: the nodes in view recoloured (and, `settled`, every node)
    _open(driver, url + "/", map_ready)
    runs = [_map_change(driver, "n.data('c')", f"{_js(legend.COLOR)}, {{value: '{metric}'}}")
            for metric in ["Latency", "Size", "Accuracy"][:repeat]]
    out.append(_settled_record("colour_change", runs, n_models, note="nodes in view and the scatterplot "
                               "recoloured; settled: every node"))
    # filter drag: a brush on the Accuracy histogram; done when the map dims other models
    _open(driver, url + "/?f.Accuracy=:", map_ready + " && document.querySelector('.filter-hist')")
    brush = _js(filter_ui._part("hist", "Accuracy"))
    runs = [_map_change(driver, "n.hasClass('off')",
                        f"{brush}, {{selectedData: {{points: [], range: {{x: [{lo}, 1.0]}}}}}}")
            for lo in (0.85, 0.8, 0.9)[:repeat]]
    out.append(_settled_record("filter_drag", runs, n_models, note="brush on a filter histogram until the map "
                               "(in view) and the scatterplot dim the rest; settled: every node"))
    # select front: the button; done when the map shows the front selected
    _open(driver, url + "/", map_ready)
    runs = []
    for _ in range(repeat):
        driver.execute_script(f"window.dash_clientside.set_props({_js(overview.SELECTION)}, {{data: []}});")
        time.sleep(1.0)
        runs.append(_measure(driver, f"document.getElementById({json.dumps(_js(scatter.SELECT_FRONT))}).click();",
                             "var n = document.querySelectorAll('.front-list .chip').length;"
                             "return n > 0 && window.cncMapCy().nodes(':selected').length === n;"))
    out.append(_record("select_front", runs, n_models, note="click Select front until the map selects it"))
    return out


def _layers(driver, url: str, compared: list[str], n_models: int, n_modules: int, repeat: int) -> dict:
    """Open Layers: `compared` models x `n_modules` modules, weight histograms."""
    query = "/compare?models=" + ",".join(compared) + "&lmode=weights"
    runs = []
    for _ in range(repeat):
        _open(driver, url + query, "document.querySelectorAll('.tab').length >= 2")
        runs.append(_measure(driver, """
            Array.from(document.querySelectorAll('.tab')).filter(function(t) {
                return t.textContent.trim() === 'Layers'; })[0].click();""",
            "return document.querySelectorAll('.layers-row').length > 0 && "
            "document.querySelectorAll('canvas.hist').length > 0;", timeout_ms=60000))
    return _record("open_layers", runs, n_models, modules=n_modules, compared=len(compared),
                   note="click the Layers tab until the first page of rows and histograms is drawn")


def scenarios(quick: bool) -> list[dict]:
    from cnc.app.webapp import build_app
    from cnc.bench.browser import LiveServer, chromium, chromium_paths

    if chromium_paths() is None:
        return []
    sizes, n_modules, n_compared, repeat = QUICK if quick else (SIZES, N_MODULES, N_COMPARED, REPEAT)
    out: list[dict] = []
    with chromium() as driver:
        driver.set_page_load_timeout(120)
        for n_models in sizes:
            tmp = Path(tempfile.mkdtemp(prefix="cnc-bench-browser-"))
            config = load_config(write_experiment(n_models, tmp / "exp.json"), cache_dir=tmp / "cache")
            ctx = AppContext(config=config, store=SummaryStore(config.cache_dir))
            compared = list(ctx.experiment.models)[:n_compared]
            largest = n_models == sizes[-1]
            if largest:
                ctx = _LayersContext(config, ctx.store, synthetic_summaries(compared, n_modules))
            server = LiveServer(build_app(ctx).server)
            try:
                out.extend(_overview(driver, server.url, n_models, repeat))
                if largest:
                    out.append(_layers(driver, server.url, compared, n_models, n_modules, repeat))
            finally:
                server.stop()
    return out
