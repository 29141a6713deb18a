"""Layers tab callback logic, called directly (no browser): URL state, toggles, missing data."""
from __future__ import annotations

import copy
import json

import plotly.utils
import pytest
import torch
from dash import no_update

from cnc.evaluation import inspection
from cnc.experiment.forest import parse_experiment
from cnc.ui import layers as ui
from tests.test_layers import make_base


class TinyCtx:
    """Duck-typed AppContext over hand-built torch models: base, a copy, a pruned one, and one
    model whose summaries are still pending."""

    task_hash = "tiny"

    def __init__(self):
        base = make_base()
        pruned = copy.deepcopy(base)
        with torch.no_grad():
            pruned.features[1].weight.zero_()
            w = pruned.head[1].weight
            w[w.abs() < w.abs().median()] = 0
        x = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))
        pe, ae = {}, {}
        models = {"base": base, "copy": copy.deepcopy(base), "pruned": pruned}
        self._params = {k: inspection.summarize_all(inspection.module_parameters(m), pe) for k, m in models.items()}
        self._acts = {k: inspection.summarize_all(inspection.module_activations(m, x), ae) for k, m in models.items()}
        self.experiment = parse_experiment({
            "metrics": [{"name": "Accuracy", "format": ".1%"}],
            "operations": [{"name": "prune", "parameters": []}],
            "models": [{"id": "base", "tag": "Base"},
                       {"id": "copy", "base": "base", "tag": "Copy"},
                       {"id": "pruned", "base": "base", "tag": "Pruned <b>", "operation": {"name": "prune"}},
                       {"id": "late", "base": "base", "tag": "Late"}],
        })

    def params(self, model_id):
        return self._params.get(model_id)

    def activations(self, model_id):
        return self._acts.get(model_id)

    def status(self, model_id):
        return "ready" if model_id in self._params else "pending"


@pytest.fixture(scope="module")
def ctx():
    return TinyCtx()


def as_json(component) -> dict:
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


