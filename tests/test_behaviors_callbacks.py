"""Behaviors tab: layout from the URL and callback bodies called directly (synthetic outputs)."""
from __future__ import annotations

import json

import pytest
from dash import html

from cnc.analysis import behavior_view
from cnc.bench.behaviors import SyntheticOutputs
from cnc.ui import behaviors as ui
from cnc.ui.behaviors_grid import BLOCK

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


@pytest.mark.parametrize("request_", [
    {"startRow": 0, "endRow": 100_000}, {"startRow": 0, "endRow": "100000"}, {"startRow": -50, "endRow": 10 ** 30},
    {"startRow": "x", "endRow": None}, {"startRow": 10 ** 30, "endRow": 10 ** 31}, {}])
def test_a_browser_request_gets_at_most_one_block(ctx, request_):
    """Regression: the grid trusted the browser's endRow, so one request could pull every row."""
    state, _ = ui.state_from_query(ctx, {"brows": "instances"}, [], MODELS)
    resp, _ = ui.on_rows(ctx, {**request_, "sortModel": []}, {"models": MODELS, "base": "root0"},
                         ui.state_to_dict(state, None))
    assert len(resp["rowData"]) <= BLOCK and resp["rowCount"] == 500


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


# ----------------------------------------------------------------------------- drill-down to a group

SELECTION = {"models": MODELS, "base": "root0"}
INSTANCES = dict(mode="instances", attr="ink density", metric="error", rel="rel", filt="newerr", min=None, flips=1)


def group_state(ctx, **query_kw):
    state, _ = ui.state_from_query(ctx, query_kw, [], MODELS)
    return ui.state_to_dict(state, None)


def all_rows(ctx, current):
    resp, _ = ui.on_rows(ctx, {"startRow": 0, "endRow": 1000, "sortModel": []}, SELECTION, current)
    return resp


def test_clicking_a_class_row_shows_only_its_instances(ctx):
    current = group_state(ctx, brel="1", bmetric="error", bsort="m3")
    drilled = ui.on_group_click(ctx, {"rowId": "g3", "colId": "row", "value": "class 3"}, SELECTION, current)
    assert drilled["mode"] == "instances" and drilled["group"] == "class:3"
    assert drilled["rel"] and drilled["metric"] == "error" and drilled["sort"] == "m3"  # carried over
    # the click switches the row-mode control; `update` then renders the restricted instance view
    values = dict(INSTANCES, filt="all")
    state, inst, children, status, _ = ui.on_controls(ctx, SELECTION, values, drilled, version=5)
    assert state.group == "class:3" and inst is None
    url = ui.url_params(state, inst)
    assert url["brows"] == "instances" and url["bgroup"] == "class:3" and url["bsort"] == "m3"
    labels = ctx.task_data()["labels"]
    resp = all_rows(ctx, ui.state_to_dict(state, inst))
    assert resp["rowCount"] == int((labels == 3).sum()) > 0
    assert {r["label"] for r in resp["rowData"]} == {"class 3"}
    assert "instances in class 3" in json.dumps([s.to_plotly_json() for s in status], default=str)
    assert ui.chip_text(ctx, state) == "Only class 3"


def test_clicking_a_subgroup_row_keeps_the_instance_filter(ctx):
    current = group_state(ctx, brows="subgroups", bfilt="newerr")
    attrs = ctx.task_data()["attributes"]["ink density"]
    names = sorted(set(attrs))
    drilled = ui.on_group_click(ctx, {"rowId": "g1", "colId": "n"}, SELECTION, current)
    assert drilled["group"] == f"attr:ink density:{names[1]}" and drilled["filt"] == "newerr"
    state, *_ = ui.on_controls(ctx, SELECTION, INSTANCES, drilled, version=6)
    resp = all_rows(ctx, ui.state_to_dict(state, None))
    members = {i for i, v in enumerate(attrs) if v == names[1]}
    assert resp["rowData"] and {r["i"] for r in resp["rowData"]} <= members
    unfiltered = all_rows(ctx, ui.state_to_dict(ui.on_controls(ctx, SELECTION, dict(INSTANCES, filt="all"),
                                                              drilled, version=7)[0], None))
    assert unfiltered["rowCount"] == len(members) > resp["rowCount"]


def test_clicks_that_are_not_a_group_drill_do_nothing(ctx):
    classes = group_state(ctx)
    for click in ({"rowId": "hist", "colId": "row"}, {"rowId": "g2", "colId": "c1"}, {"rowId": "g99", "colId": "row"},
                  None, {"rowId": "gx", "colId": "row"}):
        assert ui.on_group_click(ctx, click, SELECTION, classes) is None, click
    instances = group_state(ctx, brows="instances")
    assert ui.on_group_click(ctx, {"rowId": "g2", "colId": "row"}, SELECTION, instances) is None


def test_removing_the_chip_or_leaving_instance_rows_drops_the_restriction(ctx):
    drilled = group_state(ctx, brows="instances", bgroup="class:2")
    state, *_ = ui.on_controls(ctx, SELECTION, dict(INSTANCES, filt="all"), drilled, version=8, drop_group=True)
    assert state.group is None and "bgroup" not in {k for k, v in ui.url_params(state, None).items() if v}
    assert all_rows(ctx, ui.state_to_dict(state, None))["rowCount"] == 500
    state, *_ = ui.on_controls(ctx, SELECTION, dict(INSTANCES, mode="classes"), drilled, version=9)
    assert state.group is None and ui.chip_text(ctx, state) is None


