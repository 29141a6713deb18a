"""Overview callback logic called directly: URL state (round trips, hostile input), selection,
map elements, scatter figure."""
from __future__ import annotations

import json

import plotly.utils
from dash import no_update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnc.analysis.filters import Filter, enabled_models, to_data
from cnc.analysis.recipe_text import model_name, recipe_text
from cnc.pages import overview
from cnc.pages.overview import OverviewState, next_selection, state_from_query, state_params
from cnc.server.urlstate import build_query, parse_query
from cnc.ui import filters as filter_ui
from cnc.ui import legend, model_map, scatter


def roundtrip(ctx, state: OverviewState) -> tuple[OverviewState, list[str]]:
    notices: list[str] = []
    return state_from_query(ctx, parse_query(build_query(state_params(ctx, state))), notices), notices


def test_defaults_are_size_vs_accuracy_and_omitted_from_url(synthetic_ctx):
    state = state_from_query(synthetic_ctx, {}, [])
    assert (state.x, state.y, state.color, state.size, state.mode) == ("Size", "Accuracy", "Accuracy", "Size", "step")
    assert build_query(state_params(synthetic_ctx, state)) == ""


def test_full_state_round_trips(synthetic_ctx):
    exp = synthetic_ctx.experiment
    filters = [Filter("Accuracy", 0.8, None), Filter("Latency", None, 8.0)]
    enabled = enabled_models(exp, filters)
    state = OverviewState(mode="op", color="Latency", size="Loss", x="Latency", y="Loss",
                          filters=filters, selection=enabled[:5])
    back, notices = roundtrip(synthetic_ctx, state)
    assert back == state and notices == []


def test_hostile_query_is_dropped_with_notices(synthetic_ctx):
    notices: list[str] = []
    query = parse_query("?map=radial&color=%3Cimg%20src=x%3E&x=&y=Nope&size=" + "Z" * 3000
                        + "&sel=root0,ghost,root0,,m5&f.Accuracy=x:y&f.Nope=1:2&view=junk&zzz=1")
    state = state_from_query(synthetic_ctx, query, notices)
    default = state_from_query(synthetic_ctx, {}, [])
    assert (state.mode, state.color, state.size, state.y) == (default.mode, default.color, default.size, default.y)
    assert state.selection == ["root0", "m5"] and state.filters == []
    text = " ".join(notices)
    for word in ("map", "color", "Nope", "unknown or repeated", "Accuracy"):
        assert word in text
    assert all(len(n) < 300 for n in notices)


def test_selection_failing_link_filters_is_dropped(synthetic_ctx):
    exp = synthetic_ctx.experiment
    fail = next(m for m, model in exp.models.items() if model.metrics["Accuracy"] < 0.8)
    notices: list[str] = []
    state = state_from_query(synthetic_ctx, {"f.Accuracy": "0.8:", "sel": f"root0,{fail}"}, notices)
    assert fail not in state.selection and any("fail" in n for n in notices)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["map", "color", "size", "x", "y", "sel", "f.Accuracy", "f.x", "view"]),
                       st.text(max_size=40), max_size=9))
def test_any_query_gives_a_valid_state(synthetic_ctx, query):
    exp = synthetic_ctx.experiment
    state = state_from_query(synthetic_ctx, query, [])
    assert state.mode in ("step", "op")
    assert all(v in exp.metrics for v in (state.color, state.size, state.x, state.y))
    assert set(state.selection) <= set(enabled_models(exp, state.filters))
    again, notices = roundtrip(synthetic_ctx, state)
    assert again == state and notices == []


def test_next_selection(synthetic_ctx):
    exp = synthetic_ctx.experiment
    ids = list(exp.models)
    enabled = ids[:30]
    assert next_selection(exp, "replace", [], enabled, [ids[40], ids[3], ids[3], "ghost"]) == [ids[3]]
    assert next_selection(exp, "replace", [ids[2], ids[1]], None, [ids[1], ids[5], ids[2]]) == [ids[2], ids[1], ids[5]]
    sub = next_selection(exp, "subtree", ["root0"], None)
    assert set(sub) == set(exp.subtree("root0")) and sub[0] == "root0"
    assert set(next_selection(exp, "subtree", ["root0"], enabled)) <= set(enabled)
    assert next_selection(exp, "clear", ids[:3], None) == []
    assert next_selection(exp, "filter", [ids[1], ids[45]], enabled) == [ids[1]]


