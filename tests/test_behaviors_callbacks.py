"""Behaviors tab: layout from the URL and callback bodies called directly (synthetic outputs)."""
from __future__ import annotations

import json

import pytest
from dash import html

from cnc.bench.behaviors import SyntheticOutputs
from cnc.ui import behaviors as ui

MODELS = ["root0", "m2", "m3"]


@pytest.fixture
def ctx(synthetic_ctx):
    SyntheticOutputs(MODELS, n=500, classes=10).attach(synthetic_ctx)
    return synthetic_ctx


def find(component, predicate):
    """All components in a tree matching predicate."""
    found = []
    stack = [component]
    while stack:
        c = stack.pop()
        if predicate(c):
            found.append(c)
        children = getattr(c, "children", None)
        if isinstance(children, (list, tuple)):
            stack.extend(children)
        elif children is not None and hasattr(children, "to_plotly_json"):
            stack.append(children)
    return found


def by_id(tree, id_):
    hits = find(tree, lambda c: getattr(c, "id", None) == id_)
    return hits[0] if hits else None


def query(**kw):
    return {"models": ",".join(MODELS), **kw}


def test_metrics_only_experiment_explains_instead_of_table(synthetic_ctx):
    tree = ui.layout(synthetic_ctx, {"models": "root0,m2"}, [])
    assert "no evaluation task" in json.dumps(tree.to_plotly_json(), default=str)
    assert by_id(tree, ui.STATE) is None


def test_layout_reads_and_validates_url_state(ctx):
    notices = []
    tree = ui.layout(ctx, query(brows="subgroups", bmetric="kl", brel="1", bsort="m3", bdir="asc",
                                bfilt="bogus", bflips="x"), notices)
    state = by_id(tree, ui.STATE).data
    assert state["mode"] == "subgroups" and state["metric"] == "kl" and state["rel"] is True
    assert state["sort"] == "m3" and state["desc"] is False and state["filt"] == "all"
    assert len(notices) == 2  # bfilt and bflips
    url = by_id(tree, ui.url_part("behaviors")).data
    assert url["brows"] == "subgroups" and url["bsort"] == "m3" and url["bdir"] == "asc"
    grid = find(tree, lambda c: type(c).__name__ == "AgGrid")[0]
    cols = {c["colId"]: c for c in grid.columnDefs}
    assert cols["c2"]["sort"] == "asc" and cols["row"]["headerName"] == "ink density"
    assert grid.dashGridOptions["pinnedTopRowData"][0]["c1_bg"].startswith("url(data:image/svg+xml;base64,")


def test_unknown_metric_and_sort_are_dropped(ctx):
    notices = []
    tree = ui.layout(ctx, query(bmetric="nope", bsort="ghost"), notices)
    state = by_id(tree, ui.STATE).data
    assert state["metric"] == "error" and state["sort"] is None and len(notices) == 2


def test_rows_are_paged_and_sort_goes_to_the_url(ctx):
    state, _ = ui.state_from_query(ctx, {"brows": "instances"}, [], MODELS)
    current = ui.state_to_dict(state, None)
    selection = {"models": MODELS, "base": "root0"}
    resp, changed = ui.on_rows(ctx, {"startRow": 100, "endRow": 200, "sortModel": []}, selection, current)
    assert len(resp["rowData"]) == 100 and resp["rowCount"] == 500 and changed is None
    assert resp["rowData"][0]["id"] == "i100"
    resp, changed = ui.on_rows(ctx, {"startRow": 0, "endRow": 100,
                                     "sortModel": [{"colId": "flips", "sort": "desc"}]}, selection, current)
    flips = [r["flips"] for r in resp["rowData"]]
    assert flips == sorted(flips, reverse=True) and changed["sort"] == "flips"


def test_controls_switch_rows_and_reset_sort_that_no_longer_applies(ctx):
    selection = {"models": MODELS, "base": "root0"}
    current = ui.state_to_dict(ui.state_from_query(ctx, {"brows": "instances", "bsort": "flips"}, [], MODELS)[0], 4)
    values = dict(mode="classes", attr=None, metric="flip", rel="rel", filt="all", min=None, flips=1)
    state, inst, children, status, detail = ui.on_controls(ctx, selection, values, current, version=3)
    assert state.mode == "classes" and state.sort is None and inst is None and state.rel
    assert children[0].id == ui.cid("behaviors", "grid", v=3)


def test_missing_outputs_show_a_notice(ctx):
    selection = {"models": ["root0", "m2", "m5"], "base": "root0"}
    values = dict(mode="classes", attr=None, metric="error", rel="abs", filt="all", min=None, flips=1)
    *_, status, _ = ui.on_controls(ctx, selection, values, None, version=1)
    text = json.dumps([s.to_plotly_json() for s in status], default=str)
    assert "m5 is left out" in text


def test_instance_detail_panel(ctx):
    panel = ui.detail_panel(ctx, MODELS, 7)
    text = json.dumps([c.to_plotly_json() for c in panel], default=str)
    assert "Instance #7" in text and "True label" in text
    assert isinstance(panel[0], html.H4)


def test_text_instances_are_rendered_as_text(ctx):
    ctx.instance = lambda i: {"kind": "text", "text": "<b>not html</b>"}
    panel = ui.detail_panel(ctx, MODELS, 3)
    quote = [c for c in panel if isinstance(c, html.Blockquote)][0]
    assert quote.children == "<b>not html</b>"  # a string child: Dash renders it as text


def test_sort_key_of_another_row_mode_is_dropped(ctx):
    notices = []
    state, _ = ui.state_from_query(ctx, {"brows": "classes", "bsort": "flips"}, notices, MODELS)
    assert state.sort is None and notices
