"""Behaviors tab of the Performance Comparison page: "which inputs did compression break?".

Rows are classes, subgroups, instances or compression-identified exemplars; one column per
selected model (base first) shows a comparison metric with an inline bar, and a pinned header row
shows each model's distribution. The table is an AG Grid with the infinite row model: the server
filters, sorts and pages (cnc.analysis.behaviors); the browser only ever holds one block of rows.
Per-(selection, base) arrays and per-view orderings are memoized (bounded) so paging, sorting and
filtering stay cheap. Clicking a class or subgroup row drills down to its instances (a removable
"Only class 8 ×" chip). The row threshold keeps rows where any compared model's value is ≥ or ≤ a
number; its − / + buttons step by an amount that fits the metric (0.01 for rates and probabilities,
adaptive otherwise). "Worst samples of" ranks instance rows by one compared model's damage against the
base (cnc.analysis.worst_samples). URL keys: brows battr bmetric brel bfilt bmin bcmp bflips brank
bworst bworstby bsort bdir bgroup bi.

Generative tasks (language models) use the same machinery with their own rows and metrics
(cnc.analysis.generative_behaviors): no class rows; instance rows show the reference and the
base's output; the exemplar rows are the *top changes in outputs*, and the instance panel shows
each model's output with the changed words marked (cnc.ui.behaviors_outputs).
"""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update

from cnc.analysis import (
    behavior_cells,
    behavior_groups,
    behavior_metrics,
    behavior_significance,
    behavior_table,
    behavior_view,
)
from cnc.analysis import generative_behaviors as G
from cnc.analysis.model_runtime import is_gguf_path, runtime_notes, runtime_of
from cnc.analysis.parsing import parse_index
from cnc.analysis.worst_samples import WORST_BY
from cnc.precompute.checked_disk import DamagedEntry
from cnc.server.context import AppContext, instance_count
from cnc.ui import behaviors_export, token_stats
from cnc.ui.behaviors_data import table_for, view_for
from cnc.ui.behaviors_detail import detail_panel
from cnc.ui.behaviors_grid import DRILL_COLUMNS, block_range, grid, grid_id, rows_for, sort_from_model
from cnc.ui.behaviors_state import (
    checked,
    defaults,
    flips_value,
    row_modes,
    sort_keys,
    specs_for,
    state_from_dict,
    state_from_query,
    state_to_dict,
    url_params,
)
from cnc.ui.behaviors_worst import WORST_TITLE, worst_available, worst_by_options, worst_options, worst_shown
from cnc.ui.compare_selection import SELECTION, ordered, selected_models, selection_from_query
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import items, mapping, number, one_of, text

NAME = "behaviors"
STATE = cid(NAME, "state")
STATUS = cid(NAME, "status")
TABLE = cid(NAME, "table")
DETAIL = cid(NAME, "detail")
BODY = cid(NAME, "body")
CONTROL = {k: cid(NAME, k) for k in ("mode", "attr", "metric", "rel", "filt", "min", "flips", "dir", "rank", "worst",
                                     "worstby")}
STEP = cid(NAME, "step")  # the threshold's current step (a store)
STEPPER = {up: cid(NAME, "stepper", to="up" if up else "down") for up in (False, True)}
WRAP = {k: cid(NAME, "wrap", control=k) for k in ("attr", "filt", "flips", "rank", "worst", "worstby")}
CHIP = cid(NAME, "chip")
CHIP_LABEL = cid(NAME, "chip", part="label")
UNCHIP = cid(NAME, "unchip")
MODE_LABELS = {"classes": "Classes", "subgroups": "Subgroups", "tasks": "Tasks", "instances": "Instances",
               "exemplars": "Exemplars (changed by many models)"}
