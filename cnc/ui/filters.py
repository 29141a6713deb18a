"""Filters (budgets): one card per metric with its histogram over all models and a range the user
brushes on the histogram or types. Writes the filter list store and the enabled-models store.

Bounds are typed and shown in the metric's displayed unit (percent for `%` formats) and stored in
its own unit. Every redraw of a histogram clears plotly's brush and echoes an empty selection,
which is ignored; a click on a histogram (no drag) clears that filter's range, clientside.
"""
from __future__ import annotations

from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cnc.analysis.filters import (
    Filter,
    display_factor,
    enabled_models,
    from_data,
    from_display,
    histogram,
    range_warning,
    to_data,
    to_display,
)
from cnc.analysis.parsing import parse_float
from cnc.experiment.forest import Experiment, is_missing
from cnc.server.context import AppContext
from cnc.ui.ids import cid
from cnc.ui.inputs import count, items, mapping, one_of

FILTERS = cid("filters", "data")
ADD = cid("filters", "add")
CARDS = cid("filters", "cards")
COUNT = cid("filters", "count")
CLEAR_HOOK = cid("filters", "clear-hook")
IN_RANGE, OUT_RANGE = "#4c78a8", "#d9d9d9"


def _part(role: str, metric=ALL) -> dict:
    return cid("filters", role, metric=metric)


def count_text(n_pass: int, n_total: int) -> str:
    return f"{n_pass} of {n_total} models pass"


def hist_figure(exp: Experiment, f: Filter) -> dict:
    counts, edges = histogram(exp.metric_values(f.metric))
    centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    widths = [(b - a) * 0.92 for a, b in zip(edges, edges[1:])]
    colors = [IN_RANGE if Filter(f.metric, f.lo, f.hi).passes(c) or not f.active else OUT_RANGE
              for c in centers]
    metric = exp.metrics[f.metric]
    return {
        "data": [{"type": "bar", "x": centers, "y": counts, "width": widths, "marker": {"color": colors},
                  "hovertemplate": "%{y} models<extra></extra>"}],
        "layout": {"margin": {"l": 4, "r": 4, "t": 2, "b": 20}, "height": 72, "bargap": 0,
                   "dragmode": "select", "selectdirection": "h", "showlegend": False,
                   "xaxis": {"tickfont": {"size": 9}, "fixedrange": True, "nticks": 5,
                             "tickformat": metric.format or ""},
                   "yaxis": {"visible": False, "fixedrange": True},
                   "plot_bgcolor": "#fff", "paper_bgcolor": "rgba(0,0,0,0)", "uirevision": f.metric},
    }


def card(exp: Experiment, f: Filter) -> html.Div:
    metric = exp.metrics[f.metric]
    values = exp.metric_values(f.metric)
    missing = sum(1 for v in values if is_missing(v))
    present = [to_display(metric, v) for v in values if not is_missing(v)]
    lo, hi = (f"{min(present):.4g}", f"{max(present):.4g}") if present else ("", "")
    percent = display_factor(metric) != 1
    return html.Div([
        html.Div([
            html.Span(f"{metric.name}{f' ({metric.unit})' if metric.unit else ''}", className="filter-name"),
            html.Span("higher is better" if metric.higher_is_better else "lower is better", className="filter-dir"),
            html.Button("×", id=_part("remove", f.metric), className="filter-remove",
                        title=f"Remove the {metric.name} filter"),
        ], className="filter-title"),
        dcc.Graph(id=_part("hist", f.metric), figure=hist_figure(exp, f), className="filter-hist",
                  config={"displayModeBar": False}),
        html.Div([
            dcc.Input(id=_part("lo", f.metric), type="number", value=to_display(metric, f.lo), debounce=True,
                      step="any", placeholder=f"min {lo}", className="range-input"),
            html.Span("to"),
            dcc.Input(id=_part("hi", f.metric), type="number", value=to_display(metric, f.hi), debounce=True,
                      step="any", placeholder=f"max {hi}", className="range-input"),
            html.Span("%", className="range-unit") if percent else None,
        ], className="filter-range"),
        html.Div(range_warning(exp, f), id=_part("warn", f.metric), className="filter-warn"),
        html.Div(f"{missing} model(s) without a value never pass", className="filter-note") if missing else None,
    ], className="filter-card", **{"data-metric": f.metric})


