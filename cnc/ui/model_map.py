"""Model Map: the experiment forest drawn with dash-cytoscape on preset (Python-computed) positions.

Elements are compact. Node ids are stable hashes of model ids (`node_id`), never positions: a
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
from functools import lru_cache

import dash_cytoscape as cyto
from dash import Input, Output, dcc, html

from cnc.analysis.encoding import colors, size_missing, sizes, tooltips
from cnc.analysis.layout import MODES, forest_layout
from cnc.experiment import Experiment
from cnc.ui.ids import cid
from cnc.ui.inputs import items, mapping

GRAPH = cid("map", "graph")
MODE = cid("map", "mode")
TOOLTIP = cid("map", "tooltip")
SYNCED = cid("map", "synced")
FIT = cid("map", "fit")
VIEWED = cid("map", "viewed")
MAP_CLASS = "cnc-model-map"
MODE_LABELS = {"step": "By step", "op": "By operation"}
DX, DY = 160, 38  # grid spacing in model px
NODE_PX = (10.0, 30.0)  # node diameter range of the size encoding
MIN_FIT_ZOOM = 0.5  # below this the whole map is not readable: start at this zoom, top-left
PAD = 24
MAX_LABEL = 22

STYLESHEET = [
    {"selector": "node[c]", "style": {
        "width": "data(s)", "height": "data(s)", "background-color": "data(c)",
        "label": "data(label)", "font-size": 11, "color": "#333", "text-valign": "bottom",
        "text-margin-y": 3, "min-zoomed-font-size": 5, "border-width": 1, "border-color": "#ffffff",
        "overlay-opacity": 0, "text-max-width": 140, "text-wrap": "ellipsis",
    }},
    # No size value: a hollow dashed ring of the middle size (never the size of the smallest value).
    {"selector": "node[?m]", "style": {
        "background-opacity": 0, "border-width": 2.5, "border-style": "dashed", "border-color": "data(c)",
    }},
    {"selector": "node:selected", "style": {"border-width": 4, "border-color": "#d62728"}},
    {"selector": "node.off", "style": {"opacity": 0.2}},
    {"selector": "node.head", "style": {
        "shape": "round-rectangle", "background-opacity": 0, "border-width": 0, "width": 140, "height": 18,
        "label": "data(label)", "font-size": 13, "font-weight": "bold", "color": "#555",
        "text-valign": "center", "events": "no",
        "min-zoomed-font-size": 4,
    }},
    {"selector": "edge", "style": {
        "curve-style": "taxi", "taxi-direction": "rightward", "taxi-turn": 26, "taxi-turn-min-distance": 4,
        "width": "data(w)", "line-fill": "linear-gradient", "line-gradient-stop-colors": "data(g)",
        "opacity": 0.75,
    }},
    {"selector": "edge.off", "style": {"opacity": 0.12}},
]


@lru_cache(maxsize=65536)
def node_id(model_id: str) -> str:
    """A model's node id: "n" + 16 hex digits of its id's hash (stable across reloads)."""
    return "n" + hashlib.blake2b(model_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def elements(exp: Experiment, mode: str, color: str | None, size: str | None,
             enabled: set[str] | None) -> list[dict]:
    """Cytoscape elements: column headers, one node per model, one edge per base link.

    The element set is the same for every mode, encoding and filter (unused headers are blank),
    because dash-cytoscape reports a removed element as a selection change. Selection state is
    not part of the elements: the clientside sync applies it (so cytoscape emits its events).
    """
    lay = forest_layout(exp, mode)
    n_heads = max(len(forest_layout(exp, m).columns) for m in MODES)
    node_colors, node_sizes, tips = colors(exp, color), sizes(exp, size, *NODE_PX), tooltips(exp)
    hollow = size_missing(exp, size)
    index = {mid: i for i, mid in enumerate(exp.models)}
    nodes = [node_id(mid) for mid in exp.models]
    labels = lay.columns + [""] * (n_heads - len(lay.columns))
    out: list[dict] = [
        {"data": {"id": f"h{j}", "label": label}, "position": {"x": j * DX, "y": -DY},
         "classes": "head" if label else "head blank", "selectable": False}
        for j, label in enumerate(labels)
    ]
    edges: list[dict] = []
    for i, (mid, model) in enumerate(exp.models.items()):
        col, row = lay.positions[mid]
        on = enabled is None or mid in enabled
        data = {"id": nodes[i], "mid": mid, "label": _short(model.label), "c": node_colors[i],
                "s": node_sizes[i], "tip": "\n".join(tips[i])}
        if hollow[i]:
            data["m"] = 1
        out.append({"data": data,
                    "position": {"x": col * DX, "y": round(row * DY, 1)},
                    "selectable": on, "classes": "" if on else "off"})
        if model.base is not None:
            p = index[model.base]
            base_on = enabled is None or model.base in enabled
            edges.append({"data": {"id": "e" + nodes[i][1:], "source": nodes[p], "target": nodes[i],
                                   "g": f"{node_colors[p]} {node_colors[i]}",
                                   "w": round((node_sizes[p] + node_sizes[i]) / 16, 1)},
                          "classes": "" if on and base_on else "off"})
    return out + edges


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
    level when the fit is too small (see `_VIEW_JS`). The mode is part of the dict so that a mode
    change is a new layout (cytoscape re-runs a layout only when its options change)."""
    mode = mode if mode in MODES else "step"
    return {"name": "preset", "fit": True, "padding": PAD, "animate": False, "cncMode": mode}


