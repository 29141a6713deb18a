"""Selection Details (Overview page): the selected models' metrics and a grouped bar chart that
explains how they differ (docs/comparability.md), with Refine Comparison when more than two
variables remain.

State: the chart's metric and the refinement (cnc/ui/selection_refinement.py) live in the URL (keys `smetric`, `svars`, `sval`,
`sxmod`, `sflat`; store `url_part("selection")`). A refinement names variables and values as
the panel shows them (`svars=amount,fine-tune&sval=amount:0.9`), so a link keeps its meaning;
names the explanation no longer has fall back with a notice. The refinement store records the
selection it belongs to and a changed selection starts from the automatic chart.

Callbacks are thin: `panel_content` (pure logic over the context) computes everything shown.
Inputs from the page: `cid("overview", "selection")` (selected ids).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dash import ALL, Input, Output, State, dcc, html, no_update

from cnc.analysis.comparability import Explanation, explain_selection, refine
from cnc.analysis.eval_settings import metric_notes
from cnc.analysis.filters import enabled_models, parse_filters
from cnc.analysis.recipe_text import model_name
from cnc.experiment.forest import Experiment
from cnc.server.context import AppContext
from cnc.server.memo import Memo
from cnc.server.urlstate import build_query, split_list
from cnc.ui import download, selection_export, selection_table
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import ids, items, mapping, one_of
from cnc.ui.selection_chart import bar_figure, value_text
from cnc.ui.selection_refinement import (  # noqa: F401
    Refinement,
    refinement_from_controls,
    refinement_from_data,
    refinement_from_query,
    value_index,
    variable_index,
)
from cnc.ui.selection_significance import selection_tests

NAME = "selection"
SELECTION = cid("overview", "selection")  # owned by the Overview page
METRIC = cid(NAME, "metric")
COMPARE = cid(NAME, "compare")
SUMMARY = cid(NAME, "summary")
NOTE = cid(NAME, "note")
GRAPH = cid(NAME, "graph")
CHART_BOX = cid(NAME, "chart-box")
REFINE_BOX = cid(NAME, "refine")
REFINE_STATE = cid(NAME, "refine-state")
MODE = cid(NAME, "mode")
VARS = cid(NAME, "vars")
VALUES_BOX = cid(NAME, "values-box")
XMOD = cid(NAME, "xmod")
RESET = cid(NAME, "reset")
BODY = cid(NAME, "body")
EMPTY = cid(NAME, "empty")

OVERVIEW_SELECTION_KEY = "sel"  # the Overview page's URL key for the selection
MAX_HELD_LISTED = 3
_MEMO_SIZE = 64


def values_id(k: int | Any) -> dict:
    return cid(NAME, "values", index=k)


def default_metric(ctx: AppContext) -> str | None:
    """The config's colour metric (what the map shows), else the first metric."""
    exp = ctx.experiment
    color = ctx.config.defaults.color
    if color in exp.metrics:
        return color
    return next(iter(exp.metrics), None)


# ---------------------------------------------------------------- logic

_memo = Memo(_MEMO_SIZE)


def explain(ctx: AppContext, selection: list[str]) -> Explanation:
    """explain_selection, memoized per selection and experiment version (bounded)."""
    exp = ctx.experiment  # seen from the request's device: its benchmark numbers differ
    return _memo.get_or((ctx.version, exp.device, tuple(selection)), lambda: explain_selection(exp, selection))


def kept_models(explanation: Explanation, refinement: Refinement) -> list[str]:
    """The selected models left after dropping models and values."""
    dropped_models = set(refinement.dropped_models)
    dropped: dict[int, set] = {}
    index = variable_index(explanation)
    for label, text in refinement.dropped_values:
        k = index.get(label)
        j = value_index(explanation, k).get(text) if k is not None else None
        if j is not None:
            dropped.setdefault(k, set()).add(explanation.variables[k].values[j])
    return [m for m, row in explanation.rows.items()
            if m not in dropped_models and not any(row[k] in vals for k, vals in dropped.items())]


