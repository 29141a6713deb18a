"""Compression Overview (`/`): Model Map, Model Scatterplot, Filters and Selection Details.

The page parses and validates its URL state once (`state_from_query`), renders every component
from it, and wires the cross-component callbacks: the shared selection (map, scatterplot,
"select subtree", "select front", "clear"), the enabled-models store the filters write, the
experiment's data in the browser, and the URL part. URL keys: map, color, size, x, y, sel,
f.<metric>.

Redraws happen in the browser: the page ships each model's metric values (legend.VALUES) and
the map's columns once; a colour, size, axis or filter change is encoded there and restyles
the map and the scatterplot without waiting for the server. The server learns every change in
parallel (URL, Selection Details, the selection's filter check) and answers for what only it
knows: a new experiment (a model logged meanwhile: `map_outputs` ships the new data) or a
column mode (positions).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from dash import Input, Output, Patch, State, callback_context, dcc, html, no_update

from cnc.analysis.filters import Filter, enabled_models, filter_params, from_data, parse_filters
from cnc.analysis.map_positions import MODES
from cnc.experiment.forest import Experiment
from cnc.server.context import AppContext
from cnc.server.urlstate import build_query, pick, split_list
from cnc.ui import device_selector, legend, model_map, model_picker, scatter, selection_details
from cnc.ui import filters as filter_ui
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import ids, mapping, one_of
from cnc.ui.notices import notices as notice_box

SELECTION = cid("overview", "selection")
ENABLED = cid("overview", "enabled")
SUBTREE = cid("overview", "subtree")
CLEAR = cid("overview", "clear")
COMPARE = cid("overview", "compare")
SEL_COUNT = cid("overview", "sel-count")
PART = "overview"
MAX_SELECTION = 5000


@dataclass
class OverviewState:
    mode: str
    color: str | None
    size: str | None
    x: str | None
    y: str | None
    filters: list[Filter] = field(default_factory=list)
    selection: list[str] = field(default_factory=list)


def _find(exp: Experiment, pattern: str, higher: bool | None) -> str | None:
    for m in exp.metrics.values():
        if re.search(pattern, m.name, re.IGNORECASE) and (higher is None or m.higher_is_better == higher):
            return m.name
    return None


def default_state(ctx: AppContext) -> OverviewState:
    """Config defaults, else size (or the first lower-is-better metric) vs accuracy (or the first
    higher-is-better metric), among the logged metrics when there are any (derived ones otherwise)."""
    logged, d = ctx.config.experiment, ctx.config.defaults
    exp = logged if logged.metrics else ctx.experiment
    names = list(exp.metrics)
    first = names[0] if names else None
    y = d.y or _find(exp, r"acc", True) or _find(exp, r".", True) or first
    x = d.x or _find(exp, r"size", None) or _find(exp, r".", False) or next((n for n in names if n != y), first)
    return OverviewState(mode="step", color=d.color or y, size=d.size or x, x=x, y=y)


def state_from_query(ctx: AppContext, query: dict[str, str], notices: list[str]) -> OverviewState:
    """Validated state: unknown metrics, ids and malformed values are dropped with a notice."""
    exp, base = ctx.experiment, default_state(ctx)
    metrics = list(exp.metrics)
    state = OverviewState(
        mode=pick(query.get("map"), MODES, base.mode, notices, "map"),
        color=pick(query.get("color"), metrics, base.color, notices, "color"),
        size=pick(query.get("size"), metrics, base.size, notices, "size"),
        x=pick(query.get("x"), metrics, base.x, notices, "x"),
        y=pick(query.get("y"), metrics, base.y, notices, "y"),
        filters=parse_filters(query, exp, notices),
    )
    raw = split_list(query.get("sel"))[:MAX_SELECTION]
    known = [m for m in dict.fromkeys(raw) if m in exp.models]
    if len(known) < len(raw):
        notices.append(f"Ignored {len(raw) - len(known)} unknown or repeated model id(s) in the link's selection.")
    enabled = set(enabled_models(exp, state.filters))
    state.selection = [m for m in known if m in enabled]
    if len(state.selection) < len(known):
        notices.append(f"Unselected {len(known) - len(state.selection)} model(s) that fail the link's filters.")
    return state


def state_params(ctx: AppContext, state: OverviewState) -> dict:
    """The URL params of a state, defaults omitted."""
    base = default_state(ctx)
    params = {key: (getattr(state, key) if getattr(state, key) != getattr(base, key) else None)
              for key in ("color", "size", "x", "y")}
    params["map"] = state.mode if state.mode != base.mode else None
    params["sel"] = state.selection or None
    params.update(filter_params(state.filters))
    return params


def next_selection(exp: Experiment, trigger: str, current: list[str], enabled: list[str] | None,
                   picked: list[str] | None = None) -> list[str]:
    """The selection after a user action; only models passing the filters can be selected.

    trigger: "replace" (map, scatter, front: `picked` becomes the selection), "subtree" (add every
    descendant of the selected models), "clear", or "filter" (drop models that no longer pass).
    """
    ok = set(exp.models) if enabled is None else set(enabled)
    if trigger == "clear":
        return []
    if trigger == "subtree":
        grown = list(current)
        for mid in current:
            grown.extend(exp.subtree(mid) if mid in exp.models else [])
        return [m for m in dict.fromkeys(grown) if m in ok]
    if trigger == "replace":
        picked_ok = [m for m in dict.fromkeys(picked or []) if m in ok]
        keep = [m for m in current if m in set(picked_ok)]  # stable order for unchanged models
        return keep + [m for m in picked_ok if m not in set(keep)]
    return [m for m in current if m in ok]


def compare_href(selection: list[str]) -> str:
    return "/compare" + build_query({"models": selection})


def _selection_bar(selection: list[str]) -> list:
    n = len(selection)
    return [
        html.Span(f"{n} selected" if n else "Click, shift-click or shift-drag to select models",
                  id=SEL_COUNT, className="sel-count"),
        html.Button("Select subtree", id=SUBTREE, className="btn small", disabled=not n,
                    title="Add every model derived from the selected ones"),
        html.Button("Clear selection", id=CLEAR, className="btn small", disabled=not n),
        dcc.Link("Compare selected →", id=COMPARE, href=compare_href(selection),
                 className="btn small primary" + ("" if n >= 2 else " disabled")),
    ]


def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    wait = getattr(ctx, "await_warm", None)  # a server's context: a load-time warm-up may be running
    if wait is not None:
        wait()
    exp = ctx.experiment
    state = state_from_query(ctx, query, notices)
    enabled_list = enabled_models(exp, state.filters)
    enabled = set(enabled_list)
    details_notices: list[str] = []
    details = selection_details.layout(ctx, query, details_notices)
    problems = getattr(ctx, "model_notices", list)()  # failed or suspect models, by name (a server's context)
    return html.Div([
        notice_box(notices + details_notices + problems),
        dcc.Store(id=url_part(PART), data=state_params(ctx, state)),
        dcc.Store(id=SELECTION, data=state.selection),
        dcc.Store(id=ENABLED, data=enabled_list),
        dcc.Store(id=legend.VALUES, data=legend.values_data(exp)),
        html.Div([
            *device_selector.layout(exp),
            model_map.mode_control(state.mode),
            *legend.layout(exp, state.color, state.size),
            html.Div(legend.legend(exp, state.color, state.size), id=legend.LEGEND, className="legends"),
        ], className="controls toolbar"),
        filter_ui.layout(exp, state.filters, len(enabled_list)),
        html.Div(_selection_bar(state.selection) + [model_picker.layout(exp, state.selection, enabled)],
                 className="selection-bar"),
        html.Div([
            html.Section([html.H3("Model Map", className="panel-title"), model_map.layout(exp, state.mode)],
                         className="panel map-panel"),
            html.Section([html.H3("Model Scatterplot", className="panel-title"),
                          scatter.layout(exp, state.x, state.y)],
                         className="panel scatter-panel"),
        ], className="overview-grid"),
        html.Section(details, className="panel details-panel"),
    ], className="overview-page")


def warm(ctx: AppContext) -> None:
    """Build the default page once, unseen (after an experiment loads, in a background thread):
    its per-experiment memos — map layouts, values, picker text — are then warm for the first
    real request."""
    layout(ctx, {}, [])


def map_outputs(exp: Experiment, mode: str, triggers: list, key) -> tuple:
    """(map data, key, values). The browser holds the map data and values of experiment `key`
    and encodes them itself: a mode change ships the new positions (a Patch; the browser re-runs
    the layout when the mode in the data changes), another experiment (a model logged meanwhile)
    ships everything, any other change nothing."""
    mode = one_of(mode, MODES, "step")
    if key != model_map.experiment_key(exp):
        data = model_map.map_data(exp, mode)
        return data, data["key"], legend.values_data(exp)
    if model_map.MODE not in triggers:
        return no_update, no_update, no_update
    patch = Patch()
    for column, values in model_map.map_data(exp, mode, ("layout",)).items():
        patch[column] = values
    return patch, no_update, no_update


def selection_after(exp: Experiment, trigger, prop: str, nodes, box, click, enabled, current, front_ids):
    """The selection callback's logic: which control fired (`trigger` id, `prop`) -> new selection,
    or no_update when nothing changes.

    Scatter `selectedData`: a box or lasso carries its shape and replaces the selection; None is a
    double-click deselect and clears it; a bare `{"points": []}` is what plotly emits when a redraw
    (axis, encoding, filter change) drops its box, and leaves the selection alone."""
    current, front_ids = ids(current, exp.models), ids(front_ids, exp.models)
    box = box if box is None or isinstance(box, dict) else {}
    if trigger == model_map.GRAPH:
        new = next_selection(exp, "replace", current, enabled, model_map.node_models(exp, nodes))
    elif trigger == scatter.GRAPH and prop == "clickData":
        picked = scatter.selected_points(exp, {"points": mapping(click).get("points")})
        if not picked:
            return no_update
        new = next_selection(exp, "replace", current, enabled, picked)
    elif trigger == scatter.GRAPH:
        if box is not None and not scatter.is_user_selection(box):
            return no_update  # a redraw dropped plotly's box: the app's selection stays
        new = next_selection(exp, "replace", current, enabled, scatter.selected_points(exp, box))
    elif trigger == scatter.SELECT_FRONT:
        new = next_selection(exp, "replace", current, enabled, front_ids)
    elif trigger == SUBTREE:
        new = next_selection(exp, "subtree", current, enabled)
    elif trigger == CLEAR:
        new = []
    else:
        new = next_selection(exp, "filter", current, enabled)
    return new if new != current else no_update


def selection_outputs(exp: Experiment, selection: list[str] | None) -> tuple:
    """What a selection change updates on the server: the selection bar (the map and the
    scatterplot outline it in the browser)."""
    count, subtree, clear, compare = _selection_bar(ids(selection, exp.models))
    return count.children, subtree.disabled, clear.disabled, compare.href, compare.className


def url_params(ctx: AppContext, mode, color, size, x, y, filters, selection) -> dict:
    exp = ctx.experiment
    color, size, x, y = (one_of(v, exp.metrics) for v in (color, size, x, y))
    state = OverviewState(mode=one_of(mode, MODES, "step"), color=color, size=size, x=x, y=y,
                          filters=from_data(filters, exp), selection=ids(selection, exp.models))
    return state_params(ctx, state)


def passing(exp: Experiment, filters_data: list | None) -> list[str]:
    """Models passing the filters in the current experiment (a model logged since the page was
    drawn passes or fails like any other, never "filtered out" for being new)."""
    return enabled_models(exp, from_data(filters_data, exp))


def register(app, ctx: AppContext) -> None:
    """Callbacks read `ctx.experiment` when called (one experiment per request), never an
    experiment captured here: a live experiment gains models while pages are open. The ENABLED
    store (written in the browser) only triggers; which models pass is recomputed from the
    filters as drawn."""
    filter_ui.register(app, ctx, ENABLED)
    device_selector.register(app)
    model_map.register(app, SELECTION, filter_ui.DRAWN)
    scatter.register(app, ctx, SELECTION, filter_ui.DRAWN)
    filters_state = State(filter_ui.DRAWN, "data")

    # Any control may reveal a new experiment (a model logged meanwhile): the map's key says.
    # Every output is `allow_duplicate`: dash-renderer holds back a callback whose inputs lie
    # downstream of a pending callback's plain outputs, so plain outputs here would make the
    # browser's redraw (encode, draw, drawn: inputs VALUES) wait for this round trip.
    @app.callback(
        Output(model_map.DATA, "data", allow_duplicate=True), Output(model_map.KEY, "data", allow_duplicate=True),
        Output(legend.VALUES, "data", allow_duplicate=True),
        Input(model_map.MODE, "value"), Input(legend.COLOR, "value"), Input(legend.SIZE, "value"),
        Input(filter_ui.FILTERS, "data"), Input(scatter.X, "value"), Input(scatter.Y, "value"),
        State(model_map.KEY, "data"),
        prevent_initial_call=True,
    )
    def update_map(mode, _color, _size, _filters, _x, _y, key):
        triggers = list(callback_context.triggered_prop_ids.values())
        return map_outputs(ctx.experiment, mode, triggers, key)

    @app.callback(Output(model_map.TIP, "data"), Input(model_map.GRAPH, "mouseoverNodeData"),
                  prevent_initial_call=True)
    def map_tooltip(node):
        return model_map.tooltip(ctx.experiment, node)

    @app.callback(
        Output(legend.LEGEND, "children"),
        Input(legend.COLOR, "value"), Input(legend.SIZE, "value"),
        prevent_initial_call=True,
    )
    def update_legend(color, size):
        return legend.legend(ctx.experiment, color, size)

    @app.callback(
        Output(SELECTION, "data"),
        Input(model_map.GRAPH, "selectedNodeData"), Input(scatter.GRAPH, "selectedData"),
        Input(scatter.GRAPH, "clickData"), Input(scatter.SELECT_FRONT, "n_clicks"),
        Input(SUBTREE, "n_clicks"), Input(CLEAR, "n_clicks"), Input(ENABLED, "data"),
        State(SELECTION, "data"), State(scatter.FRONT_IDS, "data"), filters_state,
        prevent_initial_call=True,
    )
    def update_selection(nodes, box, click, _front, _subtree, _clear, _enabled, current, front_ids, filters):
        exp = ctx.experiment
        prop = callback_context.triggered[0]["prop_id"].rsplit(".", 1)[-1]
        return selection_after(exp, callback_context.triggered_id, prop, nodes, box, click,
                               passing(exp, filters), current, front_ids)

    @app.callback(
        Output(SEL_COUNT, "children"), Output(SUBTREE, "disabled"), Output(CLEAR, "disabled"),
        Output(COMPARE, "href"), Output(COMPARE, "className"),
        Input(SELECTION, "data"),
        prevent_initial_call=True,
    )
    def show_selection(selection):
        return selection_outputs(ctx.experiment, selection)

    @app.callback(
        Output(url_part(PART), "data"),
        Input(model_map.MODE, "value"), Input(legend.COLOR, "value"), Input(legend.SIZE, "value"),
        Input(scatter.X, "value"), Input(scatter.Y, "value"), Input(filter_ui.FILTERS, "data"),
        Input(SELECTION, "data"), State(url_part(PART), "data"),
        prevent_initial_call=True,
    )
    def update_url(mode, color, size, x, y, filters, selection, current):
        params = url_params(ctx, mode, color, size, x, y, filters, selection)
        return params if params != current else no_update

    selection_details.register(app, ctx)
    model_picker.register(app, ctx, SELECTION, ENABLED, filters_state)  # after the selection's own writer