def mode_control(mode: str) -> html.Div:
    return html.Div([
        html.Span("Map columns", className="control-label"),
        dcc.RadioItems(id=MODE, options=[{"label": MODE_LABELS[m], "value": m} for m in MODES],
                       value=mode, inline=True, className="segmented"),
    ], className="control")


def component(exp: Experiment, mode: str, color: str | None, size: str | None,
              enabled: set[str] | None) -> html.Div:
    return html.Div([
        cyto.Cytoscape(
            id=GRAPH, className=MAP_CLASS, elements=elements(exp, mode, color, size, enabled),
            layout=graph_layout(exp, mode), stylesheet=STYLESHEET, boxSelectionEnabled=True,
            autoungrabify=True, autoRefreshLayout=False, clearOnUnhover=True, minZoom=0.05, maxZoom=3,
            style={"width": "100%", "height": "100%"},
        ),
        html.Div(id=TOOLTIP, className="map-tooltip", style={"display": "none"}),
        html.Button("Fit", id=FIT, className="map-fit", title="Zoom to show the whole map"),
        dcc.Store(id=SYNCED),
        dcc.Store(id=VIEWED),
    ], className="map-box")


# Position the hover card next to the hovered node (text only: children is a plain string).
_HOVER_JS = """
function(d) {
    if (!d || !d.tip) { return ["", {"display": "none"}]; }
    var box = document.querySelector('.%(cls)s');
    var cy = box && box._cyreg && box._cyreg.cy;
    var left = 12, top = 12;
    if (cy) {
        var n = cy.getElementById(d.id);
        if (n && n.length) {
            var p = n.renderedPosition();
            left = Math.max(4, Math.min(p.x + 18, box.clientWidth - 250));
            top = p.y + 14 > box.clientHeight - 110 ? Math.max(4, p.y - 110) : p.y + 14;
        }
    }
    return [d.tip, {"display": "block", "left": left + "px", "top": top + "px"}];
}
""" % {"cls": MAP_CLASS}