GENERATIVE_MODE_LABELS = {**MODE_LABELS, "exemplars": "Top changes in outputs"}
GENERATIVE_FILTER_LABELS = {
    "all": "All instances",
    "newerr": "Base right, a model wrong (exact match)",
    "fixed": "Base wrong, a model right (exact match)",
    "flipped": "Output changed in a model",
}
RANK_LABELS = {"broke": "Base right, a model wrong first", "fixed": "Base wrong, a model right first"}
NO_TASK = ("This experiment has no evaluation task, only logged metrics, so there are no stored "
           "predictions to compare per class, subgroup or instance. Add a `task` (model loader and "
           "evaluation data) or per-model `outputs` to the config to use this tab.")

WEIGHTS_ONLY = ("This folder of models has no prompt file, so nothing was run: the Layers tab compares their "
                "weights. Put a prompts.jsonl (one {\"question\": ..., \"answers\": [...]} per line) beside "
                "the models and restart to see their outputs here (docs/gguf.md).")


# ----------------------------------------------------------------------------- layout

def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    task = ctx.task_data()
    if task is None:
        return html.Div([html.H4("No per-instance data"), html.P(NO_TASK)], className="bh-empty")
    if task.get("kind") == "weights":
        return html.Div([html.H4("Weights only"), html.P(WEIGHTS_ONLY)], className="bh-empty")
    models, base, _ = selection_from_query(ctx, query, [])
    models = ordered(models, base)
    state, inst = state_from_query(ctx, query, notices, models)
    if state.mode not in behavior_view.INSTANCE_MODES:
        inst = None
    specs = specs_for(ctx, models)
    generative = G.is_generative(task)
    mode_labels = GENERATIVE_MODE_LABELS if generative else MODE_LABELS
    filter_labels = GENERATIVE_FILTER_LABELS if generative else behavior_view.FILTER_LABELS
    attrs = list(task.get("attributes", {}))
    grid, status = render_table(ctx, models, state, version=0)
    step = step_for(ctx, models, state)
    return html.Div([
        dcc.Store(id=url_part(NAME), data=url_params(state, inst, defaults(ctx, models))),
        dcc.Store(id=STATE, data=state_to_dict(state, inst)),
        dcc.Store(id=STEP, data=step),
        html.Div([
            _control("Rows", dcc.Dropdown(id=CONTROL["mode"], clearable=False, value=state.mode, options=[
                {"label": mode_labels[m], "value": m} for m in row_modes(task)])),
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
                {"label": label, "value": k} for k, label in filter_labels.items()]),
                WRAP["filt"], visible=state.mode in behavior_view.INSTANCE_MODES, wide=True),
            _control("Changed in ≥ models", dcc.Input(id=CONTROL["flips"], type="number", min=1, step=1,
                                                      value=state.min_flips, debounce=True),
                     WRAP["flips"], visible=state.mode == "exemplars"),
            threshold_control(state, step),
            _control("Order", dcc.Dropdown(id=CONTROL["rank"], clearable=False, searchable=False, value=state.rank,
                                           options=[{"label": label, "value": k} for k, label in RANK_LABELS.items()]),
                     WRAP["rank"], visible=ranked(state, generative), wide=True),
            _control("Worst samples of", dcc.Dropdown(id=CONTROL["worst"], value=state.worst, searchable=False,
                                                      placeholder="No model", options=worst_options(ctx, models)),
                     WRAP["worst"], visible=worst_available(state, models), title=WORST_TITLE),
            _control("Ranked by", dcc.Dropdown(id=CONTROL["worstby"], clearable=False, searchable=False,
                                               value=state.worst_by, options=worst_by_options(ctx, models)),
                     WRAP["worstby"], visible=worst_shown(state), wide=True),
        ], className="bh-controls"),
        group_chip(ctx, state),
        html.Div([html.Div(status, id=STATUS, className="bh-status"),
                  html.Span("▼ worse than the base · ▲ better (also the bar colour)", className="bh-key"),
                  behaviors_export.button()], className="bh-status-row"),
        html.Div([
            dcc.Loading(html.Div(grid, id=TABLE, className="bh-table"), type="dot", delay_show=300,
                        parent_className="bh-table-loading", overlay_style={"visibility": "visible", "opacity": 0.6}),
            html.Div(detail_panel(ctx, models, inst, state), id=DETAIL, className="bh-detail"),
        ], id=BODY, className=body_class(state, generative)),
    ], className="bh-tab")


