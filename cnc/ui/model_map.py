"""Model Map: the experiment forest drawn with dash-cytoscape on preset (Python-computed) positions.

The server sends the map as compact per-model columns (`map_data`), and only the columns a
control changed (a Dash `Patch`): the browser builds the cytoscape elements from them
(assets/model_map.js). Tooltip text is fetched for the hovered model only. Node ids are stable hashes of model ids (`node_id`), never positions: a
model logged while the page is open, or a reordered experiment, never shifts which node is which,
and cytoscape selectors never see user-provided text (each node carries its model id as data, for
the clientside selection sync). Tooltips are plain text rendered as text. Selection is
shared through the overview's selection store; a clientside callback applies it to the live
cytoscape instance (a selection change costs no payload and no server round trip for the map),
and cytoscape's own events report the user's clicks and box selections back.

The initial view is chosen in the browser, where the real viewport is known: the whole map when it
fits at a readable zoom, else a readable zoom at its top-left corner. A "Fit" button always shows
the whole map.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import dash_cytoscape as cyto
from dash import ClientsideFunction, Input, Output, State, dcc, html

from cnc.analysis.encoding import model_index
from cnc.analysis.encoding import tooltip as tooltip_lines
from cnc.analysis.map_positions import MODES, forest_layout, per_experiment
from cnc.analysis.short_labels import sibling_labels
from cnc.experiment.forest import Experiment
from cnc.ui import legend
from cnc.ui.ids import cid
from cnc.ui.inputs import items, mapping

GRAPH = cid("map", "graph")
MODE = cid("map", "mode")
TOOLTIP = cid("map", "tooltip")
SYNCED = cid("map", "synced")
FIT = cid("map", "fit")
VIEWED = cid("map", "viewed")
DATA = cid("map", "data")
KEY = cid("map", "key")
TIP = cid("map", "tip")
CYTO_TESTED = "1.0"  # dash-cytoscape series whose internals assets/cyto_bridge.js was checked against
MAP_CLASS = "cnc-model-map"
MODE_LABELS = {"step": "By step", "op": "By operation"}
DX, DY = 160, 38  # grid spacing in model px
NODE_PX = (10.0, 30.0)  # node diameter range of the size encoding
MIN_FIT_ZOOM = 0.5  # below this the whole map is not readable: start at this zoom, top-left
PAD = 24
MAX_LABEL = 22
# Shorter labels for a map zoomed out: the browser shows the longest that fits between two columns
# at the current zoom, at a font never under LABEL_PX on screen, and none where rows are too close.
SHORT_LABELS = (16, 12)
LABEL_PX = 11
HEAD_W, HEAD_H = 140, 18  # a column title's box
LABEL_FONT = '-apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'  # the page's (app.css)

STYLESHEET = [
    {"selector": "node[c]", "style": {
        "width": "data(s)", "height": "data(s)", "background-color": "data(c)",
        # right of the node, just above its outgoing edge (cncMap picks the text and sets the size
        # and margins per zoom)
        "label": "data(lt)", "font-size": LABEL_PX, "font-family": LABEL_FONT, "color": "#333", "text-halign": "right",
        "text-valign": "center", "text-margin-x": 2, "text-margin-y": -8, "border-width": 1,
        "border-color": "#ffffff", "overlay-opacity": 0, "text-max-width": DX - NODE_PX[1], "text-wrap": "ellipsis",
        "text-background-color": "#ffffff", "text-background-opacity": 0.85, "text-background-padding": 1,
    }},
    # No size value: a hollow dashed ring of the middle size (never the size of the smallest value).
    {"selector": "node[?m]", "style": {
        "background-opacity": 0, "border-width": 2.5, "border-style": "dashed", "border-color": "data(c)",
    }},
    {"selector": "node:selected", "style": {"border-width": 4, "border-color": "#d62728"}},
    {"selector": "node.off", "style": {"opacity": 0.2}},
    {"selector": "node.head", "style": {
        "shape": "round-rectangle", "background-opacity": 0, "border-width": 0, "width": HEAD_W, "height": HEAD_H,
        "label": "data(label)", "font-size": 13, "font-weight": "bold", "color": "#555",
        "text-valign": "center", "events": "no",
        "min-zoomed-font-size": 4,
    }},
    {"selector": "edge", "style": {
        "curve-style": "taxi", "taxi-direction": "rightward", "taxi-turn": 26, "taxi-turn-min-distance": 4,
        "opacity": 0.75,
    }},
    {"selector": "edge[g]", "style": {
        "width": "data(w)", "line-fill": "linear-gradient", "line-gradient-stop-colors": "data(g)",
    }},
    {"selector": "edge.off", "style": {"opacity": 0.12}},
]
# From this many models edges are plain grey lines of one width: gradient edges cost cytoscape
# about a second per redraw at 5,000 models (measured in Chromium), and edges that follow the
# encodings double what a colour or size change restyles (5,000 edges on top of 5,000 nodes).
PLAIN_EDGES_FROM = 1000
PLAIN_EDGES = {"selector": "edge", "style": {"line-color": "#b0b0b0", "width": 1.2}}


def plain_edges(n_models: int) -> bool:
    return n_models >= PLAIN_EDGES_FROM


def stylesheet(n_models: int) -> list[dict]:
    return STYLESHEET + ([PLAIN_EDGES] if plain_edges(n_models) else [])


@lru_cache(maxsize=65536)
def node_id(model_id: str) -> str:
    """A model's node id: "n" + 16 hex digits of its id's hash (stable across reloads)."""
    return "n" + hashlib.blake2b(model_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@per_experiment
def _identity(exp: Experiment) -> dict:
    """The parts of the map data that only change with the experiment, and their fingerprint."""
    index = model_index(exp)
    data = {"id": [node_id(mid) for mid in exp.models], "mid": list(exp.models),
            "label": list(sibling_labels(exp, MAX_LABEL).values()),  # the full recipe is in the hover card
            "short": [list(sibling_labels(exp, width).values()) for width in SHORT_LABELS],
            "base": [-1 if m.base is None else index[m.base] for m in exp.models.values()]}
    digest = hashlib.blake2b(json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass"),
                             digest_size=8).hexdigest()
    del data["mid"]  # the browser takes the model ids from the VALUES store
    return {"key": digest, "data": data}


def experiment_key(exp: Experiment) -> str:
    return _identity(exp)["key"]


@per_experiment
def _positions(exp: Experiment, mode: str) -> dict:
    lay = forest_layout(exp, mode)
    n_heads = max(len(forest_layout(exp, m).columns) for m in MODES)
    cols_rows = [lay.positions[mid] for mid in exp.models]
    return {"x": [c * DX for c, _ in cols_rows], "y": [round(r * DY, 1) for _, r in cols_rows],
            "heads": lay.columns + [""] * (n_heads - len(lay.columns))}


def map_data(exp: Experiment, mode: str, parts: tuple[str, ...] | None = None) -> dict:
    """The map as compact columns (one entry per model, experiment order) that the browser turns
    into cytoscape elements (`cncMap.elements` in assets/model_map.js): node ids, labels and
    base indices (fixed per experiment, with its `key`; `plain`: edges drawn plain, not
    following the encodings, in large experiments; `px` the node size range) and positions per `mode` (`x`, `y`, column
    `heads`; `short`: the labels cut to each of SHORT_LABELS' widths, for a map zoomed out;
    `label_px`: the smallest font size of a label on screen,
    `label_font` the labels' font, which the browser measures them in; `head` a column title's box). The browser adds the model ids (`mid`), the encodings (`c` colour, `s` size, `m`
    indices drawn hollow) and `off` (indices failing the filters), from the VALUES store
    (`cncMap.encode`).
    `parts=("layout",)`: the positions only (a mode change). Tooltips are not here: they are
    fetched for the hovered model (`tooltip`)."""
    out: dict = {}
    if parts is None:
        ident = _identity(exp)
        out.update(ident["data"], key=ident["key"], dx=DX, dy=DY, px=list(NODE_PX), plain=plain_edges(len(exp.models)),
                   label_px=LABEL_PX, label_font=LABEL_FONT, head=[HEAD_W, HEAD_H])
    mode = mode if mode in MODES else "step"
    out.update(_positions(exp, mode), mode=mode)
    return out


def tooltip(exp: Experiment, node: dict | None) -> dict:
    """The hover card of one node (`mouseoverNodeData`): its id and plain-text lines."""
    mid = mapping(node).get("mid")
    if not isinstance(mid, str) or mid not in exp.models:
        return {"id": None, "tip": None}
    return {"id": node_id(mid), "tip": "\n".join(tooltip_lines(exp, mid))}


def node_models(exp: Experiment, node_data: list[dict] | None) -> list[str]:
    """Model ids of cytoscape node data dicts, found by node id in the current experiment
    (headers, junk and nodes of models no longer there are ignored)."""
    wanted = [n for n in (mapping(d).get("id") for d in items(node_data)) if isinstance(n, str)]
    if not wanted:
        return []
    lookup = {node_id(mid): mid for mid in exp.models}
    return list(dict.fromkeys(lookup[n] for n in wanted if n in lookup))


def graph_layout(exp: Experiment, mode: str) -> dict:
    """Place nodes at their preset positions and fit them; the browser then zooms in to a readable
    level when the fit is too small (`cncMap.view`). The mode is part of the dict so that a mode
    change is a new layout (cytoscape re-runs a layout only when its options change)."""
    mode = mode if mode in MODES else "step"
    return {"name": "preset", "fit": True, "padding": PAD, "animate": False, "cncMode": mode,
            "cncMinZoom": MIN_FIT_ZOOM}


def mode_control(mode: str) -> html.Div:
    return html.Div([
        html.Span("Map columns", className="control-label"),
        dcc.RadioItems(id=MODE, options=[{"label": MODE_LABELS[m], "value": m} for m in MODES],
                       value=mode, inline=True, className="segmented"),
    ], className="control")


def layout(exp: Experiment, mode: str) -> dcc.Loading:
    """The map box; the elements are built in the browser from the DATA store. A redraw that takes
    the server more than ~300 ms shows a spinner over the (still visible) map."""
    data = map_data(exp, mode)
    box = html.Div([
        cyto.Cytoscape(
            id=GRAPH, className=MAP_CLASS, elements=[],
            layout=graph_layout(exp, mode), stylesheet=stylesheet(len(exp.models)), boxSelectionEnabled=True,
            autoungrabify=True, autoRefreshLayout=False, clearOnUnhover=True, minZoom=0.05, maxZoom=3,
            style={"width": "100%", "height": "100%"},
        ),
        html.Div(id=TOOLTIP, className="map-tooltip", style={"display": "none"}),
        html.Button("Fit", id=FIT, className="map-fit", title="Zoom to show the whole map"),
        dcc.Store(id=DATA, data=data),
        dcc.Store(id=KEY, data=data["key"]),
        dcc.Store(id=TIP),
        dcc.Store(id=SYNCED),
        dcc.Store(id=VIEWED),
    ], className="map-box", **{"data-cyto-version": cyto.__version__, "data-cyto-tested": CYTO_TESTED})
    return dcc.Loading(box, type="circle", delay_show=300, className="map-loading",
                       overlay_style={"visibility": "visible", "opacity": 0.55})


def _js(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="cncMap", function_name=name)


def register(app, selection_id: dict, filters_id: dict) -> None:
    """Clientside callbacks live in assets/model_map.js; the only code that touches
    dash-cytoscape's internals is assets/cyto_bridge.js. A colour, size or filter change is
    encoded in the browser (`encode`: the DATA store's `c`, `s`, `m`, `off` columns from the
    VALUES store and the filters as drawn, `filters_id`); the server writes DATA only for a new
    experiment or column mode."""
    app.clientside_callback(_js("encode"), Output(DATA, "data"),
                            Input(legend.COLOR, "value"), Input(legend.SIZE, "value"), Input(filters_id, "data"),
                            Input(legend.VALUES, "data"), State(DATA, "data"))
    app.clientside_callback(_js("elements"), Output(GRAPH, "elements"), Output(GRAPH, "layout"),
                            Input(DATA, "data"), State(GRAPH, "layout"))
    app.clientside_callback(_js("view"), Output(VIEWED, "data"), Input(GRAPH, "layout"), Input(FIT, "n_clicks"))
    app.clientside_callback(_js("hover"), Output(TOOLTIP, "children"), Output(TOOLTIP, "style"),
                            Input(TIP, "data"), Input(GRAPH, "mouseoverNodeData"), prevent_initial_call=True)
    app.clientside_callback(_js("sync"), Output(SYNCED, "data"),
                            Input(selection_id, "data"), Input(GRAPH, "elements"))
