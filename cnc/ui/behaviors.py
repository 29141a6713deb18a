"""Behaviors tab of the Performance Comparison page: "which inputs did compression break?".

Rows are classes, subgroups, instances or compression-identified exemplars; one column per
selected model (base first) shows a comparison metric with an inline bar, and a pinned header row
shows each model's distribution. The table is an AG Grid with the infinite row model: the server
filters, sorts and pages (cnc.analysis.behaviors); the browser only ever holds one block of rows.
Per-(selection, base) arrays and per-view orderings are memoized (bounded) so paging, sorting and
filtering stay cheap. Clicking a class or subgroup row drills down to its instances (a removable
"Only class 8 ×" chip). The row threshold keeps rows where any compared model's value is ≥ or ≤ a
number; its − / + buttons step by an amount that fits the metric (0.01 for rates and probabilities,
adaptive otherwise). URL keys: brows battr bmetric brel bfilt bmin bcmp bflips bsort bdir bgroup bi.
"""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update

from cnc.analysis import behaviors as B
from cnc.analysis.parsing import parse_index
from cnc.server.context import AppContext
from cnc.ui import behaviors_export
from cnc.ui.behaviors_data import _TABLES, _VIEWS, table_for, view_for  # noqa: F401 (benchmarks reset the memos)
from cnc.ui.behaviors_detail import detail_panel
from cnc.ui.behaviors_grid import DRILL_COLUMNS, block_range, grid, grid_id, rows_for, sort_from_model
from cnc.ui.behaviors_state import (
    checked,
    flips_value,
    scalar_names,
    sort_keys,
    state_from_dict,
    state_from_query,
    state_to_dict,
    url_params,
)
from cnc.ui.compare_selection import SELECTION, ordered, selected_models, selection_from_query
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import items, mapping, number, one_of, text

NAME = "behaviors"
STATE = cid(NAME, "state")
STATUS = cid(NAME, "status")
TABLE = cid(NAME, "table")
DETAIL = cid(NAME, "detail")
BODY = cid(NAME, "body")
CONTROL = {k: cid(NAME, k) for k in ("mode", "attr", "metric", "rel", "filt", "min", "flips", "dir")}
STEP = cid(NAME, "step")  # the threshold's current step (a store)
STEPPER = {up: cid(NAME, "stepper", to="up" if up else "down") for up in (False, True)}
WRAP = {k: cid(NAME, "wrap", control=k) for k in ("attr", "filt", "flips")}
CHIP = cid(NAME, "chip")
CHIP_LABEL = cid(NAME, "chip", part="label")
UNCHIP = cid(NAME, "unchip")
MODE_LABELS = {"classes": "Classes", "subgroups": "Subgroups", "instances": "Instances",
               "exemplars": "Exemplars (changed by many models)"}
NO_TASK = ("This experiment has no evaluation task, only logged metrics, so there are no stored "
           "predictions to compare per class, subgroup or instance. Add a `task` (model loader and "
           "evaluation data) or per-model `outputs` to the config to use this tab.")


# ----------------------------------------------------------------------------- layout

