"""Model Scatterplot: any metric against any other, the map's encodings, the Pareto front.

Figures are plain dicts (no plotly.graph_objects validation: it costs tens of ms per figure at a
thousand points). Traces: 0 models failing the filters (faint), 1 models passing them (the only
selectable trace), 2 the Pareto front step line, 3 the selection outline. A selection change
patches trace 3 only; the selection outline, not plotly's dimming, marks selected models (so
unselected ones keep full opacity and never look filtered out). Models without a size value are
drawn as hollow rings of the middle size. Large experiments use WebGL.
"""
from __future__ import annotations

from dash import Patch, dcc, html, no_update

from cnc.analysis.encoding import colors, size_missing, sizes, tooltip
from cnc.analysis.map_positions import per_experiment
from cnc.analysis.pareto import pareto_front, step_shape
from cnc.analysis.recipe_text import model_name
from cnc.experiment.forest import Experiment, is_missing
from cnc.ui import download
from cnc.ui.ids import cid
from cnc.ui.inputs import items, mapping
from cnc.ui.legend import metric_options, metric_picker

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
# Plotly dims points outside a box selection; ours are outlined instead (trace 3).
NO_DIM = {"selected": {"marker": {"opacity": 1}}, "unselected": {"marker": {"opacity": 1}}}


def _axis_title(exp: Experiment, name: str | None) -> str:
    m = exp.metrics.get(name) if name else None
    if m is None:
        return ""
    arrow = "higher is better" if m.higher_is_better else "lower is better"
    return f"{m.name}{f' ({m.unit})' if m.unit else ''} — {arrow}"


@per_experiment
def _xy(exp: Experiment, x: str | None, y: str | None) -> list[tuple[str, float, float]]:
    out = []
    for mid, m in exp.models.items():
        xv, yv = m.metrics.get(x), m.metrics.get(y)
        if not (is_missing(xv) or is_missing(yv)):
            out.append((mid, xv, yv))
    return out


def front(exp: Experiment, x: str | None, y: str | None, enabled: set[str] | None) -> list[str]:
    """Pareto front among the models passing the filters."""
    if x not in exp.metrics or y not in exp.metrics:
        return []
    pts = [p for p in _xy(exp, x, y) if enabled is None or p[0] in enabled]
    return pareto_front(pts, exp.metrics[x].higher_is_better, exp.metrics[y].higher_is_better)


def figure(exp: Experiment, x: str | None, y: str | None, color: str | None, size: str | None,
           enabled: set[str] | None, selection: list[str], front_ids: list[str]) -> dict:
    kind = "scattergl" if len(exp.models) >= WEBGL_FROM else "scatter"
    pos = {mid: i for i, mid in enumerate(exp.models)}
    cols, szs = colors(exp, color), sizes(exp, size, MIN_PX, MAX_PX)
    hollow = size_missing(exp, size)
    pts = _xy(exp, x, y)
    on = [p for p in pts if enabled is None or p[0] in enabled]
    off = [p for p in pts if not (enabled is None or p[0] in enabled)]

    def trace(points, name, alpha, line_width, line_color):
        # Transparency is baked into the colours: WebGL traces blend a scalar opacity poorly.
        idx = [pos[p[0]] for p in points]
        marker = {"color": [_rgba(cols[i], alpha) for i in idx], "size": [szs[i] for i in idx],
                  "line": {"width": line_width, "color": line_color}}
        if any(hollow[i] for i in idx):  # an open symbol's ring takes the marker colour
            marker["symbol"] = ["circle-open" if hollow[i] else "circle" for i in idx]
            marker["line"]["width"] = [MISSING_LINE if hollow[i] else line_width for i in idx]
        return {"type": kind, "mode": "markers", "name": name, "x": [p[1] for p in points],
                "y": [p[2] for p in points], "customdata": [p[0] for p in points], "hoverinfo": "none",
                "marker": marker, **NO_DIM}

    xy = {p[0]: p for p in pts}
    fx = [xy[m][1] for m in front_ids if m in xy]
    fy = [xy[m][2] for m in front_ids if m in xy]
    x_hib = exp.metrics[x].higher_is_better if x in exp.metrics else False
    data = [
        trace(off, "filtered out", 0.2, 0, "#ffffff"),
        trace(on, "models", 1.0, 0.6, "#ffffff"),
        {"type": "scatter", "mode": "lines", "name": "Pareto front", "x": fx, "y": fy, "hoverinfo": "skip",
         "line": {"shape": step_shape(x_hib), "color": "#444", "width": 1.5, "dash": "dot"}},
        selection_trace(exp, x, y, size, selection, kind),
    ]
    layout = {
        "margin": {"l": 64, "r": 12, "t": 8, "b": 48}, "showlegend": False, "hovermode": "closest",
        "dragmode": "select", "clickmode": "event", "uirevision": f"{x}|{y}",
        "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
        "xaxis": {"title": {"text": _axis_title(exp, x)}, "zeroline": False, "gridcolor": "#eee"},
        "yaxis": {"title": {"text": _axis_title(exp, y)}, "zeroline": False, "gridcolor": "#eee"},
        "hoverlabel": {"bgcolor": "#fff", "font": {"size": 12}},
    }
    return {"data": data, "layout": layout}