def threshold_control(state: behavior_view.ViewState, step: float) -> html.Div:
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


def step_for(ctx: AppContext, models: list[str], state: behavior_view.ViewState) -> float:
    """The threshold step for the shown view (0.01 without data)."""
    table = table_for(ctx, models) if models else None
    return behavior_view.threshold_step(view_for(ctx, table, state)) if table is not None else 0.01


def group_chip(ctx: AppContext, state: behavior_view.ViewState) -> html.Div:
    """The "Only class 8 ×" chip (always in the layout, hidden without a restriction)."""
    label = chip_text(ctx, state)
    return html.Div([
        html.Span(label or "", id=CHIP_LABEL, className="bh-chip-label"),
        html.Button("×", id=UNCHIP, n_clicks=0, className="bh-chip-x", title="Show the instances of all groups",
                    **{"aria-label": "Remove the restriction"}),
    ], id=CHIP, className="bh-chip", style=None if label else {"display": "none"})


def chip_text(ctx: AppContext, state: behavior_view.ViewState) -> str | None:
    """"Only class 8" / "Only ink density = high" (plain text: attribute values are user data)."""
    if not state.group or state.mode not in behavior_view.INSTANCE_MODES:
        return None
    task = ctx.task_data() or {}
    group = behavior_groups.Group.from_key(state.group, task.get("attributes", {}), task.get("class_names", []))
    return f"Only {group.label(task.get('class_names', []))}" if group else None


def body_class(state: behavior_view.ViewState, generative: bool = False) -> str:
    """The instance detail panel only shows next to instance rows (wider for texts)."""
    cls = "bh-body bh-has-detail" if state.mode in behavior_view.INSTANCE_MODES else "bh-body"
    return cls + " bh-generative" if generative else cls


def ranked(state: behavior_view.ViewState, generative: bool) -> bool:
    """The order choice applies to the top changes in outputs (generative exemplar rows), unless
    one model's worst samples order them."""
    return generative and state.mode == "exemplars" and not worst_shown(state)


def _control(label: str, control, wrap_id: dict | None = None, visible: bool = True, wide: bool = False,
             title: str | None = None):
    kwargs = {"id": wrap_id} if wrap_id else {}
    if title:
        kwargs["title"] = title
    return html.Label([html.Span(label, className="bh-label"), control],
                      className="bh-control" + (" bh-wide" if wide else ""),
                      style=None if visible else {"display": "none"}, **kwargs)


def render_table(ctx: AppContext, models: list[str], state: behavior_view.ViewState, version: int | str) -> tuple[list, list]:
    """(table children, status lines) for a selection and view state."""
    if not models:
        return [], [html.Div("Pick models above to compare their behaviour.", className="hint")]
    table = table_for(ctx, models)
    status = missing_notes(ctx, models, table)
    if table is None:
        return [], status
    try:
        view = view_for(ctx, table, state)
    except DamagedEntry:  # a checksum failed on rows this view reads: dropped, never shown
        return [], status + [html.Div("A stored summary of a selected model was damaged; it was dropped and will be "
                                      "recomputed. Reload to see the others.", className="notice notice-info")]
    names = (ctx.task_data() or {}).get("class_names", [])
    status.append(html.Div(summary_text(view, table, names), className="bh-summary"))
    status.extend(test_notes(view))
    tokens = token_stats.panel(ctx, table.models)
    if tokens is not None:
        status.append(tokens)
    note = reference_note(table, view)
    if note:
        status.append(html.Div(note, className="notice notice-info"))
    return [grid(ctx, view, version)], status


