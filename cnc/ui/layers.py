"""Layers tab of the Performance Comparison page: models' internals module by module vs the base.

Rows are the module tree (collapsible), columns the selected models; a cell shows sparsity, or
the weight / activation distribution as a stacked histogram coloured by change vs the base.
Everything comes from cached summaries (`ctx.params`, `ctx.activations`); histograms are small
inline SVGs built in Python, so hundreds of rows x tens of models stay cheap to draw.
URL keys: `lmode`, `lsort`, `lsortby`, `lscale`, `lopen`.
"""
from __future__ import annotations

import base64
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update

from cnc.analysis import layers as L
from cnc.context import AppContext
from cnc.memo import Memo
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import ids, items, mapping, one_of, text
from cnc.urlstate import pick, split_list

COMPONENT = "layers"
MODE, SORT, SCALE = cid(COMPONENT, "mode"), cid(COMPONENT, "sort"), cid(COMPONENT, "scale")
SORTBY = cid(COMPONENT, "sort-by")
EXPAND, COLLAPSE = cid(COMPONENT, "expand-all"), cid(COMPONENT, "collapse-all")
OPEN, BODY = cid(COMPONENT, "open"), cid(COMPONENT, "body")
SCALES = ("sqrt", "linear")
DEFAULTS = {"lmode": "sparsity", "lsort": "tree", "lscale": "sqrt"}
MODE_LABELS = {"sparsity": "Sparsity", "weights": "Weight distribution", "activations": "Activation distribution"}
SORT_LABELS = {"tree": "Module tree", "change": "Most changed first", "spread": "Most different across models",
               "sparsity": "Most sparse first"}
COLORS = {"unchanged": "#a9b8c8", "small": "#f2b134", "large": "#e4572e", "zeroed": "#6a3d9a",
          "unknown": "#d4d4d4"}
BASE_COLOR = "#4c78a8"
SPARSITY_COLOR = "#b9a3dc"
LEGEND = {"unchanged": "unchanged", "small": "small change (≤10% of the base's RMS)",
          "large": "large change", "zeroed": "set to zero", "unknown": "not comparable / not sampled"}
SVG_W, SVG_H, SVG_UNITS = 120, 30, 60
N_CAT = len(L.CATEGORIES)
FLAT_LIMIT = 150  # rows of a sorted (flat) view
SORT_PHRASES = {"change": "most changed", "spread": "most differently changed", "sparsity": "sparsest"}
NO_TASK = ("This experiment has metrics only: it declares no task (model loader and evaluation data), so "
           "there are no weights or activations to compare. Add a `task` section to the config and run the "
           "precompute to use the Layers tab.")


# ---------------------------------------------------------------- state (URL) -----------------

def state_from_query(query: dict, notices: list[str]) -> dict:
    """The tab's view state from the URL; bad values are dropped with a notice."""
    raw_open = query.get("lopen")
    if raw_open is None:
        open_nodes: Any = None
    elif raw_open in ("*", "-"):
        open_nodes = raw_open
    else:
        open_nodes = split_list(raw_open)
    return {
        "mode": pick(query.get("lmode"), L.MODES, DEFAULTS["lmode"], notices, "lmode"),
        "sort": pick(query.get("lsort"), L.SORTS, DEFAULTS["lsort"], notices, "lsort"),
        "scale": pick(query.get("lscale"), SCALES, DEFAULTS["lscale"], notices, "lscale"),
        "open": open_nodes,
        "sortby": query.get("lsortby"),  # a model id; checked against the selection when drawn
    }


def url_params(state: dict) -> dict:
    """Query params of the tab (defaults omitted); `open` is None (default), '*', '-' or names."""
    out = {key: state[name] for key, name in (("lmode", "mode"), ("lsort", "sort"), ("lscale", "scale"))
           if state[name] != DEFAULTS[key]}
    if state.get("sortby"):
        out["lsortby"] = state["sortby"]
    op = state.get("open")
    if op is not None:
        out["lopen"] = op if isinstance(op, str) else (",".join(op) or "-")
    return out


