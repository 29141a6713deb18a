"""Regressions from the Overview QA pass, at the level of pure functions and callback logic."""
from __future__ import annotations

import json

import plotly.utils
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from cnc.analysis.encoding import size_missing, size_scale, sizes
from cnc.analysis.filters import Filter, from_display, parse_filters, range_warning, to_data, to_display
from cnc.experiment.forest import parse_experiment
from cnc.pages import overview
from cnc.server.urlstate import parse_query
from cnc.ui import filters as filter_ui
from cnc.ui import legend, model_map, scatter
from tests.conftest import ROOT

HIST = {"cnc": "filters", "role": "hist", "metric": "Accuracy"}


def test_scatter_redraw_keeps_the_selection(synthetic_ctx):
    """QA 1: a redraw (axis, colour, filter) drops plotly's box and reports an empty selection
    without a shape; that must not wipe the app's selection."""
    exp = synthetic_ctx.experiment
    ids = list(exp.models)
    current = ids[:5]
    echo = {"points": []}
    assert overview.selection_after(exp, scatter.GRAPH, "selectedData", None, echo, None, None, current, []) is no_update
    # a user box that catches nothing does select nothing; a double-click deselect (None) clears
    empty_box = {"points": [], "range": {"x": [0, 1], "y": [0, 1]}}
    assert overview.selection_after(exp, scatter.GRAPH, "selectedData", None, empty_box, None, None, current, []) == []
    assert overview.selection_after(exp, scatter.GRAPH, "selectedData", None, None, None, None, current, []) == []
    lasso = {"points": [{"curveNumber": 1, "customdata": ids[7]}], "lassoPoints": {"x": [0], "y": [0]}}
    assert overview.selection_after(exp, scatter.GRAPH, "selectedData", None, lasso, None, None, current, []) == [ids[7]]
    # a filter then only drops the failing models
    assert overview.selection_after(exp, overview.ENABLED, "data", None, None, None, ids[2:], current, []) == ids[2:5]


def test_scatter_does_not_dim_unselected_points(synthetic_ctx):
    """QA 6: plotly's default dims points outside a box: they must not look filtered out."""
    fig = scatter.figure(synthetic_ctx.experiment, "Size", "Accuracy", "Accuracy", "Size", None, [], [])
    for trace in (fig["data"][0], fig["data"][1], fig["data"][3]):
        assert trace["unselected"]["marker"]["opacity"] == 1
        assert trace["selected"]["marker"]["opacity"] == 1


def _range_outputs(exp, data, trigger, los=None, his=None, selected=None):
    order = [f[0] for f in data]
    return filter_ui.range_outputs(exp, data, trigger, los or {}, his or {}, selected or {}, order)


def test_histogram_redraw_echo_changes_nothing(synthetic_ctx):
    """QA 2: the empty selection a histogram reports when redrawn used to return a bare
    `(no_update,)*4` for wildcard outputs (a server 500); it must change nothing, validly."""
    exp = synthetic_ctx.experiment
    data = to_data([Filter("Accuracy", 0.5, None), Filter("Latency")])
    for sel in (None, {"points": []}):
        with pytest.raises(PreventUpdate):
            _range_outputs(exp, data, HIST, {"Accuracy": 50}, {}, {"Accuracy": sel})


def test_histogram_brush_sets_the_range_and_outputs_match_the_cards(synthetic_ctx):
    exp = synthetic_ctx.experiment
    data = to_data([Filter("Accuracy"), Filter("Latency", None, 5.0)])
    out = _range_outputs(exp, data, HIST, {"Accuracy": None, "Latency": None}, {"Latency": 5},
                         {"Accuracy": {"points": [], "range": {"x": [0.95, 0.5]}}})
    stored, los, his, figs, warns = out
    assert stored == [["Accuracy", 0.5, 0.95], ["Latency", None, 5.0]]
    assert los == [50.0, None] and his == [95.0, 5.0]  # percent shown as percent
    assert len(figs) == len(warns) == 2
    json.dumps(out, cls=plotly.utils.PlotlyJSONEncoder)


def test_percent_bounds_are_typed_and_shown_in_percent(synthetic_ctx):
    """QA 3: Accuracy (format .1%) shows 9.6%..99.4% on its axis, so "90" means 90%."""
    exp = synthetic_ctx.experiment
    acc, lat = exp.metrics["Accuracy"], exp.metrics["Latency"]
    assert to_display(acc, 0.9512) == 95.12 and from_display(acc, 95.12) == 0.9512
    assert to_display(lat, 0.9512) == 0.9512 and from_display(lat, 3.0) == 3.0
    assert to_display(acc, None) is None and from_display(acc, None) is None
    stored, los, his, _, warns = _range_outputs(exp, to_data([Filter("Accuracy")]), {"role": "lo", "metric": "Accuracy"},
                                                {"Accuracy": 90}, {"Accuracy": None})
    assert stored == [["Accuracy", 0.9, None]] and los == [90.0]
    # the card renders stored bounds in percent, placeholders too
    card = json.dumps(filter_ui.card(exp, Filter("Accuracy", 0.9, None)).to_plotly_json(),
                      cls=plotly.utils.PlotlyJSONEncoder)
    assert '"value": 90.0' in card and '"%"' in card and '"value": 0.9' not in card