def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    task = ctx.task_data()
    if task is None:
        return html.Div([html.H4("No per-instance data"), html.P(NO_TASK)], className="bh-empty")
    models, base, _ = selection_from_query(ctx, query, [])
    models = ordered(models, base)
    state, inst = state_from_query(ctx, query, notices, models)
    if state.mode not in B.INSTANCE_MODES:
        inst = None
    specs = B.metric_specs(scalar_names(ctx, models))
    attrs = list(task.get("attributes", {}))
    grid, status = render_table(ctx, models, state, version=0)
    step = step_for(ctx, models, state)
    return html.Div([
        dcc.Store(id=url_part(NAME), data=url_params(state, inst)),
        dcc.Store(id=STATE, data=state_to_dict(state, inst)),
        dcc.Store(id=STEP, data=step),
        html.Div([
            _control("Rows", dcc.Dropdown(id=CONTROL["mode"], clearable=False, value=state.mode, options=[
                {"label": MODE_LABELS[m], "value": m, "disabled": m == "subgroups" and not attrs}
                for m in B.ROW_MODES])),
            _control("Attribute", dcc.Dropdown(id=CONTROL["attr"], clearable=False, value=state.attribute,
                                               options=[{"label": a, "value": a} for a in attrs]),
                     WRAP["attr"], visible=state.mode == "subgroups"),
            _control("Metric", dcc.Dropdown(id=CONTROL["metric"], clearable=False, value=state.metric, options=[
                {"label": s.label, "value": s.id, "title": s.help} for s in specs.values()]), wide=True),
            _control("Values", dcc.RadioItems(id=CONTROL["rel"], value="rel" if state.rel else "abs",
                                              options=[{"label": "Absolute", "value": "abs"},
                                                       {"label": "Relative to base", "value": "rel"}],
                                              inline=True, className="bh-radio")),
            _control("Instances", dcc.Dropdown(id=CONTROL["filt"], clearable=False, value=state.filt, options=[
                {"label": label, "value": k} for k, label in B.FILTER_LABELS.items()]),
                WRAP["filt"], visible=state.mode in B.INSTANCE_MODES, wide=True),
            _control("Changed in ≥ models", dcc.Input(id=CONTROL["flips"], type="number", min=1, step=1,
                                                      value=state.min_flips, debounce=True),
                     WRAP["flips"], visible=state.mode == "exemplars"),
            threshold_control(state, step),
        ], className="bh-controls"),
        group_chip(ctx, state),
        html.Div([html.Div(status, id=STATUS, className="bh-status"),
                  html.Span("▼ worse than the base · ▲ better (also the bar colour)", className="bh-key"),
                  behaviors_export.button()], className="bh-status-row"),
        html.Div([
            dcc.Loading(html.Div(grid, id=TABLE, className="bh-table"), type="dot", delay_show=300,
                        parent_className="bh-table-loading", overlay_style={"visibility": "visible", "opacity": 0.6}),
            html.Div(detail_panel(ctx, models, inst), id=DETAIL, className="bh-detail"),
        ], id=BODY, className=body_class(state)),
    ], className="bh-tab")


def threshold_control(state: B.ViewState, step: float) -> html.Div:
    """"Any model [≥|≤] [− value +]": own − / + buttons (Dash's step by 1 and its `step` prop
    would mark typed values off the grid invalid), so the input accepts any number."""
    return html.Div([
        html.Span("Any model", className="bh-label"),
        html.Div([
            dcc.Dropdown(id=CONTROL["dir"], value=state.direction, clearable=False, searchable=False,
                         options=[{"label": "≥", "value": "ge"}, {"label": "≤", "value": "le"}],
                         className="bh-dir"),
            html.Div([
                dcc.Input(id=CONTROL["min"], type="number", value=state.threshold, debounce=True,
                          placeholder="off", className="bh-threshold"),
                html.Button("−", id=STEPPER[False], n_clicks=0, className="bh-step bh-step-down",
                            title=step_title(step, False), **{"aria-label": "Lower the threshold"}),
                html.Button("+", id=STEPPER[True], n_clicks=0, className="bh-step bh-step-up",
                            title=step_title(step, True), **{"aria-label": "Raise the threshold"}),
            ], className="bh-stepper"),
        ], className="bh-threshold-row"),
    ], className="bh-control", role="group", **{"aria-label": "Row threshold"},
        title="Keep rows where at least one compared model's shown value is ≥ (or ≤) this, in raw units: "
              "0.05 means 5% or 5 pp. Choose ≤ to find drops (confidence, ratios). Empty: off.")


def step_title(step: float, up: bool) -> str:
    return f"{'Raise' if up else 'Lower'} the threshold by {step:g}"


def step_for(ctx: AppContext, models: list[str], state: B.ViewState) -> float:
    """The threshold step for the shown view (0.01 without data)."""
    table = table_for(ctx, models) if models else None
    return B.threshold_step(view_for(ctx, table, state)) if table is not None else 0.01


