"""The device selector in headless Chromium, on real llama-bench results (tests/llama_bench_runs.py:
the tiny Llama's GGUF variants measured with 1 and 2 threads; Q2_K with 1 thread only). Picking
the 2-thread device changes the scatterplot's numbers and the URL, leaves Q2_K out (missing, not
zero), and Selection Details and the CSV say which device."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from conftest import screenshot, wait_for
from test_overview_browser import pick_option, query, wait_until

from cnc.app.cli import load
from cnc.experiment.benchmarks.devices import on_device
from cnc.ui import selection_export
from tests.llama_bench_runs import bench_experiment

POINTS = """var gd = document.querySelector('.scatter-graph .js-plotly-plot');
if (!gd || !gd.data) return null;
var out = {};
gd.data.forEach(function(t) { (t.customdata || []).forEach(function(c, i) {
  var id = Array.isArray(c) ? c[0] : c; if (t.y[i] !== null && t.y[i] !== undefined) out[id] = t.y[i]; }); });
return out;"""


@pytest.fixture(scope="module")
def bench_ctx(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "llama-bench"
    folder.mkdir(exist_ok=True)
    path = bench_experiment(folder, two_devices_for=("f16", "q8_0", "q4_k_m"))
    return load(str(path), str(folder / "cache"), progress=False)


def test_device_selector_switches_the_overviews_numbers(bench_ctx, serve, chrome):
    exp = bench_ctx.experiment
    one, two = exp.devices
    url = serve(bench_ctx)
    y = "Generation tokens/s"
    chrome.get(f"{url}/?x={quote('Model file size')}&y={quote(y)}&sel=f16,q4_k_m&smetric={quote(y)}")
    wait_for(chrome, ".device-dropdown")
    first = wait_until(chrome, lambda d: (p := d.execute_script(POINTS)) and len(p) == 4 and p)
    assert first["q2_k"] == pytest.approx(exp.models["q2_k"].metrics[y])
    assert one in chrome.find_element("css selector", ".device-control").text
    pick_option(chrome, ".device-dropdown", two)
    wait_until(chrome, lambda d: query(d).get("device") == two)
    second = wait_until(chrome, lambda d: (p := d.execute_script(POINTS)) and len(p) == 3 and p)
    assert "q2_k" not in second  # not measured with 2 threads: missing, never drawn at zero
    on_two = on_device(exp, two)
    for mid in ("f16", "q8_0", "q4_k_m"):
        assert second[mid] == pytest.approx(on_two.models[mid].metrics[y])
    note = wait_until(chrome, lambda d: next((e.text for e in d.find_elements("css selector", ".sd-note")
                                             if "as measured on" in e.text), None))
    assert two in note
    assert query(chrome)["sel"] == "f16,q4_k_m"  # the rest of the view is kept
    screenshot(chrome, "devices-two-threads")


def test_selection_csv_names_the_device(bench_ctx):
    exp = bench_ctx.experiment
    view = on_device(exp, exp.devices[1])
    from cnc.analysis.comparability import explain_selection

    header, rows = selection_export.records(view, ["f16", "q2_k"], explain_selection(view, ["f16", "q2_k"]))
    assert header[-1] == "benchmark device" and {r[-1] for r in rows} == {exp.devices[1]}
    gen = header.index("Generation tokens/s (tokens/s)")
    assert rows[1][gen] is None and rows[0][gen] > 0
