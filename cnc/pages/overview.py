"""Overview page (`/`): placeholder list of the experiment's models until the full view lands."""
from __future__ import annotations

from dash import html

from cnc.context import AppContext
from cnc.format import format_metric
from cnc.ui.notices import notices as notice_box


def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    exp = ctx.experiment
    metrics = list(exp.metrics.values())
    head = html.Tr([html.Th("Model"), html.Th("Operation")] + [html.Th(m.name) for m in metrics])
    rows = [
        html.Tr([html.Td(m.label, className="model-label"),
                 html.Td(m.operation.label() if m.operation else "—")]
                + [html.Td(format_metric(metric, m.metrics.get(metric.name))) for metric in metrics])
        for m in exp.models.values()
    ]
    return html.Div([notice_box(notices), html.Table([html.Thead(head), html.Tbody(rows)],
                                                      className="model-table")])


def register(app, ctx: AppContext) -> None:
    return None