def test_notes(view: behavior_view.View) -> list:
    """The paired tests of the view's metric: the change over all instances per model and, for
    group rows, what the muted "n.s." cells mean."""
    notes = []
    if view.overall is not None:
        notes.append(html.Div(behavior_significance.overall_text(view.overall, view.models), className="bh-tests"))
    if view.tests is not None and view.state.rel:
        cells = int(np.isfinite(view.tests.p_holm).sum())
        notes.append(html.Div(behavior_significance.method_text(view.tests, cells), className="bh-tests"))
    return notes


def reference_note(table: behavior_table.InstanceTable | G.GenerativeTable, view: behavior_view.View) -> str | None:
    """Generative KL / top-1 columns are against each model's KL reference: say so when that is
    not the chosen base."""
    if not isinstance(table, G.GenerativeTable) or view.state.metric not in ("kl", "top1"):
        return None
    refs = sorted({r for r in table.kl_reference if r is not None})
    if not refs or refs == [table.models[0]]:
        return None
    which = refs[0] if len(refs) == 1 else "each model's root (" + ", ".join(refs) + ")"
    return (f"{view.spec.label.split(' vs ')[0]} is measured against {which}, the KL reference, not against "
            f"the chosen base {table.models[0]}; relative values subtract the base's own value.")


def model_runtime(ctx: AppContext, model_id: str) -> str | None:
    """The kernels that ran a GGUF model's stored outputs (None for other models)."""
    model = ctx.experiment.models.get(model_id)
    if model is None or not is_gguf_path(model.checkpoint):
        return None
    return runtime_of(ctx.outputs(model_id), model.checkpoint)


def missing_notes(ctx: AppContext, models: list[str], table: behavior_table.InstanceTable | G.GenerativeTable | None) -> list:
    notes = []
    if table is None and models:
        task = ctx.task_data()
        why_missing = G.why_missing if G.is_generative(task) else behavior_table.why_missing
        why = why_missing(ctx.outputs(models[0]), instance_count(task), ctx.status(models[0]))
        notes.append(f"The base model {models[0]} has no stored outputs ({why}); choose another base.")
    for mid, why in (table.missing.items() if table else []):
        notes.append(f"{mid} is left out: {why}.")
    notes.extend(runtime_notes({m: model_runtime(ctx, m) for m in models}))
    return [html.Div(n, className="notice notice-info") for n in notes]


def summary_text(view: behavior_view.View, table: behavior_table.InstanceTable, class_names: list[str] = ()) -> str:
    mode = "relative to the base" if view.state.rel else "absolute values"
    fmt = view.spec.rel_fmt if view.state.rel else view.spec.abs_fmt
    span = f"distributions span {behavior_cells.format_number(view.edges[0], fmt)} … {behavior_cells.format_number(view.edges[-1], fmt)}"
    if view.spec.inf_text and np.isposinf(view.shown[1:][:, view.order]).any():
        span += f" and {view.spec.inf_text}"
    if view.instance_rows and view.group:
        rows = (f"{view.row_count:,} of {view.group_size:,} instances in {view.group.label(list(class_names))} "
                f"({table.n:,} in all)")
    elif view.instance_rows:
        rows = f"{view.row_count:,} of {table.n:,} instances"
    else:
        what = {"classes": "classes", "tasks": "tasks"}.get(view.state.mode, f"{view.state.attribute} subgroups")
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
    mode0, metric0 = defaults(ctx, models)
    state.mode = one_of(values["mode"], row_modes(ctx.task_data() or {}), mode0)
    state.attribute = text(values["attr"]) or state.attribute
    state.metric = text(values["metric"], metric0)
    state.rel = values["rel"] == "rel"
    state.filt = one_of(values["filt"], behavior_view.FILTERS, "all")
    state.threshold = number(values["min"])
    state.direction = one_of(values.get("dir"), behavior_view.THRESHOLD_DIRECTIONS, "ge")
    state.min_flips = flips_value(values["flips"])
    state.rank = one_of(values.get("rank"), behavior_view.RANKS, behavior_view.RANKS[0])
    worst = (text(values.get("worst")), one_of(values.get("worstby"), WORST_BY, WORST_BY[0]))
    if worst[0] and worst != (state.worst, state.worst_by):  # a newly chosen ranking shows: no column sort
        state.sort = None
    state.worst, state.worst_by = worst
    state = checked(ctx, models, state)
    if state.mode not in behavior_view.INSTANCE_MODES:
        inst = None
    if drop_group or state.mode not in behavior_view.INSTANCE_MODES:
        state.group = None
    children, status = render_table(ctx, models, state, version)
    return state, inst, children, status, detail_panel(ctx, models, inst, state)