def open_set(tree: L.Tree, stored: Any) -> set[str] | None:
    """Expanded nodes (None = all) from the stored state."""
    if stored is None:
        return L.default_open(tree)
    if stored == "*":
        return None
    if stored == "-":
        return set()
    return set(stored)


def toggled(tree: L.Tree, stored: Any, node: str) -> list[str]:
    """The stored open state after expanding or collapsing one node."""
    current = open_set(tree, stored)
    if current is None:
        current = {tree.names[i] for i, kids in enumerate(tree.children) if kids}
    return sorted(current ^ {node})


# ---------------------------------------------------------------- data (memoized) -------------

# bounded for large models: a 500-module pack is ~7 MB, a comparison ~1 MB, a row of images ~20 KB
_PACKS, _COMPARISONS, _TABLES, _SVGS = Memo(64), Memo(128), Memo(16), Memo(2048)
_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="cnc-layers")


def layer_table(ctx: AppContext, models: list[str], base: str, kind: str) -> L.LayerTable:
    """Packs and comparisons are memoized per model (and base): switching mode, sort or
    expanding rows recomputes nothing; switching base recomputes only the comparisons."""
    read = ctx.params if kind == "params" else ctx.activations
    summaries = [read(m) for m in models]
    packs = [None if s is None else _PACKS.get_or((kind, m), lambda s=s: L.pack(s), (s,))
             for m, s in zip(models, summaries)]
    b = models.index(base)
    base_summary, base_pack = summaries[b], packs[b]
    def comparison(m: str, s: Any, p: L.Packed | None) -> L.Comparison | None:
        if p is None:
            return None
        return _COMPARISONS.get_or((kind, m, base), lambda: L.compare(p, base_pack), (s, base_summary))

    # numpy releases the GIL: comparing models in parallel uses every core on a base switch
    comps = list(_POOL.map(comparison, models, summaries, packs))
    return _TABLES.get_or((kind, tuple(models), base), lambda: L.build_table(models, b, packs, comps),
                          tuple(comps))


def parameter_counts(ctx: AppContext, models: list[str]) -> dict[str, int]:
    """Parameters per node (own + descendants), from the first model with params summaries."""
    for m in models:
        params = ctx.params(m)
        if params is not None:
            counts: dict[str, int] = {}
            for name, entry in params.items():
                parts = L.canonical_name(name).split(".")
                for i in range(1, len(parts) + 1):
                    key = ".".join(parts[:i])
                    counts[key] = counts.get(key, 0) + int(entry["count"])
            return counts
    return {}


# ---------------------------------------------------------------- pure builders ---------------