def group_chip(ctx: AppContext, state: B.ViewState) -> html.Div:
    """The "Only class 8 ×" chip (always in the layout, hidden without a restriction)."""
    label = chip_text(ctx, state)
    return html.Div([
        html.Span(label or "", id=CHIP_LABEL, className="bh-chip-label"),
        html.Button("×", id=UNCHIP, n_clicks=0, className="bh-chip-x", title="Show the instances of all groups",
                    **{"aria-label": "Remove the restriction"}),
    ], id=CHIP, className="bh-chip", style=None if label else {"display": "none"})


def chip_text(ctx: AppContext, state: B.ViewState) -> str | None:
    """"Only class 8" / "Only ink density = high" (plain text: attribute values are user data)."""
    if not state.group or state.mode not in B.INSTANCE_MODES:
        return None
    task = ctx.task_data() or {}
    group = B.Group.from_key(state.group, task.get("attributes", {}), task.get("class_names", []))
    return f"Only {group.label(task.get('class_names', []))}" if group else None


def body_class(state: B.ViewState) -> str:
    """The instance detail panel only shows next to instance rows."""
    return "bh-body bh-has-detail" if state.mode in B.INSTANCE_MODES else "bh-body"


def _control(label: str, control, wrap_id: dict | None = None, visible: bool = True, wide: bool = False,
             title: str | None = None):
    kwargs = {"id": wrap_id} if wrap_id else {}
    if title:
        kwargs["title"] = title
    return html.Label([html.Span(label, className="bh-label"), control],
                      className="bh-control" + (" bh-wide" if wide else ""),
                      style=None if visible else {"display": "none"}, **kwargs)


def render_table(ctx: AppContext, models: list[str], state: B.ViewState, version: int | str) -> tuple[list, list]:
    """(table children, status lines) for a selection and view state."""
    if not models:
        return [], [html.Div("Pick models above to compare their behaviour.", className="hint")]
    table = table_for(ctx, models)
    status = missing_notes(ctx, models, table)
    if table is None:
        return [], status
    view = view_for(ctx, table, state)
    names = (ctx.task_data() or {}).get("class_names", [])
    status.append(html.Div(summary_text(view, table, names), className="bh-summary"))
    return [grid(ctx, view, version)], status


def missing_notes(ctx: AppContext, models: list[str], table: B.InstanceTable | None) -> list:
    notes = []
    if table is None and models:
        why = B.why_missing(ctx.outputs(models[0]), len((ctx.task_data() or {}).get("labels", [])), ctx.status(models[0]))
        notes.append(f"The base model {models[0]} has no stored outputs ({why}); choose another base.")
    for mid, why in (table.missing.items() if table else []):
        notes.append(f"{mid} is left out: {why}.")
    return [html.Div(n, className="notice notice-info") for n in notes]


def summary_text(view: B.View, table: B.InstanceTable, class_names: list[str] = ()) -> str:
    mode = "relative to the base" if view.state.rel else "absolute values"
    fmt = view.spec.rel_fmt if view.state.rel else view.spec.abs_fmt
    span = f"distributions span {B.format_number(view.edges[0], fmt)} … {B.format_number(view.edges[-1], fmt)}"
    if view.spec.inf_text and np.isposinf(view.shown[1:][:, view.order]).any():
        span += f" and {view.spec.inf_text}"
    if view.instance_rows and view.group:
        rows = (f"{view.row_count:,} of {view.group_size:,} instances in {view.group.label(list(class_names))} "
                f"({table.n:,} in all)")
    elif view.instance_rows:
        rows = f"{view.row_count:,} of {table.n:,} instances"
    else:
        what = "classes" if view.state.mode == "classes" else f"{view.state.attribute} subgroups"
        rows = f"{view.row_count:,} {what} over {table.n:,} instances"
    return f"{rows} · {view.spec.label} ({mode}) · {len(view.models)} models · {span}"


# ----------------------------------------------------------------------------- callbacks

