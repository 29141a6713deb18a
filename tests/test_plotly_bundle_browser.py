"""In the browser: the page loads the partial plotly.js bundle (never the full one) and the
scatterplot draws with it, WebGL points included (cnc/app/plotly_bundle.py)."""
from __future__ import annotations

from pathlib import Path

from conftest import screenshot, wait_until

from cnc.app import plotly_bundle
from cnc.experiment.config import load_config
from cnc.experiment.synthetic import write_experiment
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from cnc.ui import scatter

DRAWN = """var gd = document.querySelector('.scatter-graph .js-plotly-plot');
return gd && gd._fullData && gd._fullData[1] && gd._fullData[1].x && gd._fullData[1].x.length
    ? [gd._fullData[1].type, gd._fullData[1].x.length, !!gd.querySelector('canvas.gl-canvas-context')] : null;"""


def test_the_partial_bundle_draws_the_webgl_scatterplot(chrome, serve, tmp_path):
    n = scatter.WEBGL_FROM
    config = load_config(write_experiment(n, Path(tmp_path) / "exp.json"), cache_dir=tmp_path / "cache")
    ctx = AppContext(config=config, store=SummaryStore(config.cache_dir))
    chrome.get(serve(ctx) + "/")
    wait_until(lambda: chrome.execute_script(DRAWN), timeout=60)
    kind, points, gl = chrome.execute_script(DRAWN)
    assert kind == "scattergl" and points > 0 and gl
    traces = chrome.execute_script("return Object.keys(window.Plotly.PlotSchema.get().traces).sort()")
    assert traces == sorted(plotly_bundle.TRACES)
    loaded = chrome.execute_script("""return performance.getEntriesByType('resource')
        .filter(function(e) { return e.name.indexOf('plotly') >= 0; })
        .map(function(e) { return [e.name, e.decodedBodySize]; });""")
    assert loaded and all(size == plotly_bundle.BUNDLE.stat().st_size for _, size in loaded), loaded
    screenshot(chrome, "plotly-partial-bundle-webgl")
