"""The partial plotly.js bundle (cnc/app/plotly_bundle.py) holds every trace type a figure of ours
uses, and is what the browser gets instead of plotly.py's full bundle. A trace type missing from
the bundle would draw a blank chart, with no error on the server."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
from plotly.basedatatypes import BaseTraceType

from cnc.app import plotly_bundle, transfer
from cnc.app.webapp import build_app
from cnc.experiment.synthetic import make_experiment
from cnc.ui import behaviors_detail, scatter

ROOT = Path(__file__).resolve().parent.parent
# where figures are built: the views and the app (the toolkit, demos and benchmarks draw none)
FIGURE_CODE = [ROOT / "cnc" / d for d in ("ui", "pages", "app")]
TRACE_TYPES = {name.lower() for name in dir(go) if isinstance(getattr(go, name), type)
               and issubclass(getattr(go, name), BaseTraceType) and getattr(go, name) is not BaseTraceType}


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def used_trace_types(source: str) -> set[str]:
    """Trace types a module's figures can hold: `go.<Trace>(...)`, and `"type": <x>` in a dict where
    <x> is a literal or a name whose assigned expressions hold the literal (`kind = "a" if … else "b"`)."""
    tree = ast.parse(source)
    assigned: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, set()).update(_strings(node.value))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "go":
            found.add(node.attr.lower())
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "type":
                    found |= _strings(value) | (assigned.get(value.id, set()) if isinstance(value, ast.Name) else set())
    return found & TRACE_TYPES


def test_the_scan_finds_trace_types_however_written():
    src = 'kind = "scattergl" if big else "scatter"\nfig = {"data": [{"type": kind}, {"type": "bar"}]}\n' \
          'go.Heatmap(z=z)\nstyle = {"type": "category"}\n'
    assert used_trace_types(src) == {"scattergl", "scatter", "bar", "heatmap"}


def test_every_trace_type_the_code_draws_is_bundled():
    used = {}
    for folder in FIGURE_CODE:
        for path in folder.rglob("*.py"):
            for trace in used_trace_types(path.read_text()):
                used.setdefault(trace, []).append(path.relative_to(ROOT).as_posix())
    for path in (ROOT / "cnc" / "assets").glob("*.js"):  # figures patched in the browser
        for trace in set(re.findall(r"""type:\s*['"](\w+)['"]""", path.read_text())) & TRACE_TYPES:
            used.setdefault(trace, []).append(path.relative_to(ROOT).as_posix())
    assert {"scatter", "scattergl", "bar", "heatmap", "image"} <= set(used)  # the scan sees what we know is there
    missing = {t: files for t, files in used.items() if t not in plotly_bundle.TRACES}
    assert not missing, f"add these to TRACES in cnc/app/plotly_bundle.py and run scripts/build_plotly_bundle.sh: {missing}"


def test_the_built_file_registers_exactly_the_listed_traces():
    assert plotly_bundle.bundled_traces() == set(plotly_bundle.TRACES)


def test_figures_as_built_use_bundled_traces():
    figures = [scatter.figure(make_experiment(n)) for n in (10, scatter.WEBGL_FROM)]
    figures += [behaviors_detail.instance_figure(p).to_dict() for p in ([[0, 1], [2, 3]], [[[0, 0, 0], [255, 9, 9]]])]
    kinds = {trace.get("type", "scatter") for fig in figures for trace in fig["data"]}
    assert kinds == {"scatter", "scattergl", "heatmap", "image"}
    assert kinds <= set(plotly_bundle.TRACES)


def test_same_plotly_version_as_plotly_py_ships():
    import plotly

    full = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()[:200]
    version = re.search(r"plotly\.js v([0-9.]+)", full).group(1)
    assert f"plotly.js v{version}, partial bundle" in plotly_bundle.BUNDLE.read_text()[:300]


@pytest.fixture
def client(synthetic_ctx, monkeypatch):
    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.delenv("CNC_AUTH_FILE", raising=False)
    return build_app(synthetic_ctx).server.test_client()


def test_dash_plotly_url_answers_the_partial_bundle(client):
    resp = client.get("/" + transfer.PLOTLY_JS, headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200 and resp.mimetype in ("application/javascript", "text/javascript")
    assert resp.data == plotly_bundle.BUNDLE.read_bytes()
    assert len(resp.data) < 2_000_000  # the full bundle is 4.8 MB
    again = client.get("/" + transfer.PLOTLY_JS, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304