def test_selection_from_each_control(synthetic_ctx):
    exp = synthetic_ctx.experiment
    ids = list(exp.models)
    enabled = ids[:30]
    # node ids are hashes of model ids; positions ("n3"), headers, junk and non-dicts are ignored
    nodes = [{"id": model_map.node_id(ids[3])}, {"id": model_map.node_id(ids[40])}, {"id": "h1"}, {"id": "n3"},
             {"id": ["n"]}, {}, "junk", 7]
    assert overview.selection_after(exp, model_map.GRAPH, "selectedNodeData", nodes, None, None, enabled, [], []) == [ids[3]]
    box = {"points": [{"curveNumber": 1, "customdata": ids[4]}, {"curveNumber": 0, "customdata": ids[50]},
                      {"curveNumber": 1, "customdata": "ghost"}, {"curveNumber": 3}]}
    assert overview.selection_after(exp, scatter.GRAPH, "selectedData", None, box, None, enabled, [], []) == [ids[4]]
    assert overview.selection_after(exp, scatter.GRAPH, "selectedData", None, None, None, enabled, [ids[1]], []) == []
    click = {"points": [{"curveNumber": 1, "customdata": ids[6]}]}
    assert overview.selection_after(exp, scatter.GRAPH, "clickData", None, None, click, enabled, [ids[1]], []) == [ids[6]]
    assert overview.selection_after(exp, scatter.GRAPH, "clickData", None, None, {"points": [{"curveNumber": 0}]},
                                    enabled, [ids[1]], []) is no_update
    assert overview.selection_after(exp, overview.CLEAR, "n_clicks", None, None, None, enabled, [ids[1]], []) == []
    assert overview.selection_after(exp, scatter.SELECT_FRONT, "n_clicks", None, None, None, enabled, [],
                                    [ids[2], ids[45]]) == [ids[2]]
    assert overview.selection_after(exp, overview.ENABLED, "data", None, None, None, enabled, [ids[1]], []) is no_update


def test_map_data_ships_the_experiment_once_and_the_browser_encodes(synthetic_ctx):
    exp = synthetic_ctx.experiment
    ids = list(exp.models)
    data, key, values = overview.map_outputs(exp, "op", [model_map.MODE], None)
    assert key == data["key"] == model_map.experiment_key(exp)
    assert data["id"] == [model_map.node_id(m) for m in ids] and len(data["x"]) == len(ids)
    assert sum(b >= 0 for b in data["base"]) == len(ids) - len(exp.roots)
    assert data["mode"] == "op" and not {"c", "s", "m", "off"} & set(data)  # encoded in the browser
    # user text never reaches ids or selectors
    assert all(set(n[1:]) <= set("0123456789abcdef") for n in data["id"])
    assert values["ids"] == ids and values["n"] == len(ids)
    assert values["v"]["Accuracy"] == [m.metrics.get("Accuracy") for m in exp.models.values()]
    assert values["metrics"]["Accuracy"]["hib"] is True and len(values["palette"]) == 65
    # the browser holds this experiment: a colour or filter change sends nothing, a mode positions
    assert overview.map_outputs(exp, "op", [legend.COLOR], key) == (no_update,) * 3
    assert overview.map_outputs(exp, "op", [filter_ui.FILTERS], key) == (no_update,) * 3
    patch, new_key, new_values = overview.map_outputs(exp, "step", [model_map.MODE], key)
    ops = patch.to_plotly_json()["operations"]
    assert {op["location"][0] for op in ops} == {"x", "y", "heads", "mode"}  # the browser re-fits on a new mode
    assert new_key is no_update and new_values is no_update
    json.dumps(values, cls=plotly.utils.PlotlyJSONEncoder, allow_nan=False)  # missing values are null


