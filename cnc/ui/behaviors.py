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
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update

from cnc.analysis import behaviors as B
from cnc.context import AppContext
from cnc.memo import Memo
from cnc.ui.behaviors_grid import DRILL_COLUMNS, block_range, grid, grid_id, rows_for, sort_from_model
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import ids, items, mapping, number, one_of, text
from cnc.urlstate import parse_float, parse_index, pick

NAME = "behaviors"
SELECTION = cid("compare", "selection")
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
MAX_FLIPS = 1000
NO_TASK = ("This experiment has no evaluation task, only logged metrics, so there are no stored "
           "predictions to compare per class, subgroup or instance. Add a `task` (model loader and "
           "evaluation data) or per-model `outputs` to the config to use this tab.")


# ----------------------------------------------------------------------------- memoized data

_TABLES = Memo(4)  # per (context, task, selection, base, readiness): InstanceTable | None
_VIEWS = Memo(8)  # per (table, view state): filtered + sorted View


def table_for(ctx: AppContext, models: list[str]) -> B.InstanceTable | None:
    """Per-instance arrays for a selection (base first); None without task data or base outputs."""
    task = ctx.task_data()
    if task is None or not models:
        return None
    statuses = tuple(ctx.status(m) for m in models)
    key = (id(ctx), ctx.task_hash, tuple(models), statuses)
    return _TABLES.get_or(key, lambda: B.build_table(task["labels"], models, ctx.outputs, ctx.status))


def view_for(ctx: AppContext, table: B.InstanceTable, state: B.ViewState) -> B.View:
    task = ctx.task_data() or {}

    def make():
        return table, B.build_view(table, state, B.metric_specs(table.scalars), task.get("class_names", []),
                                   task.get("attributes", {}))

    owner, view = _VIEWS.get_or((id(table), state.key()), make)
    return view if owner is table else make()[1]  # an id reused after eviction: never serve a stale view


# ----------------------------------------------------------------------------- URL state

def state_from_query(ctx: AppContext, query: dict, notices: list[str], models: list[str]) -> tuple[B.ViewState, int | None]:
    """Validated view state and open instance from the URL; bad values get a notice."""
    task = ctx.task_data() or {}
    attrs = list(task.get("attributes", {}))
    specs = B.metric_specs(_scalar_names(ctx, models))
    s = B.ViewState()

    def take(key: str, allowed, default):
        return pick(query.get(key), allowed, default, notices, key)

    s.mode = take("brows", B.ROW_MODES, "classes")
    if s.mode == "subgroups" and not attrs:
        notices.append("This task declares no instance attributes, so subgroup rows are not available.")
        s.mode = "classes"
    s.attribute = take("battr", attrs, attrs[0] if attrs else None)
    s.metric = take("bmetric", specs, "error")
    s.rel = take("brel", ("0", "1"), "0") == "1"
    s.filt = take("bfilt", B.FILTERS, "all")
    if query.get("bmin") is not None:
        s.threshold = parse_float(query["bmin"])
        if s.threshold is None:
            notices.append("Ignored the row threshold in the link: not a number.")
    s.direction = take("bcmp", B.THRESHOLD_DIRECTIONS, "ge")
    s.min_flips = _int(query.get("bflips"), 1, 1, MAX_FLIPS, notices, "bflips")
    s.sort = take("bsort", sort_keys(s.mode, models), None)
    s.desc = take("bdir", ("asc", "desc"), "desc") == "desc"
    s.group = _group_from_query(query.get("bgroup"), s.mode, task, notices)
    inst = _int(query.get("bi"), None, 0, len(task.get("labels", [])) - 1, notices, "bi")
    return s, inst