def add_options(exp: Experiment, filters: list[Filter]) -> list[dict]:
    used = {f.metric for f in filters}
    return [{"label": m.name, "value": m.name} for m in exp.metrics.values() if m.name not in used]


def layout(exp: Experiment, filters: list[Filter], n_pass: int) -> html.Div:
    return html.Div([
        html.Div([
            html.Span("Filters", className="section-title"),
            dcc.Dropdown(id=ADD, options=add_options(exp, filters), value=None, placeholder="+ Add filter…",
                         clearable=False, searchable=True, className="add-filter"),
            html.Span(count_text(n_pass, len(exp.models)), id=COUNT, className="pass-count"),
        ], className="filters-head"),
        html.Div([card(exp, f) for f in filters], id=CARDS, className="filter-cards"),
        dcc.Store(id=FILTERS, data=to_data(filters)),
        dcc.Store(id=CLEAR_HOOK),
    ], className="filters")


def _by_metric(inputs: list) -> dict:
    """{metric: value} of a pattern-matched input list (ids come from the browser too)."""
    out = {}
    for item in items(inputs):
        metric = mapping(mapping(item).get("id")).get("metric")
        if isinstance(metric, str):
            out[metric] = mapping(item).get("value")
    return out


def apply_brush(selected: dict | None) -> tuple[float | None, float | None] | None:
    """A horizontal brush on a histogram -> (lo, hi) rounded for humans; None if not a brush."""
    rng = mapping(mapping(selected).get("range")).get("x")
    if not (isinstance(rng, list) and len(rng) == 2):
        return None
    lo, hi = sorted(parse_float(v) for v in rng) if all(parse_float(v) is not None for v in rng) else (None, None)
    if lo is None:
        return None
    return float(f"{lo:.4g}"), float(f"{hi:.4g}")


def edit_values(exp: Experiment, current: list[Filter], los: dict, his: dict, brushed: dict) -> list[Filter]:
    """New filters from typed bounds (`los`/`his`, in the displayed unit) and brushes (`brushed`:
    metric -> (lo, hi) in the stored unit, as on the histogram's axis)."""
    out = []
    for f in current:
        metric = exp.metrics[f.metric]
        lo, hi = (brushed[f.metric] if f.metric in brushed
                  else (from_display(metric, parse_float(los.get(f.metric))),
                        from_display(metric, parse_float(his.get(f.metric)))))
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        out.append(Filter(f.metric, lo, hi))
    return out


def range_outputs(exp: Experiment, data: list | None, trigger, los: dict, his: dict, selected: dict,
                  order: list[str]) -> tuple:
    """The range callback's logic: (filters data, then per card in `order`: lo, hi, histogram,
    warning). A histogram event that is not a brush (the echo of a redraw) changes nothing."""
    brushed = {}
    if isinstance(trigger, dict) and trigger.get("role") == "hist":
        metric = trigger.get("metric")
        brush = apply_brush(selected.get(metric)) if isinstance(metric, str) else None
        if brush is None:
            raise PreventUpdate
        brushed[metric] = brush
    filters = edit_values(exp, from_data(data, exp), los, his, brushed)
    by_metric = {f.metric: f for f in filters}
    shown = [by_metric.get(m, Filter(m)) if isinstance(m, str) and m in exp.metrics else None for m in order]

    def each(draw) -> list:  # a card whose metric this experiment lacks is left alone
        return [no_update if f is None else draw(f) for f in shown]

    return (to_data(filters), each(lambda f: to_display(exp.metrics[f.metric], f.lo)),
            each(lambda f: to_display(exp.metrics[f.metric], f.hi)), each(lambda f: hist_figure(exp, f)),
            each(lambda f: range_warning(exp, f)))