def on_controls(ctx: AppContext, selection: dict | None, values: dict, current: dict | None,
                version: int | str, drop_group: bool = False) -> tuple:
    """Controls or selection changed (or the group chip was removed): new state, table, status, detail.

    A class/subgroup restriction survives metric, value and filter changes but not leaving the
    instance row modes (group rows restricted to one group would say nothing).
    """
    models = selected_models(ctx, selection)
    state, inst = state_from_dict(current)
    state.mode = one_of(values["mode"], B.ROW_MODES, "classes")
    state.attribute = text(values["attr"]) or state.attribute
    state.metric = text(values["metric"], "error")
    state.rel = values["rel"] == "rel"
    state.filt = one_of(values["filt"], B.FILTERS, "all")
    state.threshold = number(values["min"])
    state.direction = one_of(values.get("dir"), B.THRESHOLD_DIRECTIONS, "ge")
    state.min_flips = flips_value(values["flips"])
    state = checked(ctx, models, state)
    if state.mode not in B.INSTANCE_MODES:
        inst = None
    if drop_group or state.mode not in B.INSTANCE_MODES:
        state.group = None
    children, status = render_table(ctx, models, state, version)
    return state, inst, children, status, detail_panel(ctx, models, inst)


def on_step(value: Any, step: Any, up: bool) -> float:
    """A − / + click on the threshold: the next value on the step grid (bad inputs: from 0, step 0.01)."""
    size = number(step)
    return B.step_threshold(number(value), size if size is not None and size > 0 else 0.01, up)


def on_group_click(ctx: AppContext, click: dict | None, selection: dict | None, current: dict | None) -> dict | None:
    """A click on a class or subgroup row's name or size -> the state of its instance rows, else None.

    Metric, relative toggle, instance filter, threshold and a model sort carry over; the row
    mode becomes "instances" restricted to the clicked group.
    """
    models = selected_models(ctx, selection)
    state, _ = state_from_dict(current)
    state = checked(ctx, models, state)
    click = mapping(click)
    row_id = str(click.get("rowId") or "")
    if state.mode in B.INSTANCE_MODES or click.get("colId") not in DRILL_COLUMNS \
            or not row_id.startswith("g") or parse_index(row_id[1:]) is None:
        return None
    table = table_for(ctx, models)
    if table is None:
        return None
    task = ctx.task_data() or {}
    names = B.grouping(table, state.mode, task.get("class_names", []), task.get("attributes", {}),
                       state.attribute).names
    group = B.group_for_row(state.mode, state.attribute, parse_index(row_id[1:]), names)
    if group is None:
        return None
    state.mode, state.group = "instances", group.key
    if state.sort not in sort_keys(state.mode, models):
        state.sort, state.desc = None, True
    return state_to_dict(state, None)


def on_rows(ctx: AppContext, request: dict | None, selection: dict | None, current: dict | None) -> tuple[dict, dict | None]:
    """A block request from the grid -> (response, new state dict or None if unchanged)."""
    models = selected_models(ctx, selection)
    state, inst = state_from_dict(current)
    state = checked(ctx, models, state)
    request = mapping(request)
    sort, desc = sort_from_model(request.get("sortModel"), models)
    changed = (sort, desc) != (state.sort, state.desc) and not (sort is None and state.sort is None)
    state.sort, state.desc = sort, desc
    table = table_for(ctx, models)
    if table is None:
        return {"rowData": [], "rowCount": 0}, None
    view = view_for(ctx, table, state)
    start, end = block_range(request)
    names = (ctx.task_data() or {}).get("class_names", [])
    response = {"rowData": rows_for(view, table, start, end, names), "rowCount": view.row_count}
    return response, (state_to_dict(state, inst) if changed else None)