def walk(node):
    """Every component dict in a JSON layout."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        if "props" in node:
            yield node
            yield from walk(node["props"].get("children"))
        else:
            for v in node.values():
                yield from walk(v)


def by_class(tree, cls: str) -> list[dict]:
    return [n for n in walk(tree) if cls in (n["props"].get("className") or "").split()]


def texts(node) -> list[str]:
    out = []
    for n in walk(node):
        ch = n["props"].get("children")
        out += [ch] if isinstance(ch, str) else [c for c in ch if isinstance(c, str)] if isinstance(ch, list) else []
    return out


def state(**kw) -> dict:
    return {"mode": "sparsity", "sort": "tree", "scale": "sqrt", "open": None, "sortby": None, **kw}


SEL = {"models": ["base", "copy", "pruned"], "base": "base"}


def test_layout_renders_from_query(ctx):
    notices: list[str] = []
    page = as_json(ui.layout(ctx, {"models": "base,copy,pruned", "tab": "layers", "lmode": "weights",
                                   "lsort": "change"}, notices))
    assert notices == []
    part = next(n for n in walk(page) if n["props"].get("id") == {"cnc": "url-part", "role": "layers"})
    assert part["props"]["data"] == {"lmode": "weights", "lsort": "change"}
    rows = by_class(page, "layers-row")
    assert len(rows) == 4  # flat list of the modules with parameters
    # most changed first: the zeroed batch norm, then the half-pruned linear layer
    names = [by_class(r, "module-name")[0]["props"]["children"] for r in rows]
    assert names[:2] == ["features.1", "head.1"]
    hists = [n for n in walk(page) if n.get("type") == "Canvas"]
    assert hists and all(set(n["props"]["data-h"]) <= set(ui.layers_table.ALPHABET + ",") for n in hists)
    assert "Δ 99.1% · zeroed 50%" in texts(page)  # zeroed weight, kept bias  # the change class in words, not colour alone
    assert "Pruned <b>" in texts(page)  # user text is a text child, never markup


def test_bad_url_values_give_notices(ctx):
    notices: list[str] = []
    ui.layout(ctx, {"models": "base,pruned", "tab": "layers", "lmode": "nope", "lsort": "x",
                    "lopen": "features,ghost"}, notices)
    assert any("lmode" in n for n in notices) and any("lsort" in n for n in notices)
    assert any("unknown module" in n for n in notices)


def test_sparsity_cells_and_aggregates(ctx):
    body, _, part = ui.update(ctx, SEL, "layers", state(), None, None)
    assert part == {}
    body = as_json(body)
    rows = {by_class(r, "module-name")[0]["props"]["title"]: r for r in by_class(body, "layers-row")}
    assert list(rows) == ["features", "features.0", "features.1", "head", "head.1", "head.3"]
    assert [by_class(r, "module-name")[0]["props"]["children"] for r in rows.values()][:3] == ["features", "0", "1"]
    cells = by_class(rows["features.1"], "layers-cell")
    assert [c["props"]["title"].split(":")[0] for c in cells] == ["base", "copy", "pruned"]
    assert "50.0% zero" in cells[2]["props"]["title"]  # 4 gammas of 8 parameters
    assert "Δ 0.0%" in texts(cells[1]) and "0.0% · 0" in texts(cells[1])
    assert "base" in texts(cells[0])


def test_toggle_collapses_and_expands(ctx):
    s = state()
    trigger = {"cnc": "layers", "role": "toggle", "node": "features"}
    body, stored, part = ui.update(ctx, SEL, "layers", s, trigger, 1)
    assert stored == ["head"] and part == {"lopen": "head"}
    assert len(by_class(as_json(body), "layers-row")) == 4  # features, head, head.1, head.3
    body, stored, part = ui.update(ctx, SEL, "layers", {**s, "open": stored}, trigger, 2)
    assert stored == ["features", "head"]
    assert len(by_class(as_json(body), "layers-row")) == 6
    # a freshly rendered button (n_clicks 0) is not a click
    assert ui.update(ctx, SEL, "layers", s, trigger, 0) == (no_update, no_update, no_update)
    body, stored, part = ui.update(ctx, SEL, "layers", s, ui.COLLAPSE, 1)
    assert stored == "-" and part == {"lopen": "-"} and len(by_class(as_json(body), "layers-row")) == 2
    body, stored, part = ui.update(ctx, SEL, "layers", s, ui.EXPAND, 1)
    assert stored == "*" and len(by_class(as_json(body), "layers-row")) == 6


def test_activations_mode_and_base_switch(ctx):
    body, _, part = ui.update(ctx, {"models": ["pruned", "base"], "base": "pruned"}, "layers",
                              state(mode="activations"), ui.MODE, "activations")
    assert part == {"lmode": "activations"}
    body = as_json(body)
    assert "features.2" in [n["props"]["title"] for n in by_class(body, "module-name")]  # ReLU output
    assert [h["props"]["children"] for h in by_class(body, "model-sub")] == ["base", "base"]  # 2nd: the id
    assert by_class(body, "model-label")[0]["props"]["children"] == "Pruned <b>"


def test_missing_summaries_and_metrics_only(ctx, synthetic_ctx):
    body, _, _ = ui.update(ctx, {"models": ["base", "late"], "base": "base"}, "layers", state(), None, None)
    body = as_json(body)
    assert any("Late: pending" in t for t in texts(body))
    assert all(c["props"]["children"] == "no data" for c in by_class(body, "is-missing"))
    body, _, _ = ui.update(synthetic_ctx, {"models": ["root0", "m5"], "base": "root0"}, "layers", state(), None, None)
    assert "metrics only" in " ".join(texts(as_json(body)))
    # another tab is showing: nothing is drawn, the URL still follows the controls
    out = ui.update(ctx, SEL, "behaviors", state(mode="weights"), ui.MODE, "weights")
    assert out[0] is no_update and out[2] == {"lmode": "weights"}


def test_histogram_codes_share_a_row_scale():
    import numpy as np

    mixes = np.zeros((2, 4, len(ui.L.CATEGORIES)))
    mixes[0, 1, 0] = 100
    mixes[1, 1, 3] = 25
    a, b = ui.layers_table.histogram_codes(mixes, "linear")
    top, quarter = ui.layers_table.ALPHABET[60], ui.layers_table.ALPHABET[15]
    assert a == f"0{top}00,,,,"  # the tallest bin: full height, unchanged
    assert b == f",,,0{quarter}00,"  # a quarter of it, all set to zero


def test_sort_by_model_is_validated(ctx):
    notices: list[str] = []
    page = as_json(ui.layout(ctx, {"models": "base,copy,pruned", "tab": "layers", "lsort": "change",
                                   "lsortby": "base"}, notices))
    assert any("lsortby" in n for n in notices)
    part = next(n for n in walk(page) if n["props"].get("id") == {"cnc": "url-part", "role": "layers"})
    assert part["props"]["data"] == {"lsort": "change"}
    dropdown = next(n for n in walk(page) if n["props"].get("id") == ui.SORTBY)
    assert [o["value"] for o in dropdown["props"]["options"]] == ["copy", "pruned"]
    body, _, part = ui.update(ctx, SEL, "layers", state(sort="change", sortby="copy"), ui.SORTBY, "copy")
    assert part == {"lsort": "change", "lsortby": "copy"}


def test_metrics_only_layout_has_the_explanation_and_no_controls(synthetic_ctx):
    for tab in ("layers", "behaviors"):  # opened on either tab: no callback needs to draw it later
        page = as_json(ui.layout(synthetic_ctx, {"models": "root0,m5", "tab": tab, "lmode": "weights"}, []))
        ids = [n["props"].get("id") for n in walk(page)]
        assert ui.MODE not in ids and ui.SORT not in ids and ui.EXPAND not in ids, tab
        assert not by_class(page, "layers-controls")
        assert ui.NO_TASK in texts(page)
        assert {"cnc": "url-part", "role": "layers"} not in ids  # no output of the callback: it never fires


def test_open_list_of_only_unknown_names_falls_back_to_the_default(ctx):
    notices: list[str] = []
    page = as_json(ui.layout(ctx, {"models": "base,copy,pruned", "tab": "layers", "lopen": "ghost,other"}, notices))
    assert any("2 unknown module" in n for n in notices)  # the notice stays
    default = as_json(ui.layout(ctx, {"models": "base,copy,pruned", "tab": "layers"}, []))
    names = lambda p: [n["props"]["title"] for n in by_class(p, "module-name")]  # noqa: E731
    assert names(page) == names(default) == ["features", "features.0", "features.1", "head", "head.1", "head.3"]
    part = next(n for n in walk(page) if n["props"].get("id") == {"cnc": "url-part", "role": "layers"})
    assert "lopen" not in part["props"]["data"]
    # through the callback too: the stored list is cleaned to the default
    body, stored, part = ui.update(ctx, SEL, "layers", state(open=["ghost"]), None, None)
    assert stored is None and "lopen" not in part and len(by_class(as_json(body), "layers-row")) == 6
    # some names known: those are kept (and only those)
    _, stored, part = ui.update(ctx, SEL, "layers", state(open=["ghost", "head"]), None, None)
    assert stored == ["head"] and part == {"lopen": "head"}