def test_group_restriction_from_the_url_is_validated(ctx):
    notices = []
    tree = ui.layout(ctx, query(brows="instances", bgroup="attr:ink density:heavy"), notices)
    assert not notices and by_id(tree, ui.STATE).data["group"] == "attr:ink density:heavy"
    assert by_id(tree, ui.CHIP_LABEL).children == "Only ink density = heavy"
    assert by_id(tree, ui.CHIP).style is None
    for bad in (dict(brows="instances", bgroup="class:10"), dict(brows="instances", bgroup="attr:ink density:x"),
                dict(brows="instances", bgroup="<script>"), dict(brows="classes", bgroup="class:1")):
        notices = []
        tree = ui.layout(ctx, query(**bad), notices)
        assert len(notices) == 1 and by_id(tree, ui.STATE).data["group"] is None, bad
        assert by_id(tree, ui.CHIP).style == {"display": "none"}
    tree = ui.layout(ctx, query(brows="exemplars", bgroup="class:1"), [])
    assert by_id(tree, ui.url_part("behaviors")).data["bgroup"] == "class:1"


# ----------------------------------------------------------------------------- threshold: step and direction

def test_threshold_direction_is_read_validated_and_written(ctx):
    notices = []
    tree = ui.layout(ctx, query(bmetric="conf", brel="1", bmin="-0.1", bcmp="le"), notices)
    assert not notices
    state = by_id(tree, ui.STATE).data
    assert state["threshold"] == -0.1 and state["direction"] == "le"
    assert by_id(tree, ui.CONTROL["dir"]).value == "le"
    assert by_id(tree, ui.url_part("behaviors")).data["bcmp"] == "le"
    notices = []
    tree = ui.layout(ctx, query(bmin="0.2", bcmp="gt"), notices)
    assert len(notices) == 1 and "bcmp" in notices[0]
    assert by_id(tree, ui.STATE).data["direction"] == "ge"
    assert by_id(tree, ui.url_part("behaviors")).data["bcmp"] is None  # the default is left out


def test_threshold_direction_from_the_control_filters_drops(ctx):
    values = dict(mode="instances", attr=None, metric="conf", rel="rel", filt="all", min=-0.2, flips=1)
    le, *_ = ui.on_controls(ctx, SELECTION, dict(values, dir="le"), None, version=10)
    ge, *_ = ui.on_controls(ctx, SELECTION, dict(values, dir="ge"), None, version=11)
    bad, *_ = ui.on_controls(ctx, SELECTION, dict(values, dir="<script>"), None, version=12)
    assert le.direction == "le" and ge.direction == "ge" and bad.direction == "ge"
    assert ui.url_params(le, None)["bcmp"] == "le" and ui.url_params(ge, None)["bcmp"] is None
    table = ui.table_for(ctx, MODELS)
    drops = ui.view_for(ctx, table, le)
    assert 0 < drops.row_count < ui.view_for(ctx, table, ge).row_count
    assert (drops.shown[1:, drops.order] <= -0.2).any(axis=0).all()


def test_threshold_steps_follow_the_metric(ctx):
    tree = ui.layout(ctx, query(bmetric="conf"), [])
    assert by_id(tree, ui.STEP).data == 0.01
    assert by_id(tree, ui.STEPPER[True]).title == "Raise the threshold by 0.01"
    kl = by_id(ui.layout(ctx, query(bmetric="kl"), []), ui.STEP).data
    table = ui.table_for(ctx, MODELS)
    state, _ = ui.state_from_query(ctx, {"bmetric": "kl"}, [], MODELS)
    assert kl == ui.step_for(ctx, MODELS, state) == behavior_view.threshold_step(ui.view_for(ctx, table, state))
    assert ui.step_for(ctx, [], state) == 0.01


def test_stepper_clicks_move_on_the_step_grid(ctx):
    assert ui.on_step(0.5, 0.01, True) == 0.51  # the QA case: 0.5 then + used to give 2
    assert ui.on_step(0.5, 0.01, False) == 0.49
    assert ui.on_step(None, 0.01, True) == 0.01  # from "off"
    assert ui.on_step(0.5, None, True) == 0.51 and ui.on_step(0.5, -1, True) == 0.51  # a bad step: 0.01
    assert ui.on_step(float("nan"), 0.1, True) == 0.1


def test_new_errors_are_named_in_rows_and_summary(ctx):
    values = dict(mode="instances", attr=None, metric="moreerr", rel="abs", filt="newerr", min=1e6, flips=1, dir="ge")
    state, _, _, status, _ = ui.on_controls(ctx, SELECTION, values, None, version=13)
    assert "and new errors" in json.dumps([s.to_plotly_json() for s in status], default=str)
    rows = all_rows(ctx, ui.state_to_dict(state, None))
    assert rows["rowCount"] > 0  # base right, a model wrong: +inf passes even a huge threshold
    assert all("new errors" in [r[f"c{j}"] for j in range(1, len(MODELS))] for r in rows["rowData"])