def register(app, ctx: AppContext) -> None:
    """Callbacks (registered even without a task: they never fire while the controls are absent)."""
    behaviors_export.register(app, ctx, STATE)

    @app.callback(
        Output(STATE, "data"), Output(url_part(NAME), "data"), Output(TABLE, "children"),
        Output(STATUS, "children"), Output(DETAIL, "children"),
        Output(WRAP["attr"], "style"), Output(WRAP["filt"], "style"), Output(WRAP["flips"], "style"),
        Output(BODY, "className"), Output(CHIP_LABEL, "children"), Output(CHIP, "style"),
        Output(STEP, "data"), Output(STEPPER[False], "title"), Output(STEPPER[True], "title"),
        Input(SELECTION, "data"), *(Input(CONTROL[k], "value") for k in CONTROL), Input(UNCHIP, "n_clicks"),
        State(STATE, "data"),
        prevent_initial_call=True,
    )
    def update(selection, mode, attr, metric, rel, filt, thr, flips, direction, _unchip, current):
        values = dict(mode=mode, attr=attr, metric=metric, rel=rel, filt=filt, min=thr, flips=flips, dir=direction)
        # a fresh grid id per change: the grid remounts and drops its cached blocks (unique across workers)
        version = uuid.uuid4().hex[:10]
        state, inst, children, status, detail = on_controls(ctx, selection, values, current, version,
                                                            drop_group=callback_context.triggered_id == UNCHIP)
        hide = {"display": "none"}
        chip = chip_text(ctx, state)
        step = step_for(ctx, selected_models(ctx, selection), state)
        return (state_to_dict(state, inst), url_params(state, inst), children, status, detail,
                None if state.mode == "subgroups" else hide,
                None if state.mode in B.INSTANCE_MODES else hide,
                None if state.mode == "exemplars" else hide, body_class(state),
                chip or "", None if chip else hide, step, step_title(step, False), step_title(step, True))

    @app.callback(
        Output(CONTROL["min"], "value"),
        Input(STEPPER[False], "n_clicks"), Input(STEPPER[True], "n_clicks"),
        State(CONTROL["min"], "value"), State(STEP, "data"),
        prevent_initial_call=True,
    )
    def stepped(_down, _up, value, step):
        """− / +: the next threshold on the metric's step grid (the value change re-renders via `update`)."""
        up = callback_context.triggered_id == STEPPER[True]
        return on_step(value, step, up)

    @app.callback(
        Output(grid_id(ALL), "getRowsResponse"),
        Output(STATE, "data", allow_duplicate=True), Output(url_part(NAME), "data", allow_duplicate=True),
        Input(grid_id(ALL), "getRowsRequest"),
        State(SELECTION, "data"), State(STATE, "data"),
        prevent_initial_call=True,
    )
    def rows(requests, selection, current):
        responses, new_state = [], None
        for request in items(requests):
            if request is None:
                responses.append(no_update)
                continue
            response, changed = on_rows(ctx, request, selection, current)
            responses.append(response)
            new_state = changed or new_state
        if new_state is None:
            return responses, no_update, no_update
        state, inst = state_from_dict(new_state)
        return responses, new_state, url_params(state, inst)

    @app.callback(
        Output(DETAIL, "children", allow_duplicate=True),
        Output(STATE, "data", allow_duplicate=True), Output(url_part(NAME), "data", allow_duplicate=True),
        Output(CONTROL["mode"], "value"),
        Input(grid_id(ALL), "cellClicked"),
        State(SELECTION, "data"), State(STATE, "data"),
        prevent_initial_call=True,
    )
    def clicked(clicks, selection, current):
        click = next((c for c in items(clicks) if c), None)
        drilled = on_group_click(ctx, click, selection, current)
        if drilled is not None:  # the row-mode change re-renders everything through `update`
            return no_update, drilled, no_update, drilled["mode"]
        row_id = str(mapping(click).get("rowId") or "")
        state, _ = state_from_dict(current)
        inst = parse_index(row_id[1:]) if row_id.startswith("i") else None
        if state.mode not in B.INSTANCE_MODES or inst is None:
            return no_update, no_update, no_update, no_update
        models = selected_models(ctx, selection)
        return detail_panel(ctx, models, inst), state_to_dict(state, inst), url_params(state, inst), no_update
