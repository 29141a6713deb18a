"""browser.first_paint_fresh: what a newcomer waits for on a shared link over an office or VPN link.

Each run starts Chromium with a new profile (nothing cached), throttles its network with DevTools
network emulation (20 Mbit/s each way, 20 ms latency) and opens the Overview; a script installed
before the page's own scripts checks every animation frame whether the Model Map holds every model
and whether the scatterplot has drawn its points, and keeps `performance.now()` (milliseconds since
navigation) one frame after each holds. The map counts as drawn when every model inside its view is in cytoscape (a large map
gets the rest in idle time: `map_all_ms` is when it holds every model). `bytes` is what came over
the wire until both were drawn
(navigation and every resource, compressed size as sent); `decoded_bytes` what those bodies are
unpacked. Measured on the digits demo (built into the cache directory on first use) and on a
synthetic 1,000-model experiment; `--quick` runs the synthetic one at 200 models, once.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from cnc.experiment.config import load_config
from cnc.experiment.forest import Experiment
from cnc.experiment.synthetic import write_experiment
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from cnc.ui.model_map import map_data

MBIT = 20
LATENCY_MS = 20
REPEAT = 3
ROOT = Path(__file__).resolve().parent.parent.parent

_PROBE = """
(function() {
    var t = window.__cncPaint = {map: null, scatter: null, all: null};
    var models = %s;  // [node id, x, y] of every model, as the server lays the map out
    var live = function() { return window.cncCyto && window.cncCyto.get('cnc-model-map'); };
    var mapDrawn = function() {
        var cy = live();
        if (!cy || !cy.nodes('[mid]').length) { return false; }
        var e = cy.extent(), seen = models.filter(function(m) {
            return m[1] >= e.x1 && m[1] <= e.x2 && m[2] >= e.y1 && m[2] <= e.y2; });
        return seen.length > 0 && seen.every(function(m) { return cy.getElementById(m[0]).length > 0; });
    };
    var allDrawn = function() { var cy = live(); return !!cy && cy.nodes('[mid]').length === models.length; };
    var scatterDrawn = function() {
        var gd = document.querySelector('.scatter-graph .js-plotly-plot');
        return !!gd && !!gd.data && gd.data.some(function(tr) { return (tr.x || []).length > 0; })
            && !!gd.querySelector('.scatterlayer .point, canvas.gl-canvas-context');
    };
    var check = function(fn) { try { return fn(); } catch (e) { return false; } };
    var tick = function() {
        if (t.map === null && check(mapDrawn)) {
            requestAnimationFrame(function() { if (t.map === null) { t.map = performance.now(); } });
        }
        if (t.all === null && check(allDrawn)) {
            requestAnimationFrame(function() { if (t.all === null) { t.all = performance.now(); } });
        }
        if (t.scatter === null && check(scatterDrawn)) {
            requestAnimationFrame(function() { if (t.scatter === null) { t.scatter = performance.now(); } });
        }
        if (t.map === null || t.scatter === null || t.all === null) { requestAnimationFrame(tick); }
    };
    requestAnimationFrame(tick);
})();
"""

_BYTES = """
var end = arguments[0], nav = performance.getEntriesByType('navigation');
var all = nav.concat(performance.getEntriesByType('resource')).filter(function(e) {
    return e.responseEnd <= end; });
return [all.reduce(function(s, e) { return s + (e.transferSize || 0); }, 0),
        all.reduce(function(s, e) { return s + (e.decodedBodySize || 0); }, 0), all.length];
