"""The Behaviors tab's instance panel: one evaluation instance (image or text) with each model's
prediction, whether it is right, and its top classes; for generative tasks, each model's output
(cnc.ui.behaviors_outputs)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import dcc, html

from cnc.analysis import behavior_cells, behavior_groups, behavior_view
from cnc.analysis import generative_behaviors as G
from cnc.precompute.checked_disk import DamagedEntry
from cnc.server.context import AppContext
from cnc.ui.behaviors_data import table_for, view_for
from cnc.ui.behaviors_outputs import outputs_panel


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


def detail_panel(ctx: AppContext, models: list[str], inst: int | None,
                 state: behavior_view.ViewState | None = None) -> list:
    """The open instance; generative tasks without one open show the top change in outputs when
    the rows are the top changes (`state`)."""
    if G.is_generative(ctx.task_data()):
        table = table_for(ctx, models) if models else None
        top = None
        if inst is None and table is not None and state is not None and state.mode == "exemplars":
            order = view_for(ctx, table, state).order
            top = int(order[0]) if order.size else None
        if state is not None and state.worst in models[1:] and state.sort is None:
            return outputs_panel(ctx, models, table, inst, top, f"the worst sample of {ctx.experiment.models[state.worst].label}")
        return outputs_panel(ctx, models, table, inst, top)
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
    try:
        rows = behavior_cells.instance_detail(inst, label, names, models, [ctx.outputs(m) for m in models])
    except DamagedEntry:  # a checksum failed on these rows: dropped, never shown; the header says more
        return [html.Div("A stored summary of one of these models was damaged; it was dropped and will be "
                         "recomputed. Reopen the instance to see the others.", className="notice notice-info")]
    table = html.Table([
        html.Thead(html.Tr([html.Th("Model"), html.Th("Predicts"), html.Th("P(true)"), html.Th("Top classes")])),
        html.Tbody([_detail_row(ctx, r, k == 0) for k, r in enumerate(rows)]),
    ], className="bh-detail-table")
    return [html.H4(f"Instance #{inst}"), body,
            html.Div(["True label: ", html.B(behavior_groups.class_name(names, label))], className="bh-true"), table]


def _detail_row(ctx: AppContext, r: dict, is_base: bool) -> html.Tr:
    model = ctx.experiment.models.get(r["model"])
    name = (model.label if model else r["model"]) + (" (base)" if is_base else "")
    if r["pred"] is None:
        return html.Tr([html.Td(name), html.Td("no outputs", colSpan=3, className="hint")])
    mark = "✓" if r["correct"] else "✗"
    top = ", ".join(f"{c} {p:.0%}" for c, p in r["top"])
    return html.Tr([html.Td(name), html.Td(f"{mark} {r['pred']}", className="ok" if r["correct"] else "bad"),
                    html.Td(behavior_cells.format_number(r["true_prob"], ".2f")), html.Td(top)])