def charted(explanation: Explanation, refinement: Refinement) -> tuple[Explanation, list[str]]:
    """The explanation to chart after the refinement, and sentences saying what it left out."""
    notes: list[str] = []
    models = kept_models(explanation, refinement)
    everyone = len(models) == len(explanation.rows)
    variables = explanation.variables
    if refinement.flatten:
        return refine(explanation, keep_models=None if everyone else models, flatten=True), notes
    index = variable_index(explanation)
    wanted = None
    if refinement.variables is not None:
        wanted = [index[v] for v in refinement.variables if v in index]
        if refinement.variables and not wanted:
            notes.append("The refinement's variables no longer explain this selection: charting the automatic view.")
            wanted = None
    if wanted is not None and len(wanted) > 2:
        notes.append("Only two variables can be charted (x axis and colour): charting the first two ticked.")
        wanted = wanted[:2]
    if wanted is None or (not explanation.needs_refinement and list(wanted) == list(range(len(variables)))):
        result = explanation if everyone else refine(explanation, keep_models=models)
    else:
        result = refine(explanation, keep_variables=list(wanted), keep_models=models)
    if result.needs_refinement:
        full = result
        result = refine(full, keep_variables=[0, 1])
        first = next(iter(result.rows), None)
        held = [f"{v.label} = {value_text(v, full.rows[first][k])}" if first else v.label
                for k, v in enumerate(full.variables) if k >= 2]
        if len(held) > MAX_HELD_LISTED:
            held = held[:MAX_HELD_LISTED] + [f"{len(held) - MAX_HELD_LISTED} more held"]
        names = " and ".join(v.label for v in result.variables)
        notes.append(f"More than two variables differ. Charting {names or 'the models'} with "
                     f"{', '.join(held)} (the most common); use Refine Comparison to pick another view.")
    left_out = len(explanation.rows) - len(result.rows)
    if left_out:
        notes.append(f"Charting {len(result.rows)} of {len(explanation.rows)} selected models "
                     "(the others are muted in the table).")
    return result, notes


@dataclass
class PanelContent:
    """Everything the panel shows for one selection, metric and refinement."""

    selection: list[str]
    metric: str | None
    explanation: Explanation
    chart: Explanation | None
    figure: dict | None
    notes: list[str] = field(default_factory=list)


def panel_content(ctx: AppContext, selection: list[str], metric: str | None,
                  refinement: Refinement | None = None) -> PanelContent:
    """The panel's logic, callable without Dash: unknown ids are skipped, an unknown metric falls
    back to the default."""
    exp = ctx.experiment
    selection = [m for m in dict.fromkeys(selection or []) if m in exp.models]
    if metric not in exp.metrics:
        metric = default_metric(ctx)
    expl = explain(ctx, selection)
    if len(selection) < 2:
        return PanelContent(selection, metric, expl, None, None)
    chart, notes = charted(expl, refinement or Refinement())
    if not chart.rows:
        notes.append("The refinement leaves no models to chart.")
        return PanelContent(selection, metric, expl, None, None, notes)
    m = exp.metrics.get(metric) if metric else None
    values = {mid: exp.models[mid].metrics.get(metric) if metric else None for mid in chart.rows}
    labels = {mid: model_name(exp.models[mid]) for mid in chart.rows}
    if m is None:
        notes.append("The experiment declares no metrics to chart.")
        return PanelContent(selection, metric, expl, chart, None, notes)
    if all(v is None for v in values.values()):
        notes.append(f"No charted model has a {metric} value.")
    notes.extend(metric_notes(exp, list(chart.rows), metric))
    tests = selection_tests(ctx, metric, list(chart.rows))
    if tests is not None and tests.note():
        notes.append(tests.note())
    figure = bar_figure(chart, values, m, labels, metric_name=metric or "", hover=tests.hover() if tests else None)
    return PanelContent(selection, metric, expl, chart, figure, notes)


def url_params(ctx: AppContext, metric: str | None, refinement: Refinement) -> dict:
    params = {"smetric": metric if metric != default_metric(ctx) else None}
    params.update(refinement.params())
    return params


def compare_href(selection: list[str]) -> str:
    return "/compare" + build_query({"models": selection})


# ---------------------------------------------------------------- components

def summary_text(content: PanelContent) -> str:
    n = len(content.selection)
    if n == 0:
        return ""
    if n == 1:
        return "1 model selected."
    expl = content.explanation
    shared = f" (all after {expl.start})" if expl.start else ""
    labels = [v.label for v in expl.variables]
    if not labels:
        return f"{n} models selected{shared}; no operation or parameter tells them apart."
    if expl.by_recipe:
        return f"{n} models selected{shared} from different branches: one bar per model, by recipe, best first."
    return f"{n} models selected{shared}, differing in: {'; '.join(labels)}."