def _group_from_query(text: str | None, mode: str, task: dict, notices: list[str]) -> str | None:
    """The canonical key of a valid group restriction from the link, else None (with a notice)."""
    if text is None:
        return None
    if mode not in B.INSTANCE_MODES:
        notices.append("Ignored the class/subgroup restriction in the link: it applies to instance rows only.")
        return None
    labels = task.get("labels", [])
    group = B.parse_group(text, task.get("class_names", []), task.get("attributes", {}),
                          n_classes=int(np.max(labels)) + 1 if len(labels) else 0)
    if group is None:
        notices.append(f"Ignored bgroup={text[:60]!r} from the link: no such class or subgroup.")
        return None
    return group.key


def _int(value: str | None, default, lo: int, hi: int, notices: list[str], key: str):
    if value is None:
        return default
    n = parse_index(value)
    if n is None or not lo <= n <= hi:
        notices.append(f"Ignored {key}={value[:20]!r} from the link: out of range.")
        return default
    return n


def sort_keys(mode: str, models: list[str]) -> list[str]:
    """What rows can be sorted by in a row mode: a model's value, the row order, flips or size."""
    return [*models, "row", "flips" if mode in B.INSTANCE_MODES else "n"]


def url_params(state: B.ViewState, inst: int | None) -> dict:
    """The URL share of this tab (defaults omitted)."""
    return {
        "brows": state.mode if state.mode != "classes" else None,
        "battr": state.attribute if state.mode == "subgroups" else None,
        "bmetric": state.metric if state.metric != "error" else None,
        "brel": "1" if state.rel else None,
        "bfilt": state.filt if state.filt != "all" else None,
        "bmin": state.threshold,
        "bcmp": state.direction if state.direction != "ge" else None,
        "bflips": state.min_flips if state.min_flips != 1 else None,
        "bsort": state.sort,
        "bdir": "asc" if state.sort and not state.desc else None,
        "bgroup": state.group if state.mode in B.INSTANCE_MODES else None,
        "bi": inst,
    }


def state_to_dict(state: B.ViewState, inst: int | None) -> dict:
    return {**vars(state), "inst": inst}


def state_from_dict(data: Any) -> tuple[B.ViewState, int | None]:
    """The state store (browser JSON, so checked field by field: a wrong type is the default).
    Values that depend on the data (metric, attribute, sort, group) are checked by `checked`."""
    d, s = mapping(data), B.ViewState()
    s.mode = one_of(d.get("mode"), B.ROW_MODES, s.mode)
    s.attribute, s.sort, s.group = text(d.get("attribute")), text(d.get("sort")), text(d.get("group"))
    s.metric = text(d.get("metric"), s.metric)
    s.rel, s.desc = d.get("rel") is True, d.get("desc") is not False
    s.filt = one_of(d.get("filt"), B.FILTERS, s.filt)
    s.threshold = number(d.get("threshold"))
    s.direction = one_of(d.get("direction"), B.THRESHOLD_DIRECTIONS, s.direction)
    s.min_flips = _flips(d.get("min_flips"))
    inst = d.get("inst")
    return s, inst if isinstance(inst, int) and not isinstance(inst, bool) and inst >= 0 else None


def _flips(value: Any) -> int:
    n = number(value)
    return int(min(n, MAX_FLIPS)) if n is not None and n >= 1 else 1


def checked(ctx: AppContext, models: list[str], state: B.ViewState) -> B.ViewState:
    """`state` with values this task and selection do not have reset to their defaults."""
    task = ctx.task_data() or {}
    attrs = list(task.get("attributes", {}))
    state.attribute = one_of(state.attribute, attrs, attrs[0] if attrs else None)
    if state.mode == "subgroups" and not attrs:
        state.mode = "classes"
    if state.metric not in B.metric_specs(_scalar_names(ctx, models)):
        state.metric = "error"
    if state.sort not in sort_keys(state.mode, models):
        state.sort = None
    if state.group is not None and (state.mode not in B.INSTANCE_MODES or _group_from_query(
            state.group, state.mode, task, []) is None):
        state.group = None
    return state


def selected_models(ctx: AppContext, selection: Any) -> list[str]:
    """The compare page's selection store (base first), known models only."""
    return ids(mapping(selection).get("models"), ctx.experiment.models)