# A plain click on a histogram (no drag) clears that filter's range: plotly reports it as a
# selection event without data, which dcc.Graph drops, so listen here and empty the typed bounds.
_CLEAR_JS = """
function(figures) {
    var attach = function(attempt) {
        var pending = false;
        document.querySelectorAll('.filter-hist').forEach(function(wrap) {
            var gd = wrap.querySelector('.js-plotly-plot');
            if (!gd || !gd.on) { pending = true; return; }
            if (gd._cncClear) { return; }
            gd._cncClear = true;
            gd.on('plotly_selected', function(ev) {
                if (ev) { return; }
                var id = JSON.parse(wrap.id);
                ['lo', 'hi'].forEach(function(role) {
                    window.dash_clientside.set_props(Object.assign({}, id, {role: role}), {value: null});
                });
            });
        });
        if (pending && attempt < 50) { setTimeout(function() { attach(attempt + 1); }, 100); }
    };
    attach(0);
    return (figures || []).length;
}
"""


def register(app, ctx: AppContext, enabled_id: dict) -> None:
    """Callbacks read the experiment when called: models logged meanwhile count."""
    # Both writers of the filters also send the models that pass and their count: a callback
    # deriving them from the filters store would cost the map and scatterplot one more round trip.
    @app.callback(
        Output(CARDS, "children"), Output(FILTERS, "data"), Output(ADD, "value"), Output(ADD, "options"),
        Output(enabled_id, "data"), Output(COUNT, "children"),
        Input(ADD, "value"), Input(_part("remove"), "n_clicks"), State(FILTERS, "data"), State(enabled_id, "data"),
        prevent_initial_call=True,
    )
    def add_or_remove(add, removes, data, current):
        exp = ctx.experiment
        filters = from_data(data, exp)
        trig = callback_context.triggered_id
        if trig == ADD and one_of(add, exp.metrics) and all(f.metric != add for f in filters):
            filters.append(Filter(add))
        elif isinstance(trig, dict) and trig.get("role") == "remove" and any(count(n) for n in items(removes)):
            filters = [f for f in filters if f.metric != trig.get("metric")]
        else:
            return no_update, no_update, None, no_update, no_update, no_update
        return ([card(exp, f) for f in filters], to_data(filters), None, add_options(exp, filters),
                *enabled_outputs(exp, to_data(filters), current))

    @app.callback(
        Output(FILTERS, "data", allow_duplicate=True), Output(_part("lo"), "value"),
        Output(_part("hi"), "value"), Output(_part("hist"), "figure"), Output(_part("warn"), "children"),
        Output(enabled_id, "data", allow_duplicate=True), Output(COUNT, "children", allow_duplicate=True),
        Input(_part("lo"), "value"), Input(_part("hi"), "value"), Input(_part("hist"), "selectedData"),
        State(FILTERS, "data"), State(enabled_id, "data"),
        prevent_initial_call=True,
    )
    def change_range(_lo, _hi, _sel, data, current):
        inputs = callback_context.inputs_list
        exp = ctx.experiment
        out = range_outputs(exp, data, callback_context.triggered_id, _by_metric(inputs[0]),
                            _by_metric(inputs[1]), _by_metric(inputs[2]),
                            [mapping(mapping(o).get("id")).get("metric") for o in items(callback_context.outputs_list[1])])
        return (*out, *enabled_outputs(exp, out[0], current))

    app.clientside_callback(_CLEAR_JS, Output(CLEAR_HOOK, "data"), Input(_part("hist"), "figure"))


def enabled_outputs(exp: Experiment, data: list | None, current) -> tuple:
    """(the models passing the filters `data`, or no_update when the page has them; the count)."""
    enabled = enabled_models(exp, from_data(data, exp))
    return (enabled if enabled != current else no_update), count_text(len(enabled), len(exp.models))