def _refine_controls(expl: Explanation, refinement: Refinement, selection: list[str], exp: Experiment) -> dict:
    """Property values of the Refine Comparison controls for this explanation."""
    dropped = set(refinement.dropped_values)
    index = variable_index(expl)
    boxes = []
    for k, v in enumerate(expl.variables):
        texts = [value_text(v, val) for val in v.values]
        options = [{"label": t, "value": j} for j, t in enumerate(texts)]
        boxes.append(html.Div([
            html.Span(v.label, className="sd-var-name"),
            dcc.Checklist(id=values_id(k), options=options,
                          value=[j for j, t in enumerate(texts) if (v.label, t) not in dropped],
                          className="sd-values", inline=True),
        ], className="sd-var-values"))
    auto = list(range(min(2, len(expl.variables))))
    return {
        "vars_options": [{"label": f"{v.label} ({v.kind}, {len(v.values)} values)", "value": k}
                         for k, v in enumerate(expl.variables)],
        "vars_value": auto if refinement.variables is None else [index[v] for v in refinement.variables if v in index],
        "values": boxes,
        "xmod_options": [{"label": name if (name := model_name(exp.models[m])) == m else f"{name} ({m})", "value": m}
                         for m in selection],
        "xmod_value": list(refinement.dropped_models),
        "mode": "flat" if refinement.flatten else "vars",
        "open": expl.needs_refinement,
        "shown": len(selection) >= 2 and bool(expl.variables),
    }


def _refine_box(props: dict) -> html.Details:
    return html.Details([
        html.Summary("Refine comparison"),
        html.Div([
            dcc.RadioItems(id=MODE, value=props["mode"], className="sd-mode", inline=True, options=[
                {"label": "Chart up to two variables", "value": "vars"},
                {"label": "One bar per model (recipe)", "value": "flat"},
            ]),
            html.Div([
                html.Div("Variables (first ticked = x axis, second = colour; the others are held at their "
                         "most common value)", className="sd-label"),
                dcc.Checklist(id=VARS, options=props["vars_options"], value=props["vars_value"],
                              className="sd-vars"),
            ], className="sd-section sd-vars-section"),
            html.Div([
                html.Div("Values to include", className="sd-label"),
                html.Div(props["values"], id=VALUES_BOX),
            ], className="sd-section"),
            html.Div([
                html.Div("Leave out models", className="sd-label"),
                dcc.Dropdown(id=XMOD, options=props["xmod_options"], value=props["xmod_value"], multi=True,
                             placeholder="None left out", className="sd-xmod"),
            ], className="sd-section"),
            html.Button("Reset", id=RESET, className="btn small", title="Back to the automatic chart"),
        ], className="sd-refine-body"),
    ], id=REFINE_BOX, open=props["open"], className="sd-refine", hidden=not props["shown"])


def _chart_style(content: PanelContent) -> dict:
    return {} if content.figure is not None else {"display": "none"}


def _empty_text(content: PanelContent) -> str:
    if not content.selection:
        return "Select models in the map or the scatterplot to see how they differ."
    return ""


def _initial_selection(ctx: AppContext, query: dict) -> list[str]:
    """The selection the Overview renders from the same link (known ids passing its filters)."""
    exp = ctx.experiment
    known = [m for m in dict.fromkeys(split_list(query.get(OVERVIEW_SELECTION_KEY))) if m in exp.models]
    enabled = set(enabled_models(exp, parse_filters(query, exp, [])))
    return [m for m in known if m in enabled]