"""


def fresh_paint(url: str, models: list, timeout: float = 120) -> dict:
    """Open `url` in a fresh, throttled Chromium: {map_ms, map_all_ms, scatter_ms, bytes, decoded_bytes,
    requests}. `models`: [node id, x, y] of each model (`map_positions`)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    from cnc.bench.browser import chromium

    with chromium() as driver:
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)  # a page busy for seconds on a loaded machine is slow, not broken
        driver.execute_cdp_cmd("Network.enable", {})
        rate = MBIT * 1_000_000 / 8  # bytes per second
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": LATENCY_MS, "downloadThroughput": rate, "uploadThroughput": rate})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _PROBE % json.dumps(models)})
        driver.get(url)
        WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(TimeoutException,)).until(lambda d: d.execute_script(
            "var t = window.__cncPaint; return !!t && t.map !== null && t.scatter !== null && t.all !== null;"))
        map_ms, scatter_ms, all_ms = driver.execute_script(
            "var t = window.__cncPaint; return [t.map, t.scatter, t.all];")
        sent, decoded, requests = driver.execute_script(_BYTES, max(map_ms, scatter_ms))
    return {"map_ms": round(map_ms, 1), "map_all_ms": round(all_ms, 1), "scatter_ms": round(scatter_ms, 1), "bytes": int(sent),
            "decoded_bytes": int(decoded), "requests": int(requests)}


def map_positions(exp: Experiment) -> list:
    """[node id, x, y] of each model on the Overview's default map (by step)."""
    data = map_data(exp, "step")
    return [list(m) for m in zip(data["id"], data["x"], data["y"])]


def machine_ms() -> float:
    """A fixed CPU task (3 million loop steps in Python), in ms: it swings with the machine's speed
    of the moment (125-220 ms within an hour on the 2-core VM of the README's figures), and first
    paint with it."""
    t0, total = time.perf_counter(), 0
    for i in range(3_000_000):
        total += i * i
    return round((time.perf_counter() - t0) * 1000, 1)


def _record(runs: list[dict], models: int | str, experiment: str) -> dict:
    both = [max(r["map_ms"], r["scatter_ms"]) for r in runs]
    med = statistics.median
    return {"scenario": "browser.first_paint_fresh", "models": models, "experiment": experiment,
            "ms": med(both), "map_ms": med(r["map_ms"] for r in runs),
            "scatter_ms": med(r["scatter_ms"] for r in runs), "map_all_ms": med(r["map_all_ms"] for r in runs),
            "runs_ms": both,
            "bytes": int(med(r["bytes"] for r in runs)), "decoded_bytes": int(med(r["decoded_bytes"] for r in runs)),
            "requests": max(r["requests"] for r in runs), "machine_ms": machine_ms(),
            "note": f"fresh profile, {MBIT} Mbit/s, {LATENCY_MS} ms latency; ms: map (its view) and scatterplot both drawn"}


def _serve_and_measure(ctx: AppContext, experiment: str, repeat: int) -> dict:
    from cnc.app.webapp import build_app
    from cnc.bench.browser import LiveServer

    app = build_app(ctx)
    server = LiveServer(app.server)
    try:
        models = map_positions(ctx.experiment)
        fresh_paint(server.url + "/", models)  # warm the server's memos: the figure is the network's and the browser's
        app.server.extensions["compress"].cache.settle()  # static files at brotli's best, as later visitors get them
        return _record([fresh_paint(server.url + "/", models) for _ in range(repeat)], len(models), experiment)
    finally:
        server.stop()


def scenarios(quick: bool) -> list[dict]:
    from cnc.bench.browser import chromium_paths

    if chromium_paths() is None:
        return []
    out = []
    if not quick:
        from cnc.app.cli import demo_config, load

        cache = Path(os.environ.get("CNC_CACHE_DIR") or ROOT / ".cnc-cache")
        out.append(_serve_and_measure(load(str(demo_config("digits")), str(cache), progress=False), "demo", REPEAT))
    with tempfile.TemporaryDirectory(prefix="cnc-bench-paint-") as tmp:
        n = 200 if quick else 1000
        config = load_config(write_experiment(n, Path(tmp) / "exp.json"), cache_dir=Path(tmp) / "cache")
        ctx = AppContext(config=config, store=SummaryStore(config.cache_dir))
        out.append(_serve_and_measure(ctx, "synthetic", 1 if quick else REPEAT))
    return out