def _scalar_names(ctx: AppContext, models: list[str]) -> list[str]:
    out = ctx.outputs(models[0]) if models else None
    return sorted((out or {}).get("scalars") or {})


# ----------------------------------------------------------------------------- layout

def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    task = ctx.task_data()
    if task is None:
        return html.Div([html.H4("No per-instance data"), html.P(NO_TASK)], className="bh-empty")
    from cnc.pages.compare import ordered, selection_from_query  # the page owns the selection

    models, base, _ = selection_from_query(ctx, query, [])
    models = ordered(models, base)
    state, inst = state_from_query(ctx, query, notices, models)
    if state.mode not in B.INSTANCE_MODES:
        inst = None
    specs = B.metric_specs(_scalar_names(ctx, models))
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
        html.Div(status, id=STATUS, className="bh-status"),
        html.Div([
            html.Div(grid, id=TABLE, className="bh-table"),
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


# ----------------------------------------------------------------------------- instance detail

def instance_figure(pixels: list) -> go.Figure:
    """A small image instance (row 0 at the top): grayscale [H][W] as a heatmap, colour
    [H][W][3] (0-255 RGB) as an image."""
    if np.ndim(pixels) == 3:
        trace = go.Image(z=np.clip(np.asarray(pixels, dtype=np.float64), 0, 255), hoverinfo="skip")
    else:
        trace = go.Heatmap(z=pixels, colorscale="Greys", showscale=False, hoverinfo="skip")
    fig = go.Figure(trace)
    fig.update_layout(margin=dict(l=4, r=4, t=4, b=4), height=180, width=180,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return fig


def detail_panel(ctx: AppContext, models: list[str], inst: int | None) -> list:
    if inst is None:
        return [html.Div("Click an instance (Instances or Exemplars rows) to see it with each model's "
                         "prediction.", className="hint")]
    task = ctx.task_data() or {}
    labels, names = task.get("labels", []), task.get("class_names", [])
    if not 0 <= inst < len(labels):
        return [html.Div("That instance is not in the evaluation set.", className="hint")]
    label = int(labels[inst])
    shown = ctx.instance(inst)
    if shown and shown.get("kind") == "image":
        body = dcc.Graph(figure=instance_figure(shown["pixels"]), config={"displayModeBar": False,
                                                                          "staticPlot": True}, className="bh-image")
    elif shown and shown.get("kind") == "text":
        body = html.Blockquote(str(shown.get("text", "")), className="bh-text")
    else:
        body = html.Div((shown or {}).get("why") or "No rendering for this instance.", className="hint")
    rows = B.instance_detail(inst, label, names, models, [ctx.outputs(m) for m in models])
    table = html.Table([
        html.Thead(html.Tr([html.Th("Model"), html.Th("Predicts"), html.Th("P(true)"), html.Th("Top classes")])),
        html.Tbody([_detail_row(ctx, r, k == 0) for k, r in enumerate(rows)]),
    ], className="bh-detail-table")
    return [html.H4(f"Instance #{inst}"), body,
            html.Div(["True label: ", html.B(B.class_name(names, label))], className="bh-true"), table]


def _detail_row(ctx: AppContext, r: dict, is_base: bool) -> html.Tr:
    model = ctx.experiment.models.get(r["model"])
    name = (model.label if model else r["model"]) + (" (base)" if is_base else "")
    if r["pred"] is None:
        return html.Tr([html.Td(name), html.Td("no outputs", colSpan=3, className="hint")])
    mark = "✓" if r["correct"] else "✗"
    top = ", ".join(f"{c} {p:.0%}" for c, p in r["top"])
    return html.Tr([html.Td(name), html.Td(f"{mark} {r['pred']}", className="ok" if r["correct"] else "bad"),
                    html.Td(B.format_number(r["true_prob"], ".2f")), html.Td(top)])


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
    state.min_flips = _flips(values["flips"])
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
