"""The Compare page's metric strip, above the tabs: each selected model's metrics and their change
against the base ("Accuracy 91.2% −0.8 pt", "Size 38 KB −62%"), so the numbers are at hand
without going back to the Overview. Better / worse carry an arrow and a word for screen readers,
not colour alone."""
from __future__ import annotations

from dash import Input, Output, html

from cnc.analysis import encoding
from cnc.analysis.metric_change import change
from cnc.experiment.forest import Experiment
from cnc.experiment.formatting import format_metric, metric_help
from cnc.server.context import AppContext
from cnc.ui.compare_selection import SELECTION, selected_models
from cnc.ui.ids import cid

STRIP = cid("compare", "strip")
MAX_METRICS = 6
MAX_MODELS = 12


def strip(exp: Experiment, models: list[str]) -> list:
    """Children of the strip for `models` (base first)."""
    if not models:
        return []
    metrics, base = encoding.shown_metrics(exp)[:MAX_METRICS], exp.models[models[0]]
    head = html.Tr([html.Th("Model"), *(html.Th(m.name, title=metric_help(m)) for m in metrics)])
    rows = [head]
    for k, mid in enumerate(models[:MAX_MODELS]):
        model = exp.models[mid]
        cells = [html.Th([model.label, html.Span(" base", className="cs-base")] if k == 0 else model.label,
                         title=mid)]
        for m in metrics:
            value = model.metrics.get(m.name)
            parts = [html.Span(format_metric(m, value), className="cs-value")]
            if k > 0:
                c = change(m, value, base.metrics.get(m.name))
                cls, mark, word = {True: ("better", "▲", "better"), False: ("worse", "▼", "worse")}.get(
                    c.better, ("same", "", "no change"))
                parts.append(html.Span([html.Span(mark, **{"aria-hidden": "true"}), f" {c.text}" if mark else c.text],
                                       className=f"cs-change {cls}", title=f"{word} than the base"))
            cells.append(html.Td(parts))
        rows.append(html.Tr(cells))
    extra = len(models) - MAX_MODELS
    note = [html.Div(f"… and {extra} more models", className="hint")] if extra > 0 else []
    return [html.Table(html.Tbody(rows), className="cs-table"), *note]


def layout(exp: Experiment, models: list[str]) -> html.Div:
    return html.Div(strip(exp, models), id=STRIP, className="compare-strip", role="region",
                    **{"aria-label": "Metrics of the compared models against the base"})


def register(app, ctx: AppContext) -> None:
    @app.callback(Output(STRIP, "children"), Input(SELECTION, "data"), prevent_initial_call=True)
    def update(selection):
        return strip(ctx.experiment, selected_models(ctx, selection))