def on_step(value: Any, step: Any, up: bool) -> float:
    """A − / + click on the threshold: the next value on the step grid (bad inputs: from 0, step 0.01)."""
    size = number(step)
    return behavior_view.step_threshold(number(value), size if size is not None and size > 0 else 0.01, up)


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
    if state.mode in behavior_view.INSTANCE_MODES or click.get("colId") not in DRILL_COLUMNS \
            or not row_id.startswith("g") or parse_index(row_id[1:]) is None:
        return None
    table = table_for(ctx, models)
    if table is None:
        return None
    task = ctx.task_data() or {}
    names = behavior_metrics.grouping(table, state.mode, task.get("class_names", []), task.get("attributes", {}),
                       state.attribute).names
    group = behavior_groups.group_for_row(state.mode, state.attribute, parse_index(row_id[1:]), names)
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
        Output(WRAP["rank"], "style"), Output(WRAP["worst"], "style"), Output(WRAP["worstby"], "style"),
        Output(CONTROL["worst"], "options"), Output(BODY, "className"), Output(CHIP_LABEL, "children"), Output(CHIP, "style"),
        Output(STEP, "data"), Output(STEPPER[False], "title"), Output(STEPPER[True], "title"),
        Input(SELECTION, "data"), *(Input(CONTROL[k], "value") for k in CONTROL), Input(UNCHIP, "n_clicks"),
        State(STATE, "data"),
        prevent_initial_call=True,
    )
    def update(selection, mode, attr, metric, rel, filt, thr, flips, direction, rank, worst, worstby, _unchip, current):
        values = dict(mode=mode, attr=attr, metric=metric, rel=rel, filt=filt, min=thr, flips=flips, dir=direction,
                      rank=rank, worst=worst, worstby=worstby)
        # a fresh grid id per change: the grid remounts and drops its cached blocks (unique across workers)
        version = uuid.uuid4().hex[:10]
        state, inst, children, status, detail = on_controls(ctx, selection, values, current, version,
                                                            drop_group=callback_context.triggered_id == UNCHIP)
        hide = {"display": "none"}
        generative = G.is_generative(ctx.task_data())
        chip = chip_text(ctx, state)
        models = selected_models(ctx, selection)
        step = step_for(ctx, models, state)
        return (state_to_dict(state, inst), url_params(state, inst, defaults(ctx, models)), children, status, detail,
                None if state.mode == "subgroups" else hide,
                None if state.mode in behavior_view.INSTANCE_MODES else hide,
                None if state.mode == "exemplars" else hide,
                None if ranked(state, generative) else hide,
                None if worst_available(state, models) else hide, None if worst_shown(state) else hide,
                worst_options(ctx, models), body_class(state, generative),
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
        return responses, new_state, url_params(state, inst, defaults(ctx, selected_models(ctx, selection)))

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
        if state.mode not in behavior_view.INSTANCE_MODES or inst is None:
            return no_update, no_update, no_update, no_update
        models = selected_models(ctx, selection)
        return (detail_panel(ctx, models, inst, state), state_to_dict(state, inst),
                url_params(state, inst, defaults(ctx, models)), no_update)
