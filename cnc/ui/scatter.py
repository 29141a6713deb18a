"""Model Scatterplot: any metric against any other, the map's encodings, the Pareto front.

The browser draws the figure (assets/scatter.js) from the per-model values it holds (the
VALUES store, cnc/ui/legend.py): the page serves empty traces, and an axis, colour, size,
filter or selection change restyles the traces it changes (a Dash Patch of the figure) with no
server round trip. Traces: 0 models failing the filters (faint), 1 models passing them (the
only selectable trace), 2 the Pareto front step line (cnc.analysis.pareto's rule). Circles drawn
as layout shapes outline the selected models (plotly redraws shapes without recomputing the
traces: a selection change costs no replot of thousands of points); the outline, not plotly's
dimming, marks them (so unselected ones keep full opacity and never look filtered out). Models without a size value are
drawn as hollow rings of the middle size. Large experiments use WebGL. Figures carry no hover
text: the server renders the hovered model's card.
"""
from __future__ import annotations

import json

from dash import Input, Output, State, dcc, html, no_update

from cnc.analysis.encoding import tooltip
from cnc.analysis.recipe_text import model_name, model_title
from cnc.analysis.short_labels import distinct_labels
from cnc.experiment.forest import Experiment
from cnc.server.context import AppContext
from cnc.ui import download
from cnc.ui.ids import cid
from cnc.ui.inputs import ids, items, mapping
from cnc.ui.legend import COLOR, SIZE, VALUES, metric_options, metric_picker

GRAPH = cid("scatter", "graph")
X = cid("scatter", "x")
Y = cid("scatter", "y")
FRONT = cid("scatter", "front")
FRONT_IDS = cid("scatter", "front-ids")
SELECT_FRONT = cid("scatter", "select-front")
TOOLTIP = cid("scatter", "tooltip")
WEBGL_FROM = 500
SELECTED_COLOR = "#d62728"
MIN_PX, MAX_PX = 7.0, 22.0
MISSING_LINE = 2.0  # ring width of a model without a size value
# Plotly dims points outside a box selection; ours are outlined instead (layout shapes).
NO_DIM = {"selected": {"marker": {"opacity": 1}}, "unselected": {"marker": {"opacity": 1}}}


def figure(exp: Experiment) -> dict:
    """The figure as the page first serves it: empty traces, drawn by the browser (`draw`)."""
    kind = "scattergl" if len(exp.models) >= WEBGL_FROM else "scatter"
    data = [{"type": kind, "mode": "markers", "name": name, "x": [], "y": [], "hoverinfo": "none", **NO_DIM}
            for name in ("filtered out", "models")]
    data.append({"type": "scatter", "mode": "lines", "name": "Pareto front", "x": [], "y": [], "hoverinfo": "skip"})
    layout = {"shapes": [],
        "margin": {"l": 64, "r": 12, "t": 8, "b": 48}, "showlegend": False, "hovermode": "closest",
        "dragmode": "select", "clickmode": "event",
        "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
        "xaxis": {"zeroline": False, "gridcolor": "#eee"}, "yaxis": {"zeroline": False, "gridcolor": "#eee"},
        "hoverlabel": {"bgcolor": "#fff", "font": {"size": 12}},
    }
    return {"data": data, "layout": layout}


def hover_card(exp: Experiment, hover: dict | None) -> tuple[bool, dict | None, list]:
    """(show, bbox, lines) of the hover card for the hovered model only: figures carry no hover
    text (it was half of a 5,000-model figure). Text is rendered as text."""
    point = mapping((items(mapping(hover).get("points")) or [None])[0])
    mid = point.get("customdata")
    if not isinstance(mid, str) or mid not in exp.models or point.get("curveNumber") not in (0, 1):
        return False, no_update, no_update
    return True, mapping(point.get("bbox")), [html.Div(line) for line in tooltip(exp, mid)]


def is_user_selection(selected_data: dict | None) -> bool:
    """Did the user draw this selection? A box or lasso carries its shape (and maybe points); the
    empty selection plotly reports when a redraw drops its box carries neither."""
    if not isinstance(selected_data, dict):
        return False
    return bool(selected_data.get("points")) or "range" in selected_data or "lassoPoints" in selected_data