def test_tooltips_are_fetched_per_model(synthetic_ctx):
    exp = synthetic_ctx.experiment
    mid = list(exp.models)[7]
    tip = model_map.tooltip(exp, {"id": "whatever", "mid": mid})
    assert tip["id"] == model_map.node_id(mid) and mid in tip["tip"]
    assert model_map.tooltip(exp, {"mid": "nope"}) == {"id": None, "tip": None}
    assert model_map.tooltip(exp, None)["tip"] is None
    show, bbox, lines = scatter.hover_card(exp, {"points": [{"curveNumber": 1, "customdata": mid,
                                                             "bbox": {"x0": 1, "x1": 2, "y0": 3, "y1": 4}}]})
    assert show and bbox["x0"] == 1 and lines[0].children.startswith(exp.models[mid].tag or mid)
    assert scatter.hover_card(exp, None)[0] is False
    assert scatter.hover_card(exp, {"points": [{"curveNumber": 3, "customdata": mid}]})[0] is False


def test_scatter_figure_is_drawn_in_the_browser(synthetic_ctx):
    from cnc.experiment.synthetic import make_experiment

    fig = scatter.figure(synthetic_ctx.experiment)
    assert [t["name"] for t in fig["data"]] == ["filtered out", "models", "Pareto front"]
    assert all(t["x"] == [] for t in fig["data"]) and fig["layout"]["shapes"] == []
    assert fig["data"][1]["type"] == "scatter"
    assert scatter.figure(make_experiment(scatter.WEBGL_FROM + 10))["data"][1]["type"] == "scattergl"
    front = scatter.front_list(synthetic_ctx.experiment, ["root0", "m5"])
    assert front[0].children == "Pareto front (2):"
    exp = synthetic_ctx.experiment
    # each chip's tooltip: the model's name, its id, the full recipe its label may shorten
    assert [c.title.split("\n") for c in front[1:]] == [
        [t for t in dict.fromkeys((model_name(exp.models[m]), m, recipe_text(exp, m))) if t] for m in ("root0", "m5")]
    assert front[2].title.split("\n")[-1] == recipe_text(exp, "m5") != ""


def test_hover_text_is_escaped():
    from cnc.experiment.forest import parse_experiment

    exp = parse_experiment({"metrics": ["a", "b"], "models": [
        {"id": "<b>x</b>", "tag": "<img src=x onerror=alert(1)>", "metrics": {"a": 1, "b": 2}}]})
    fig = scatter.figure(exp)
    assert fig["data"][1]["hoverinfo"] == "none"  # no text in the figure: fetched per hovered model
    lines = scatter.hover_card(exp, {"points": [{"curveNumber": 1, "customdata": "<b>x</b>"}]})[2]
    assert lines[0].children.startswith("<img")  # a text child: rendered as text, never as HTML
    assert model_map.tooltip(exp, {"mid": "<b>x</b>"})["tip"].startswith("<img")  # plain text, shown as text


def test_selection_outputs_update_the_bar(synthetic_ctx):
    exp = synthetic_ctx.experiment
    count, subtree_disabled, clear_disabled, href, cls = overview.selection_outputs(exp, ["root0", "m5"])
    assert count == "2 selected" and not subtree_disabled and not clear_disabled
    assert href == "/compare?models=root0,m5" and "disabled" not in cls
    assert "disabled" in overview.selection_outputs(exp, ["root0"])[4]


def test_url_params_from_controls(synthetic_ctx):
    params = overview.url_params(synthetic_ctx, "op", "Accuracy", "Size", "Size", "Accuracy",
                                 to_data([Filter("Latency", None, 5.0)]), ["m3"])
    assert build_query(params) == "?f.Latency=:5&map=op&sel=m3"


def test_page_layout_renders_for_hostile_queries(synthetic_ctx):
    for search in ("", "?sel=" + ",".join(f"m{i}" for i in range(60)), "?f.Accuracy=0.99:1&sel=root0",
                   "?x=%00&y=%ff&map=op&color=Loss&f.Loss=:"):
        notices: list[str] = []
        page = overview.layout(synthetic_ctx, parse_query(search), notices)
        assert page is not None
        json.dumps(page.to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)