def histogram_svgs(mixes: np.ndarray, scale: str = "sqrt", base: int | None = None) -> list[str]:
    """Stacked histograms ([cells, bins, categories] counts) of one row as SVG data URIs on one
    y scale (the row's tallest bin), so models compare at a glance. Each category is one path of
    vertical strokes in integer units; bar height is the bin count (square-root or linear)."""
    n, n_bins, _ = mixes.shape
    total = mixes.sum(axis=2)
    vmax = total.max() if total.size else 0.0
    frac = total / vmax if vmax > 0 else np.zeros_like(total)
    height = np.where(total > 0, np.maximum((np.sqrt(frac) if scale == "sqrt" else frac) * SVG_UNITS, 2.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[..., None] > 0, mixes / total[..., None], 0.0)
    upper = np.rint(np.cumsum(share, axis=2) * height[..., None]).astype(np.int64)
    lower = np.concatenate([np.zeros((n, n_bins, 1), dtype=np.int64), upper[..., :-1]], axis=2)
    upper, lower = SVG_UNITS - upper, SVG_UNITS - lower
    # every drawn segment of the row at once, ordered by cell, then category, then bin
    cell, cat, k = np.nonzero((upper < lower).transpose(0, 2, 1))
    segs = [f"M{b}.5 {y0}V{y1}" for b, y0, y1 in
            zip(k.tolist(), lower[cell, k, cat].tolist(), upper[cell, k, cat].tolist())]
    ends = np.cumsum(np.bincount(cell * N_CAT + cat, minlength=n * N_CAT)).tolist()
    out, start = [], 0
    for i in range(n):
        paths = []
        for c, name in enumerate(L.CATEGORIES):
            end = ends[i * N_CAT + c]
            if end > start:
                color = BASE_COLOR if i == base else COLORS[name]
                paths.append(f'<path d="{"".join(segs[start:end])}" stroke="{color}"/>')
            start = end
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n_bins} {SVG_UNITS}" '
               f'preserveAspectRatio="none" width="{SVG_W}" height="{SVG_H}">'
               f'<g stroke-width="0.86" shape-rendering="crispEdges">{"".join(paths)}</g>'
               f'<path d="M0 {SVG_UNITS}H{n_bins}" stroke="#c8ced6" stroke-width="1"/></svg>')
        out.append("data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode())
    return out


def fmt_change(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "from zero"
    return f"Δ {value:.1%}" if value < 10 else f"Δ ×{value:.0f}"


SHORT_LEGEND = [LEGEND[name].split(" (")[0] for name in L.CATEGORIES]


def mix_text(fractions: np.ndarray) -> str:
    """'unchanged 90%, set to zero 10%' for a tooltip."""
    return ", ".join(f"{label} {f:.0%}" for label, f in zip(SHORT_LEGEND, fractions.tolist()) if f >= 0.005)


# ---------------------------------------------------------------- rendering -------------------

def _explain(text: str) -> html.Div:
    return html.Div(text, className="layers-empty")


def h(tag: str, children: Any = None, **props: Any) -> dict:
    """An html element in the JSON form Dash sends to the browser. The table is built this way
    because a Dash component object costs ~70 us to build and encode, and a 200-row x 20-model
    table has ~20,000 elements; the dicts cost ~1 us. Text children are still rendered as text."""
    if children is not None:
        props["children"] = children
    return {"type": tag, "namespace": "dash_html_components", "props": props}


def render_body(ctx: AppContext, selection: dict | None, state: dict,
                notices: list[str] | None = None) -> tuple[Any, dict]:
    """(body component, state cleaned of stale module names and sort model). Never raises on
    missing data: explains instead."""
    if ctx.task_hash is None:
        return _explain(NO_TASK), state
    models = [m for m in (selection or {}).get("models", []) if m in ctx.experiment.models]
    base = (selection or {}).get("base")
    if not models or base not in models:
        return _explain("Select models above to compare their layers with the base model."), state
    if state.get("sortby") and (state["sortby"] not in models or state["sortby"] == base):
        if notices is not None:
            notices.append(f"Ignored lsortby={state['sortby'][:60]!r}: not a compared (non-base) model.")
        state = {**state, "sortby": None}
    kind = "activations" if state["mode"] == "activations" else "params"
    table = layer_table(ctx, models, base, kind)
    missing = [f"{ctx.experiment.models[m].label}: {_why_no_layers(ctx, m)}" for m, cells in
               zip(models, table.present.T) if not cells.any()]
    notes = [html.Div(f"No layer summaries for {text}.", className="notice notice-info") for text in missing]
    if not table.tree.names:
        return html.Div(notes + [_explain("None of the selected models has layer summaries yet.")]), state
    stored = state.get("open")
    if isinstance(stored, list):
        known = [n for n in stored if n in table.tree.index]
        if len(known) < len(stored) and notices is not None:
            notices.append(f"Ignored {len(stored) - len(known)} unknown module name(s) in lopen from the link.")
        # none known (another model's names, a typo): the default expansion, not everything collapsed
        stored = known if known or not stored else None
    state = {**state, "open": stored}
    sortby = models.index(state["sortby"]) if state.get("sortby") else None
    rows = L.visible_rows(table, state["sort"], open_set(table.tree, stored), sortby)
    if state["sort"] != "tree" and len(rows) > FLAT_LIMIT:
        notes.append(html.Div(f"Showing the {FLAT_LIMIT} {SORT_PHRASES[state['sort']]} of {len(rows)} modules.",
                              className="hint"))
        rows = rows[:FLAT_LIMIT]
    body = html.Div(notes + [
        _legend(state["mode"]),
        html.Div(_table(ctx, table, rows, state, parameter_counts(ctx, models)), className="layers-scroll"),
    ])
    return body, state


def _legend(mode: str) -> html.Div:
    if mode == "sparsity":
        return html.Div("Bar: share of zero weights in each module (parents: parameter-weighted). "
                        "Δ: relative L2 change of the weights vs the base.", className="layers-legend")
    items = [html.Span([html.Span(className="swatch", style={"background": BASE_COLOR}), "base model"],
                       className="legend-item")]
    items += [html.Span([html.Span(className="swatch", style={"background": COLORS[c]}), LEGEND[c]],
                        className="legend-item") for c in L.CATEGORIES]
    what = "weights" if mode == "weights" else "outputs on the fixed data sample"
    return html.Div([html.Span(f"Histograms of the {what} on bins shared by all models; colour: change "
                               "vs the same positions in the base. Parent rows: change mix.",
                               className="legend-text"), html.Div(items, className="legend-items")],
                    className="layers-legend")


def _table(ctx: AppContext, table: L.LayerTable, rows: list[int], state: dict,
           param_counts: dict[str, int]) -> dict:
    exp = ctx.experiment
    head = [h("Th", "Module", className="layers-name"), h("Th", "Params", className="layers-num")]
    for col, m in enumerate(table.models):
        is_base = col == table.base
        head.append(h("Th", [h("Div", exp.models[m].label, className="model-label", title=m),
                             h("Div", "base" if is_base else m, className="model-sub" + (" is-base" if is_base else ""))],
                      className="layers-model"))
    tree, flat = table.tree, state["sort"] != "tree"
    open_nodes = open_set(tree, state.get("open")) if not flat else set()
    body = []
    for r in rows:
        name = tree.names[r]
        has_kids = bool(tree.children[r])
        aggregate = has_kids and not flat
        svgs = ([] if aggregate or state["mode"] == "sparsity" else row_svgs(table, r, state["scale"]))
        cells = [_name_cell(name, table.types[r], int(tree.depth[r]), has_kids, flat,
                            open_nodes is None or name in open_nodes),
                 h("Td", f"{param_counts.get(name, 0):,}", className="layers-num")]
        cells += [_cell(table, r, col, state, aggregate, svgs) for col in range(len(table.models))]
        body.append(h("Tr", cells, className="layers-row" + (" is-parent" if aggregate else "")))
    return h("Table", [h("Thead", h("Tr", head)), h("Tbody", body)], className="layers-table")


def row_svgs(table: L.LayerTable, r: int, scale: str) -> list[str | None]:
    """Histogram images of a row, memoized with the (memoized) table: expanding, collapsing or
    re-sorting redraws the same rows for free."""
    def make() -> list[str | None]:
        cols = [c for c in range(len(table.models)) if table.module[r, c] >= 0]
        if not cols:
            return [None] * len(table.models)
        images = histogram_svgs(np.stack([table.mix(r, c) for c in cols]), scale,
                                cols.index(table.base) if table.base in cols else None)
        out: list[str | None] = [None] * len(table.models)
        for c, image in zip(cols, images):
            out[c] = image
        return out

    return _SVGS.get_or((id(table), r, scale), make, (table,))


def _name_cell(name: str, kind: str, depth: int, has_kids: bool, flat: bool, is_open: bool) -> dict:
    if flat:
        lead = h("Span", className="toggle-space")
        label, indent = name, 0
    else:
        lead = (h("Button", "▾" if is_open else "▸", id=cid(COMPONENT, "toggle", node=name), n_clicks=0,
                  className="layers-toggle", title=("Collapse " if is_open else "Expand ") + name)
                if has_kids else h("Span", className="toggle-space"))
        label, indent = name.rpartition(".")[2], depth
    return h("Td", h("Div", [lead, h("Span", label, className="module-name", title=name),
                             h("Span", kind, className="module-type")],
                     style={"paddingLeft": f"{indent * 16}px"}, className="name-wrap"),
             className="layers-name")


def _cell(table: L.LayerTable, r: int, col: int, state: dict, aggregate: bool, svgs: list) -> dict:
    count = table.agg_count[r, col]
    if count == 0:
        return h("Td", "missing" if table.present[:, col].any() else "no data", className="layers-cell is-missing")
    is_base = col == table.base
    change = table.agg_change[r, col]
    if is_base:
        note = "base"
    elif math.isnan(change):
        note = "not in base" if table.agg_count[r, table.base] == 0 else "shape differs"
    else:
        note = fmt_change(change)
    sparsity = table.agg_sparsity[r, col]
    zeros = int(round(sparsity * count))
    what = "outputs" if state["mode"] == "activations" else "weights"
    tip = (f"{table.models[col]}: {int(count):,} {what}, {sparsity:.1%} zero ({zeros:,})"
           + ("" if is_base or math.isnan(change) else
              f"; change vs base: {fmt_change(change)} ({mix_text(table.agg_fractions[r, col])})"))
    if state["mode"] == "sparsity":
        main = h("Div", f"{sparsity:.1%} · {zeros:,}", className="spars-bar",
                 style={"backgroundImage": bar_gradient([(SPARSITY_COLOR, sparsity)])})
    elif aggregate:
        colors = [BASE_COLOR] * len(L.CATEGORIES) if is_base else [COLORS[c] for c in L.CATEGORIES]
        main = h("Div", className="mix-bar",
                 style={"backgroundImage": bar_gradient(list(zip(colors, table.agg_fractions[r, col].tolist())))})
    else:
        main = h("Img", src=svgs[col], className="hist", alt="")
    return h("Td", [main, note], className="layers-cell" + (" is-base" if is_base else ""), title=tip)


def bar_gradient(parts: list[tuple[str, float]]) -> str:
    """A stacked horizontal bar as one CSS gradient (one element per cell instead of one per part)."""
    stops, at = [], 0.0
    for color, share in parts:
        if share > 0:
            stops.append(f"{color} {at * 100:.2f}% {(at + share) * 100:.2f}%")
            at += share
    stops.append(f"transparent {at * 100:.2f}%")
    return f"linear-gradient(90deg, {', '.join(stops)})"


# ---------------------------------------------------------------- Dash contract --------------

def sort_options(ctx: AppContext, selection: dict | None) -> list[dict]:
    """Models a sorted view can rank by: the compared ones, not the base."""
    sel = selection or {}
    return [{"label": ctx.experiment.models[m].label, "value": m} for m in sel.get("models", [])
            if m in ctx.experiment.models and m != sel.get("base")]


def _controls(state: dict, sortby_options: list[dict]) -> html.Div:
    return html.Div([
        html.Label(["Show", dcc.RadioItems(id=MODE, value=state["mode"], inline=True,
                                           options=[{"label": v, "value": k} for k, v in MODE_LABELS.items()])],
                   className="control"),
        html.Label(["Order", dcc.Dropdown(id=SORT, value=state["sort"], clearable=False, searchable=False,
                                          options=[{"label": v, "value": k} for k, v in SORT_LABELS.items()])],
                   className="control layers-sort"),
        html.Label(["by model", dcc.Dropdown(id=SORTBY, value=state.get("sortby"), options=sortby_options,
                                             placeholder="largest in any model", searchable=False)],
                   className="control layers-sortby"),
        html.Label(["Bar height", dcc.RadioItems(id=SCALE, value=state["scale"], inline=True,
                                                 options=[{"label": "√ count", "value": "sqrt"},
                                                          {"label": "count", "value": "linear"}])],
                   className="control"),
        html.Div([html.Button("Expand all", id=EXPAND, className="btn"),
                  html.Button("Collapse all", id=COLLAPSE, className="btn")], className="control buttons"),
    ], className="layers-controls")


def _why_no_layers(ctx: AppContext, model_id: str) -> str:
    model = ctx.experiment.models[model_id]
    if model.checkpoint is None and model.outputs:
        return "it has precomputed outputs only; layer summaries need a PyTorch checkpoint"
    return ctx.status(model_id)


def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    """The tab from the URL. A metrics-only experiment gets the explanation alone (like the
    Behaviors tab): no controls for data that cannot exist. None of the callback's outputs is in
    the layout either (no url part: the tab has no URL state here), so Dash never fires it."""
    if ctx.task_hash is None:
        return html.Div(_explain(NO_TASK), className="layers")
    from cnc.ui.compare_selection import ordered, selection_from_query

    state = state_from_query(query, notices)
    models, base, tab = selection_from_query(ctx, query, [])
    selection = {"models": ordered(models, base), "base": base}
    if tab == "layers":
        body, state = render_body(ctx, selection, state, notices)
    else:
        body = html.Div()  # drawn when the tab is opened
    return html.Div([
        dcc.Store(id=url_part(COMPONENT), data=url_params(state)),
        dcc.Store(id=OPEN, data=state["open"]),
        _controls(state, sort_options(ctx, selection)),
        dcc.Loading(html.Div(body, id=BODY), type="dot", delay_show=300),
    ], className="layers")


def checked_selection(ctx: AppContext, selection: Any) -> dict:
    """The compare page's selection store as sent by the browser, known models only."""
    models = ids(mapping(selection).get("models"), ctx.experiment.models)
    return {"models": models, "base": one_of(mapping(selection).get("base"), models)}


def checked_state(mode: Any, sort: Any, sortby: Any, scale: Any, stored_open: Any) -> dict:
    """The tab's state from control values and the open store (browser JSON): wrong types and
    unknown values become the defaults; module names are checked when drawn."""
    if stored_open not in (None, "*", "-"):
        stored_open = [n for n in items(stored_open) if isinstance(n, str)]
    return {"mode": one_of(mode, L.MODES, DEFAULTS["lmode"]), "sort": one_of(sort, L.SORTS, DEFAULTS["lsort"]),
            "sortby": text(sortby), "scale": one_of(scale, SCALES, DEFAULTS["lscale"]), "open": stored_open}


def update(ctx: AppContext, selection: dict | None, tab: str | None, state: dict,
           trigger: Any, trigger_value: Any) -> tuple[Any, Any, Any]:
    """Callback body (testable without Dash): (body, open store, url part). The sort-by model
    options follow the selection in `register`."""
    if isinstance(trigger, dict) and trigger.get("role") == "toggle":
        if not trigger_value or text(trigger.get("node")) is None:  # (re)rendered, not clicked; or junk
            return no_update, no_update, no_update
        kind = "activations" if state["mode"] == "activations" else "params"
        models = (selection or {}).get("models") or []
        if (selection or {}).get("base") in models:
            tree = layer_table(ctx, models, selection["base"], kind).tree
            state = {**state, "open": toggled(tree, state.get("open"), trigger["node"])}
    elif trigger == EXPAND:
        state = {**state, "open": "*"}
    elif trigger == COLLAPSE:
        state = {**state, "open": "-"}
    if tab != "layers":
        return no_update, state["open"], url_params(state)
    body, state = render_body(ctx, selection, state)
    return body, state["open"], url_params(state)


def register(app, ctx: AppContext) -> None:
    @app.callback(
        Output(BODY, "children"), Output(OPEN, "data"), Output(url_part(COMPONENT), "data"),
        Output(SORTBY, "options"),
        Input(cid("compare", "selection"), "data"), Input(cid("compare", "tab"), "value"),
        Input(MODE, "value"), Input(SORT, "value"), Input(SORTBY, "value"), Input(SCALE, "value"),
        Input(EXPAND, "n_clicks"), Input(COLLAPSE, "n_clicks"),
        Input(cid(COMPONENT, "toggle", node=ALL), "n_clicks"),
        State(OPEN, "data"),
        prevent_initial_call=True,
    )
    def on_change(selection, tab, mode, sort, sortby, scale, _expand, _collapse, _toggles, stored_open):
        trigger = callback_context.triggered_id
        value = callback_context.triggered[0]["value"] if callback_context.triggered else None
        selection = checked_selection(ctx, selection)
        state = checked_state(mode, sort, sortby, scale, stored_open)
        options = sort_options(ctx, selection) if trigger == cid("compare", "selection") else no_update
        return (*update(ctx, selection, tab, state, trigger, value), options)