# Apply the shared selection to cytoscape's own selection state (no round trip, no payload).
_SYNC_JS = """
function(selection, elements) {
    if (!elements) { return window.dash_clientside.no_update; }
    var index = {}, last = null;
    elements.forEach(function(e) { if (e.data && e.data.mid !== undefined) { index[e.data.mid] = e.data.id; last = e.data.id; } });
    var want = {};
    (selection || []).forEach(function(m) { if (index[m]) { want[index[m]] = true; } });
    // After a page re-render (a pasted link, back/forward) or new elements (a model logged meanwhile)
    // cytoscape may not hold the nodes yet: retry briefly until it does, then apply the selection.
    var apply = function(attempt) {
        var box = document.querySelector('.%(cls)s');
        var cy = box && box._cyreg && box._cyreg.cy;
        if (!cy || (last !== null && !cy.getElementById(last).length)) {
            if (attempt < 40) { setTimeout(function() { apply(attempt + 1); }, 100); }
            return;
        }
        // Cytoscape caches its container's page position and refreshes it only on scroll/resize, so
        // content shifting above the map (filter cards, notices) would make clicks hit the wrong node.
        var refresh = function() { var c = box._cyreg && box._cyreg.cy; if (c) { c.renderer().invalidateContainerClientCoordsCache(); } };
        if (!box._cncCoords) {
            box._cncCoords = true;
            ['mouseover', 'mousedown', 'wheel', 'touchstart'].forEach(function(t) { box.addEventListener(t, refresh, true); });
        }
        refresh();
        cy.batch(function() {
            cy.nodes(':selected').forEach(function(n) {
                if (want[n.id()]) { return; }
                // A node that failed a filter is already unselectable, and cytoscape ignores
                // unselect() on it: lift that for the call.
                var locked = !n.selectable();
                if (locked) { n.selectify(); }
                n.unselect();
                if (locked) { n.unselectify(); }
            });
            Object.keys(want).forEach(function(id) {
                var n = cy.getElementById(id);
                if (n.length && !n.selected()) { n.select(); }
            });
        });
    };
    apply(0);
    return (selection || []).length;
}
""" % {"cls": MAP_CLASS}


# The initial view (and the view after each relayout, e.g. a new column mode): the whole map if it
# is readable so, else a readable zoom at the top-left. The Fit button always fits the whole map.
_VIEW_JS = """
function(layout, fitClicks) {
    var fitOnly = (window.dash_clientside.callback_context.triggered || []).some(function(t) {
        return t.prop_id.indexOf('.n_clicks') > 0; });
    var view = function(cy, force) {
        var all = cy.elements().not('.blank');  // blank headers pad the other mode's columns
        if (!all.length) { return; }
        cy.fit(all, %(pad)d);
        if (force || cy.zoom() >= %(min_zoom)s) { return; }
        var bb = all.boundingBox(), z = Math.min(%(min_zoom)s, cy.maxZoom());
        cy.zoom(z);
        cy.pan({x: %(pad)d - bb.x1 * z, y: %(pad)d - bb.y1 * z});
    };
    var apply = function(attempt) {
        var box = document.querySelector('.%(cls)s');
        var cy = box && box._cyreg && box._cyreg.cy;
        if (!cy || !cy.nodes().length) {
            if (attempt < 50) { setTimeout(function() { apply(attempt + 1); }, 100); }
            return;
        }
        if (fitOnly) { view(cy, true); return; }
        if (!cy._cncView) {  // once per cytoscape instance: every later layout run (mode change)
            cy._cncView = true;
            cy.on('layoutstop', function() { view(cy, false); });
        }
        view(cy, false);
    };
    apply(0);
    return window.dash_clientside.no_update;
}
""" % {"cls": MAP_CLASS, "pad": PAD, "min_zoom": MIN_FIT_ZOOM}


def register(app, selection_id: dict) -> None:
    app.clientside_callback(_VIEW_JS, Output(VIEWED, "data"), Input(GRAPH, "layout"), Input(FIT, "n_clicks"))
    app.clientside_callback(_HOVER_JS, Output(TOOLTIP, "children"), Output(TOOLTIP, "style"),
                            Input(GRAPH, "mouseoverNodeData"), prevent_initial_call=True)
    app.clientside_callback(_SYNC_JS, Output(SYNCED, "data"),
                            Input(selection_id, "data"), Input(GRAPH, "elements"))