def selected_points(exp: Experiment, selected_data: dict | None) -> list[str]:
    """Model ids of a plotly box/lasso selection, taken from the selectable trace only."""
    out = []
    for pt in items(mapping(selected_data).get("points")):
        pt = mapping(pt)
        mid = pt.get("customdata")
        if pt.get("curveNumber") == 1 and isinstance(mid, str) and mid in exp.models:
            out.append(mid)
    return out


CHIP_WIDTH = 32  # characters of a Pareto chip's label


def front_list(exp: Experiment, front_ids: list[str]) -> list:
    if not front_ids:
        return [html.Span("No Pareto front: no model has both values.", className="hint")]
    # long names (the original files' "resnet50trained-magnitudepruning50_compressed-…") are
    # shortened where they are alike, so chips side by side keep what tells them apart
    labels = distinct_labels({m: model_name(exp.models[m]) for m in front_ids}, CHIP_WIDTH)
    chips = [html.Span(labels[m], className="chip", title=model_title(exp, m)) for m in front_ids]
    return [html.Span(f"Pareto front ({len(front_ids)}):", className="front-title"), *chips]


def layout(exp: Experiment, x: str | None, y: str | None) -> html.Div:
    opts = metric_options(exp)
    return html.Div([
        html.Div([metric_picker("x", X, opts, x), metric_picker("y", Y, opts, y)], className="controls compact"),
        dcc.Graph(id=GRAPH, figure=figure(exp),
                  config=download.graph_config("scatterplot", modeBarButtonsToRemove=["autoScale2d"]),
                  className="scatter-graph", clear_on_unhover=True),
        dcc.Tooltip(id=TOOLTIP, className="scatter-tooltip", direction="right"),
        html.Div([html.Div(id=FRONT, className="front-list"),
                  html.Button("Select front", id=SELECT_FRONT, className="btn small")],
                 className="front-row"),
        dcc.Store(id=FRONT_IDS, data=[]),
    ], className="scatter-box")


# Drawing settings of assets/scatter.js.
SETTINGS = {"selected": SELECTED_COLOR, "px": [MIN_PX, MAX_PX], "missingLine": MISSING_LINE,
            "noDim": NO_DIM}


def register(app, ctx: AppContext, selection_id: dict, filters_id: dict) -> None:
    """The figure is drawn in the browser (assets/scatter.js) from the VALUES store: axes,
    encodings, the filters as drawn (`filters_id`) and the selection (`selection_id`) restyle
    the traces they change, and the Pareto front is found there too. The server renders the
    front's chips and the hover card of the hovered model."""
    settings = json.dumps(SETTINGS)
    # The selection is a State of `draw` and an Input of `outline` only: a filter change also
    # makes the server check the selection, and dash-renderer would hold back a callback with the
    # selection as an Input until that round trip ends.
    app.clientside_callback(
        "function() { return window.dash_clientside.cncScatter.draw(" + settings
        + ", Array.prototype.slice.call(arguments)); }",
        Output(GRAPH, "figure"), Output(FRONT_IDS, "data"), Output(GRAPH, "config"),
        Input(X, "value"), Input(Y, "value"), Input(COLOR, "value"), Input(SIZE, "value"),
        Input(filters_id, "data"), Input(VALUES, "data"),
        State(GRAPH, "figure"), State(selection_id, "data"), State(GRAPH, "config"))
    app.clientside_callback(
        "function(selection, figure) { return window.dash_clientside.cncScatter.outline(" + settings
        + ", selection, figure); }",
        Output(GRAPH, "figure", allow_duplicate=True), Input(selection_id, "data"), State(GRAPH, "figure"),
        prevent_initial_call=True)

    @app.callback(Output(FRONT, "children"), Input(FRONT_IDS, "data"))
    def show_front(front_ids):
        exp = ctx.experiment
        return front_list(exp, ids(front_ids, exp.models))

    @app.callback(Output(TOOLTIP, "show"), Output(TOOLTIP, "bbox"), Output(TOOLTIP, "children"),
                  Input(GRAPH, "hoverData"), prevent_initial_call=True)
    def scatter_tooltip(hover):
        return hover_card(ctx.experiment, hover)
