"""The colour and size encodings shared by the map and the scatterplot: their pickers and legends."""
from __future__ import annotations

from dash import dcc, html

from cnc.analysis.encoding import MISSING_COLOR, color_scale, size_scale
from cnc.experiment.forest import Experiment, is_missing
from cnc.experiment.formatting import format_metric
from cnc.ui.ids import cid
from cnc.ui.inputs import one_of

COLOR = cid("encoding", "color")
SIZE = cid("encoding", "size")
LEGEND = cid("encoding", "legend")


def metric_options(exp: Experiment) -> list[dict]:
    return [{"label": f"{m.name} ({m.unit})" if m.unit else m.name, "value": m.name} for m in exp.metrics.values()]


def metric_picker(label: str, id_: dict, options: list[dict], value: str | None) -> html.Div:
    """A labelled metric dropdown (encodings, scatter axes)."""
    return html.Div([html.Span(label, className="control-label"),
                     dcc.Dropdown(id=id_, options=options, value=value, clearable=False, className="metric-pick")],
                    className="control")


def layout(exp: Experiment, color: str | None, size: str | None) -> list[html.Div]:
    opts = metric_options(exp)
    return [metric_picker("Colour", COLOR, opts, color), metric_picker("Size", SIZE, opts, size)]


def legend(exp: Experiment, color: str | None, size: str | None) -> list:
    return [_color_legend(exp, one_of(color, exp.metrics)), _size_legend(exp, one_of(size, exp.metrics))]


def _color_legend(exp: Experiment, color: str | None) -> html.Div:
    scale = color_scale(exp, color)
    if scale is None:
        return html.Div("Colour: no values", className="legend")
    m = scale.metric
    has_missing = any(is_missing(v) for v in exp.metric_values(m.name))
    better = "higher is better" if m.higher_is_better else "lower is better"
    return html.Div([
        html.Span(f"{m.name}", className="legend-title", title=better),
        html.Span(format_metric(m, scale.lo), className="legend-tick"),
        html.Span(className="legend-bar",
                  style={"background": f"linear-gradient(to right, {', '.join(scale.gradient())})"}),
        html.Span(format_metric(m, scale.hi), className="legend-tick"),
        html.Span(f"({better})", className="legend-note"),
        html.Span([html.Span(className="legend-swatch", style={"background": MISSING_COLOR}), "missing"],
                  className="legend-note") if has_missing else None,
    ], className="legend")


def _size_legend(exp: Experiment, size: str | None) -> html.Div:
    scale = size_scale(exp, size, 6, 22)
    if scale is None:
        return html.Div("Size: no values", className="legend")
    m = scale.metric
    values = [scale.lo, (scale.lo + scale.hi) / 2, scale.hi]
    items = []
    for v in values:
        px = scale.size(v)
        items.append(html.Span([html.Span(className="legend-dot", style={"width": f"{px}px", "height": f"{px}px"}),
                                format_metric(m, v)], className="legend-size"))
    if any(is_missing(v) for v in exp.metric_values(m.name)):
        px = scale.missing_px
        items.append(html.Span([html.Span(className="legend-dot missing", style={"width": f"{px}px", "height": f"{px}px"}),
                                "missing"], className="legend-size legend-note",
                               title="No value: drawn as a hollow dashed ring of the middle size"))
    return html.Div([html.Span(m.name, className="legend-title")] + items, className="legend")