def test_bounds_outside_the_data_get_a_notice(synthetic_ctx):
    exp = synthetic_ctx.experiment
    assert range_warning(exp, Filter("Accuracy", 0.5, None)) is None
    assert "above" in range_warning(exp, Filter("Accuracy", 90.0, None))  # a fraction typed as percent
    assert "below" in range_warning(exp, Filter("Latency", None, 0.0))
    *_, warns = _range_outputs(exp, to_data([Filter("Accuracy")]), {"role": "lo", "metric": "Accuracy"},
                               {"Accuracy": 99999}, {})
    assert warns[0] and "%" in warns[0]


def test_reversed_link_bounds_are_swapped():
    """QA 8: typing bounds reversed swaps them; a link does the same."""
    exp = parse_experiment({"metrics": [{"name": "Latency", "higher_is_better": False}],
                            "models": [{"id": "a", "metrics": {"Latency": 3.0}}]})
    notices: list[str] = []
    assert parse_filters(parse_query("?f.Latency=5:1"), exp, notices) == [Filter("Latency", 1.0, 5.0)]
    assert notices == []


def _exp_missing_size():
    return parse_experiment({
        "metrics": [{"name": "acc"}, {"name": "size", "higher_is_better": False}],
        "models": [{"id": "a", "metrics": {"acc": 0.5, "size": 1.0}},
                   {"id": "b", "base": "a", "operation": "prune", "metrics": {"acc": 0.6, "size": 9.0}},
                   {"id": "c", "base": "a", "operation": "prune", "metrics": {"acc": 0.7, "size": None}}],
    })


def test_missing_size_is_not_drawn_as_smallest():
    """QA 4: a missing size value gets the middle size, a hollow style, and a legend entry."""
    exp = _exp_missing_size()
    assert size_missing(exp, "size") == [False, False, True]
    assert size_missing(exp, "acc") == [False, False, False]
    px = sizes(exp, "size", 10, 30)
    assert px[2] == size_scale(exp, "size", 10, 30).missing_px == 20 and px[2] > min(px[:2])

    fig = scatter.figure(exp, "acc", "acc", "acc", "size", None, [], [])
    marker = fig["data"][1]["marker"]
    assert marker["symbol"] == ["circle", "circle", "circle-open"]
    assert marker["line"]["width"][2] > marker["line"]["width"][0]
    assert "symbol" not in scatter.figure(exp, "acc", "acc", "acc", "acc", None, [], [])["data"][1]["marker"]

    assert model_map.map_data(exp, "step", "acc", "size", None)["m"] == [2]  # drawn hollow
    assert any(rule["selector"] == "node[?m]" for rule in model_map.STYLESHEET)

    size_legend = json.dumps(legend.legend(exp, "acc", "size")[1].to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)
    assert "missing" in size_legend
    assert "missing" not in json.dumps(legend.legend(exp, "acc", "acc")[1].to_plotly_json(),
                                       cls=plotly.utils.PlotlyJSONEncoder)


def test_missing_colour_is_grey_in_map_and_scatter():
    exp = parse_experiment({"metrics": ["acc", "x"], "models": [
        {"id": "a", "metrics": {"acc": 0.5, "x": 1}}, {"id": "b", "metrics": {"acc": None, "x": 2}},
        {"id": "c", "metrics": {"acc": 0.9, "x": 3}}]})
    from cnc.analysis.encoding import MISSING_COLOR
    c = model_map.map_data(exp, "step", "acc", "x", None)["c"]
    assert c[1] == MISSING_COLOR != c[0]
    fig = scatter.figure(exp, "x", "x", "acc", "x", None, [], [])
    assert fig["data"][1]["marker"]["color"][1] == MISSING_COLOR


def test_map_layout_changes_with_the_mode(synthetic_ctx):
    """QA 5: the layout object must differ per mode, or cytoscape does not re-run (and re-fit) it."""
    exp = synthetic_ctx.experiment
    step, op = model_map.graph_layout(exp, "step"), model_map.graph_layout(exp, "op")
    assert step != op and step["fit"] and op["fit"]
    view_js = (ROOT / "cnc" / "assets" / "model_map.js").read_text()
    assert "_cncView" in view_js and "cy.fit" in view_js


def test_a_range_change_sends_the_passing_models_itself(synthetic_ctx):
    """The range callback ships the enabled models (one round trip before the map and scatter
    redraw); the store's own callback then finds them current and sends nothing."""
    exp = synthetic_ctx.experiment
    data = to_data([Filter("Accuracy", 0.8, None)])
    enabled, count = filter_ui.enabled_outputs(exp, data, None)
    assert enabled == [m for m, model in exp.models.items() if (model.metrics.get("Accuracy") or 0) >= 0.8]
    assert count == filter_ui.count_text(len(enabled), len(exp.models))
    assert filter_ui.enabled_outputs(exp, data, enabled)[0] is no_update