def _rgba(hex_color: str, alpha: float) -> str:
    if alpha >= 1:
        return hex_color
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def selection_trace(exp: Experiment, x: str | None, y: str | None, size: str | None,
                    selection: list[str], kind: str | None = None) -> dict:
    szs = sizes(exp, size, MIN_PX, MAX_PX)
    pos = {mid: i for i, mid in enumerate(exp.models)}
    pts = [(mid, exp.models[mid].metrics.get(x), exp.models[mid].metrics.get(y)) for mid in selection
           if mid in exp.models]
    pts = [p for p in pts if not (is_missing(p[1]) or is_missing(p[2]))]
    trace = {"mode": "markers", "name": "selected", "hoverinfo": "skip",
             "x": [p[1] for p in pts], "y": [p[2] for p in pts],
             "marker": {"size": [szs[pos[p[0]]] + 7 for p in pts], "color": "rgba(0,0,0,0)",
                        "line": {"color": SELECTED_COLOR, "width": 2.5}}, **NO_DIM}
    if kind:
        trace["type"] = kind
    return trace


def selection_patch(exp: Experiment, x: str | None, y: str | None, size: str | None, selection: list[str]) -> Patch:
    """Only the selection outline changes when the selection does."""
    patch = Patch()
    patch["data"][3].update(selection_trace(exp, x, y, size, selection))
    return patch


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


def _chip(name: str, width: int = 32) -> str:
    """Long ids (the original files' "resnet50trained-magnitudepruning50_compressed-…") are cut;
    the chip's title has the whole id."""
    return name if len(name) <= width else name[: width - 1] + "…"


def front_list(exp: Experiment, front_ids: list[str]) -> list:
    if not front_ids:
        return [html.Span("No Pareto front: no model has both values.", className="hint")]
    chips = [html.Span(_chip(model_name(exp.models[m])), className="chip", title=m) for m in front_ids]
    return [html.Span(f"Pareto front ({len(front_ids)}):", className="front-title"), *chips]


def layout(exp: Experiment, x: str | None, y: str | None, color: str | None, size: str | None,
              enabled: set[str] | None, selection: list[str]) -> html.Div:
    opts = metric_options(exp)
    front_ids = front(exp, x, y, enabled)
    return html.Div([
        html.Div([metric_picker("x", X, opts, x), metric_picker("y", Y, opts, y)], className="controls compact"),
        dcc.Graph(id=GRAPH, figure=figure(exp, x, y, color, size, enabled, selection, front_ids),
                  config=download.graph_config("scatterplot", modeBarButtonsToRemove=["autoScale2d"]),
                  className="scatter-graph", clear_on_unhover=True),
        dcc.Tooltip(id=TOOLTIP, className="scatter-tooltip", direction="right"),
        html.Div([html.Div(front_list(exp, front_ids), id=FRONT, className="front-list"),
                  html.Button("Select front", id=SELECT_FRONT, className="btn small")],
                 className="front-row"),
        dcc.Store(id=FRONT_IDS, data=front_ids),
    ], className="scatter-box")