def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    exp = ctx.experiment
    selection = _initial_selection(ctx, query)
    metric = query.get("smetric")
    if metric is not None and metric not in exp.metrics:
        notices.append(f"Ignored smetric={metric[:60]!r} from the link: not a known metric.")
        metric = None
    metric = metric or default_metric(ctx)
    expl = explain(ctx, selection)
    refinement = refinement_from_query(query, expl, notices) if len(selection) >= 2 else Refinement()
    content = panel_content(ctx, selection, metric, refinement)
    props = _refine_controls(expl, refinement, selection, exp)
    n = len(selection)
    return html.Div([
        dcc.Store(id=url_part(NAME), data=url_params(ctx, metric, refinement)),
        dcc.Store(id=REFINE_STATE, data=refinement.to_data(selection)),
        html.Div([
            html.H3("Selection Details", className="panel-title"),
            html.Span(summary_text(content), id=SUMMARY, className="sd-summary"),
            html.Div([html.Span("Chart metric", className="control-label"),
                        dcc.Dropdown(id=METRIC, value=metric, clearable=False, className="sd-metric",
                                     options=[{"label": m.name + (f" ({m.unit})" if m.unit else ""),
                                               "value": m.name} for m in exp.metrics.values()])],
                       className="sd-metric-pick"),
            selection_export.button(),
            dcc.Link("Compare in detail →", id=COMPARE, href=compare_href(selection),
                     className="btn small primary" + ("" if n >= 2 else " disabled"),
                     title="Open the Performance Comparison page with the selected models"),
        ], className="sd-head"),
        html.Div(_empty_text(content), id=EMPTY, className="hint"),
        *selection_table.layout(selection_table.table_data(exp, content)),
        html.Div([
            html.Div([
                html.Div([html.Div(t, className="sd-note") for t in content.notes], id=NOTE, className="sd-notes"),
                dcc.Loading(html.Div(dcc.Graph(id=GRAPH, figure=content.figure or {}, config=download.graph_config("selection-chart"),
                                             className="sd-graph"),
                                   id=CHART_BOX, style=_chart_style(content)),
                            type="dot", delay_show=300, className="sd-loading"),
            ], className="sd-chart-col"),
            _refine_box(props),
        ], id=BODY, className="sd-body"),
    ], className="selection-details")


# ---------------------------------------------------------------- callbacks

def register(app, ctx: AppContext) -> None:
    selection_export.register(app, ctx, SELECTION, explain, METRIC)
    selection_table.register(app)

    @app.callback(
        Output(VARS, "options"), Output(VARS, "value"), Output(VALUES_BOX, "children"),
        Output(XMOD, "options"), Output(XMOD, "value"), Output(MODE, "value"),
        Output(REFINE_BOX, "open"), Output(REFINE_BOX, "hidden"),
        Input(RESET, "n_clicks"), Input(SELECTION, "data"),
        prevent_initial_call=True,
    )
    def reset_controls(_reset, selection):
        """A new selection (or Reset) starts from the automatic chart."""
        sel = ids(selection, ctx.experiment.models)
        expl = explain(ctx, sel)
        p = _refine_controls(expl, Refinement(), sel, ctx.experiment)
        return (p["vars_options"], p["vars_value"], p["values"], p["xmod_options"], p["xmod_value"],
                p["mode"], p["open"], not p["shown"])

    @app.callback(
        Output(REFINE_STATE, "data"),
        Input(MODE, "value"), Input(VARS, "value"), Input(values_id(ALL), "value"), Input(XMOD, "value"),
        State(values_id(ALL), "id"), State(SELECTION, "data"), State(REFINE_STATE, "data"),
        prevent_initial_call=True,
    )
    def update_refinement(mode, vars_value, values, xmod, value_ids, selection, current):
        sel = ids(selection, ctx.experiment.models)
        expl = explain(ctx, sel)
        auto = items(vars_value) == list(range(min(2, len(expl.variables))))
        kept = {mapping(i).get("index"): v for i, v in zip(items(value_ids), items(values))}
        new = refinement_from_controls(expl, mode, vars_value, kept, ids(xmod, sel), auto)
        if new == refinement_from_data(current, sel):  # e.g. controls reset for a new selection
            return no_update
        return new.to_data(sel)

    @app.callback(
        Output(selection_table.DATA, "data"), Output(NOTE, "children"), Output(GRAPH, "figure"),
        Output(CHART_BOX, "style"), Output(SUMMARY, "children"), Output(EMPTY, "children"),
        Output(COMPARE, "href"), Output(COMPARE, "className"), Output(url_part(NAME), "data"),
        Input(SELECTION, "data"), Input(METRIC, "value"), Input(REFINE_STATE, "data"),
        State(url_part(NAME), "data"),
        prevent_initial_call=True,
    )
    def update_panel(selection, metric, refine_data, current_params):
        sel = ids(selection, ctx.experiment.models)
        refinement = refinement_from_data(refine_data, sel)
        content = panel_content(ctx, sel, one_of(metric, ctx.experiment.metrics), refinement)
        params = url_params(ctx, content.metric, refinement)
        n = len(sel)
        return (
            selection_table.table_data(ctx.experiment, content),
            [html.Div(t, className="sd-note") for t in content.notes],
            content.figure or {},
            _chart_style(content),
            summary_text(content),
            _empty_text(content),
            compare_href(sel),
            "btn small primary" + ("" if n >= 2 else " disabled"),
            params if params != current_params else no_update,
        )
