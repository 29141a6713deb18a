"""Layers tab of the Performance Comparison page: models' internals module by module vs the base.

Rows are the module tree (collapsible), columns the selected models; a cell shows sparsity, or
the weight / activation distribution as a stacked histogram coloured by change vs the base.
Everything comes from cached summaries (`ctx.params`, `ctx.activations`); histograms travel as
short height codes drawn by assets/layers.js (cnc/ui/layers_table.py), a page of rows at a time.
URL keys: `lmode`, `lsort`, `lsortby`, `lscale`, `lopen`, `lpage`, `lstore` (storage types shown).
Quantized models (GGUF, compressed-tensors, ...) add a Storage column and their error vs the root.
"""
from __future__ import annotations

import csv
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update

from cnc.analysis import layer_quant
from cnc.analysis import layers as L
from cnc.analysis.parsing import parse_index
from cnc.server.context import AppContext
from cnc.server.memo import Memo
from cnc.server.urlstate import pick, split_list
from cnc.ui import layers_table
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import count, ids, items, mapping, one_of, text

COMPONENT = "layers"
MODE, SORT, SCALE = cid(COMPONENT, "mode"), cid(COMPONENT, "sort"), cid(COMPONENT, "scale")
SORTBY = cid(COMPONENT, "sort-by")
EXPAND, COLLAPSE = cid(COMPONENT, "expand-all"), cid(COMPONENT, "collapse-all")
OPEN, BODY = cid(COMPONENT, "open"), cid(COMPONENT, "body")
SCALES = ("sqrt", "linear")
DEFAULTS = {"lmode": "sparsity", "lsort": "tree", "lscale": "sqrt"}
MODE_LABELS = {"sparsity": "Sparsity", "weights": "Weight distribution", "activations": "Activation distribution"}
SORT_LABELS = {"tree": "Module tree", "change": "Most changed first", "spread": "Most different across models",
               "sparsity": "Most sparse first", "error": "Most quantization error first",
               "bits": "Fewest bits per weight first"}
STORAGE, STORAGE_WRAP = cid(COMPONENT, "storage"), cid(COMPONENT, "storage-wrap")
PAGE_ROWS = 25  # rows drawn at once (about two screens): a page of the expanded tree or of a sorted list
PREV, NEXT, PAGE = cid(COMPONENT, "prev"), cid(COMPONENT, "next"), cid(COMPONENT, "page")
MAX_PAGE = 10**6  # far past any real tree; a bigger number in a link or store is junk
CSV, DOWNLOAD = cid(COMPONENT, "csv"), cid(COMPONENT, "download")
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
        "page": _page(query.get("lpage"), notices),
        "storage": [t for t in split_list(query.get("lstore") or "") if t][:20],  # checked against the table
    }


def _page(value: str | None, notices: list[str]) -> int:
    """The 0-based page of the link's 1-based `lpage` (the first page when absent or bad)."""
    if value is None:
        return 0
    n = parse_index(value)
    if n is None or not 1 <= n <= MAX_PAGE:
        notices.append(f"Ignored lpage={value[:20]!r} from the link: not a page number.")
        return 0
    return n - 1


def url_params(state: dict) -> dict:
    """Query params of the tab (defaults omitted); `open` is None (default), '*', '-' or names."""
    out = {key: state[name] for key, name in (("lmode", "mode"), ("lsort", "sort"), ("lscale", "scale"))
           if state[name] != DEFAULTS[key]}
    if state.get("sortby"):
        out["lsortby"] = state["sortby"]
    op = state.get("open")
    if op is not None:
        out["lopen"] = op if isinstance(op, str) else (",".join(op) or "-")
    if state.get("page"):
        out["lpage"] = state["page"] + 1  # 1-based, as the pager shows it
    if state.get("storage"):
        out["lstore"] = ",".join(state["storage"])
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
_PACKS, _COMPARISONS, _TABLES, _COUNTS = Memo(64), Memo(128), Memo(16), Memo(16)
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
    entries = [None if s is None else list(s.values()) for s in summaries] if kind == "params" else None
    return _TABLES.get_or((kind, tuple(models), base), lambda: L.build_table(models, b, packs, comps, entries),
                          tuple(comps))


def parameter_counts(ctx: AppContext, models: list[str]) -> dict[str, int]:
    """Parameters per node (own + descendants), from the first model with params summaries
    (memoized with that summary)."""
    for m in models:
        params = ctx.params(m)
        if params is not None:
            return _COUNTS.get_or(m, lambda: _counts(params), (params,))
    return {}


def _counts(params: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, entry in params.items():
        parts = L.canonical_name(name).split(".")
        for i in range(1, len(parts) + 1):
            key = ".".join(parts[:i])
            counts[key] = counts.get(key, 0) + int(entry["count"])
    return counts


# ---------------------------------------------------------------- rendering -------------------

def _explain(text: str) -> html.Div:
    return html.Div(text, className="layers-empty")


def current_view(ctx: AppContext, selection: dict | None, state: dict, notices: list[str] | None = None):
    """(table, every row of the view in order, state cleaned of stale module names and sort model,
    notes), or (None, None, state, explanation) when there is nothing to draw. Never raises on
    missing data: explains instead."""
    if ctx.task_hash is None:
        return None, None, state, _explain(NO_TASK)
    models = [m for m in (selection or {}).get("models", []) if m in ctx.experiment.models]
    base = (selection or {}).get("base")
    if not models or base not in models:
        return None, None, state, _explain("Select models above to compare their layers with the base model.")
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
        return None, None, state, html.Div(notes + [_explain("None of the selected models has layer summaries yet.")])
    stored = state.get("open")
    if isinstance(stored, list):
        known = [n for n in stored if n in table.tree.index]
        if len(known) < len(stored) and notices is not None:
            notices.append(f"Ignored {len(stored) - len(known)} unknown module name(s) in lopen from the link.")
        # none known (another model's names, a typo): the default expansion, not everything collapsed
        stored = known if known or not stored else None
    state = {**state, "open": stored}
    sortby = models.index(state["sortby"]) if state.get("sortby") else None
    wanted = set(state.get("storage") or []) & set(table.quant.types() if table.quant is not None else [])
    state = {**state, "storage": sorted(wanted)}
    if wanted:  # only modules stored so (a flat list, in the order asked)
        rows = L.visible_rows(table, state["sort"], None, sortby)
        own = table.present.any(axis=1)
        cols = [sortby] if sortby is not None else list(range(len(models)))
        rows = layer_quant.with_storage(table.quant, [r for r in rows if own[r]], wanted, cols)
    else:
        rows = L.visible_rows(table, state["sort"], open_set(table.tree, stored), sortby)
    return table, rows, state, notes


def render_body(ctx: AppContext, selection: dict | None, state: dict,
                notices: list[str] | None = None) -> tuple[Any, dict]:
    """(body component, cleaned state): one page (PAGE_ROWS) of the view's rows, with a pager."""
    table, rows, state, notes = current_view(ctx, selection, state, notices)
    if table is None:
        return notes, state
    pages = max(1, -(-len(rows) // PAGE_ROWS))
    page = min(max(0, state.get("page") or 0), pages - 1)
    if notices is not None and page < (state.get("page") or 0):
        notices.append(f"The link's page {state['page'] + 1:,} is past the last page; showing page {pages:,}.")
    state = {**state, "page": page}
    shown = rows[page * PAGE_ROWS:(page + 1) * PAGE_ROWS]
    pager = html.Div(f"Rows {page * PAGE_ROWS + 1:,}–{page * PAGE_ROWS + len(shown):,} of {len(rows):,}"
                     + (f" · page {page + 1} of {pages}" if pages > 1 else ""), className="layers-pager-text")
    draw = {**state, "open_nodes": open_set(table.tree, state["open"]), "flat": state["sort"] != "tree" or bool(state.get("storage")),
            "sortby_col": table.models.index(state["sortby"]) if state.get("sortby") in table.models else None}
    body = html.Div(notes + [
        _legend(state["mode"]), pager,
        html.Div(layers_table.table(ctx.experiment, table, shown, draw, parameter_counts(ctx, table.models)),
                 className="layers-scroll"),
    ])
    return body, state


def view_csv(ctx: AppContext, selection: dict | None, state: dict) -> str | None:
    """The current view as CSV, every row (not only the page): module, type, parameters, then per
    model the value the view shows (share of zero weights, or relative change vs the base)."""
    table, rows, state, _ = current_view(ctx, selection, state)
    if table is None:
        return None
    what = "sparsity" if state["mode"] == "sparsity" else "change vs base"
    values = L.shown_values(table, state["mode"])
    counts = parameter_counts(ctx, table.models)
    out = io.StringIO()
    writer = csv.writer(out)
    quant = table.quant
    extra = [] if quant is None else [f"{m} {k}" for m in table.models for k in ("storage", "bits per weight", "relative error")]
    writer.writerow(["module", "type", "parameters"] + [f"{m} {what}" for m in table.models] + extra)
    for r in rows:
        name = table.tree.names[r]
        cells = [] if quant is None else [x for c in range(len(table.models)) for x in
                                          (quant.storage[r][c], _num(quant.bits[r, c]), _num(quant.error[r, c]))]
        writer.writerow([name, table.types[r], counts.get(name, 0)] + [_num(v) for v in values[r].tolist()] + cells)
    return out.getvalue()


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def _legend(mode: str) -> html.Div:
    if mode == "sparsity":
        return html.Div("Bar: share of zero weights in each module (parents: parameter-weighted). "
                        "Δ: relative L2 change of the weights vs the base.", className="layers-legend")
    items = [html.Span([html.Span(className="swatch", style={"background": layers_table.BASE_COLOR}), "base model"],
                       className="legend-item")]
    items += [html.Span([html.Span(className="swatch", style={"background": layers_table.COLORS[c]}),
                         layers_table.LEGEND[c]], className="legend-item") for c in L.CATEGORIES]
    what = "weights" if mode == "weights" else "outputs on the fixed data sample"
    return html.Div([html.Span(f"Histograms of the {what} on bins shared by all models; colour: change "
                               "vs the same positions in the base (under each cell, in words: the largest change class). "
                               "Parent rows: change mix.",
                               className="legend-text"), html.Div(items, className="legend-items")],
                    className="layers-legend")


# ---------------------------------------------------------------- Dash contract --------------

def sort_options(ctx: AppContext, selection: dict | None) -> list[dict]:
    """Models a sorted view can rank by: the compared ones, not the base."""
    sel = selection or {}
    return [{"label": ctx.experiment.models[m].label, "value": m} for m in sel.get("models", [])
            if m in ctx.experiment.models and m != sel.get("base")]


def storage_options(ctx: AppContext, selection: dict | None) -> list[dict]:
    """The storage types (GGUF Q4_K, F16, ...) of the selected models' layers, for the filter."""
    sel = selection or {}
    models = [m for m in sel.get("models", []) if m in ctx.experiment.models]
    if ctx.task_hash is None or sel.get("base") not in models:
        return []
    quant = layer_table(ctx, models, sel["base"], "params").quant
    return [] if quant is None else [{"label": t, "value": t} for t in quant.types()]


def _shown(options: list) -> dict | None:
    """The storage filter is shown only when the selection has storage types to pick."""
    return None if options else {"display": "none"}


def _controls(state: dict, sortby_options: list[dict], store_options: list[dict]) -> html.Div:
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
        html.Label(["Storage", dcc.Dropdown(id=STORAGE, value=state.get("storage") or [], options=store_options,
                                            multi=True, placeholder="any type", searchable=False)],
                   className="control layers-storage", title="Only layers stored in these types (quantized models)",
                   id=STORAGE_WRAP, style=_shown(store_options)),
        html.Label(["Bar height", dcc.RadioItems(id=SCALE, value=state["scale"], inline=True,
                                                 options=[{"label": "√ count", "value": "sqrt"},
                                                          {"label": "count", "value": "linear"}])],
                   className="control"),
        html.Div([html.Button("Expand all", id=EXPAND, className="btn"),
                  html.Button("Collapse all", id=COLLAPSE, className="btn")], className="control buttons"),
        html.Div([html.Button("◀ Previous rows", id=PREV, className="btn", title=f"The previous {PAGE_ROWS} rows"),
                  html.Button("Next rows ▶", id=NEXT, className="btn", title=f"The next {PAGE_ROWS} rows")],
                 className="control buttons layers-pager"),
        html.Div([html.Button("Download CSV", id=CSV, className="btn",
                              title="Every row of this view: module, and per model the value shown"),
                  dcc.Download(id=DOWNLOAD)], className="control buttons"),
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
        dcc.Store(id=PAGE, data=state.get("page", 0)),
        _controls(state, sort_options(ctx, selection), storage_options(ctx, selection) if tab == "layers" else []),
        dcc.Loading(html.Div(body, id=BODY), type="dot", delay_show=300),
    ], className="layers")


def checked_selection(ctx: AppContext, selection: Any) -> dict:
    """The compare page's selection store as sent by the browser, known models only."""
    models = ids(mapping(selection).get("models"), ctx.experiment.models)
    return {"models": models, "base": one_of(mapping(selection).get("base"), models)}


def checked_state(mode: Any, sort: Any, sortby: Any, scale: Any, stored_open: Any, page: Any = None,
                  storage: Any = None) -> dict:
    """The tab's state from control values and the open and page stores (browser JSON): wrong
    types and unknown values become the defaults; module names are checked when drawn."""
    if stored_open not in (None, "*", "-"):
        stored_open = [n for n in items(stored_open) if isinstance(n, str)]
    return {"mode": one_of(mode, L.MODES, DEFAULTS["lmode"]), "sort": one_of(sort, L.SORTS, DEFAULTS["lsort"]),
            "sortby": text(sortby), "scale": one_of(scale, SCALES, DEFAULTS["lscale"]), "open": stored_open,
            "page": min(count(page), MAX_PAGE),
            "storage": [t for t in items(storage) if isinstance(t, str)][:20]}


def update(ctx: AppContext, selection: dict | None, tab: str | None, state: dict,
           trigger: Any, trigger_value: Any) -> tuple[Any, Any, Any]:
    """Callback body (testable without Dash): (body, open store, url part). The sort-by model
    options follow the selection in `register`; the page store follows `paged_update`."""
    return paged_update(ctx, selection, tab, state, trigger, trigger_value)[:3]


def paged_update(ctx: AppContext, selection: dict | None, tab: str | None, state: dict,
                 trigger: Any, trigger_value: Any) -> tuple[Any, Any, Any, Any]:
    """(body, open store, url part, page store). Paging keeps its place through expanding and
    collapsing; a new order, mode or selection starts at the first page."""
    page = state.get("page") or 0
    if trigger == PREV:
        page -= 1
    elif trigger == NEXT:
        page += 1
    elif trigger in (SORT, SORTBY, MODE, STORAGE, cid("compare", "selection")):
        page = 0
    state = {**state, "page": max(0, page)}
    if isinstance(trigger, dict) and trigger.get("role") == "toggle":
        if not trigger_value or text(trigger.get("node")) is None:  # (re)rendered, not clicked; or junk
            return no_update, no_update, no_update, no_update
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
        return no_update, state["open"], url_params(state), state["page"]
    body, state = render_body(ctx, selection, state)
    return body, state["open"], url_params(state), state["page"]


def register(app, ctx: AppContext) -> None:
    @app.callback(
        Output(BODY, "children"), Output(OPEN, "data"), Output(url_part(COMPONENT), "data"),
        Output(SORTBY, "options"), Output(PAGE, "data"), Output(STORAGE, "options"), Output(STORAGE_WRAP, "style"),
        Input(cid("compare", "selection"), "data"), Input(cid("compare", "tab"), "value"),
        Input(MODE, "value"), Input(SORT, "value"), Input(SORTBY, "value"), Input(SCALE, "value"),
        Input(STORAGE, "value"),
        Input(EXPAND, "n_clicks"), Input(COLLAPSE, "n_clicks"),
        Input(cid(COMPONENT, "toggle", node=ALL), "n_clicks"), Input(PREV, "n_clicks"), Input(NEXT, "n_clicks"),
        State(OPEN, "data"), State(PAGE, "data"),
        prevent_initial_call=True,
    )
    def on_change(selection, tab, mode, sort, sortby, scale, storage, _expand, _collapse, _toggles, _prev, _next,
                  stored_open, page):
        trigger = callback_context.triggered_id
        value = callback_context.triggered[0]["value"] if callback_context.triggered else None
        selection = checked_selection(ctx, selection)
        state = checked_state(mode, sort, sortby, scale, stored_open, page, storage)
        new_selection = trigger == cid("compare", "selection")
        options = sort_options(ctx, selection) if new_selection else no_update
        # storage types need the layer table: built when the Layers tab shows, not for Behaviors
        fresh = tab == "layers" and trigger in (cid("compare", "selection"), cid("compare", "tab"))
        stores = storage_options(ctx, selection) if fresh else no_update
        body, opened, part, page = paged_update(ctx, selection, tab, state, trigger, value)
        return body, opened, part, options, page, stores, no_update if stores is no_update else _shown(stores)

    @app.callback(
        Output(DOWNLOAD, "data"), Input(CSV, "n_clicks"),
        State(cid("compare", "selection"), "data"), State(MODE, "value"), State(SORT, "value"),
        State(SORTBY, "value"), State(SCALE, "value"), State(OPEN, "data"), State(STORAGE, "value"),
        prevent_initial_call=True,
    )
    def download(clicks, selection, mode, sort, sortby, scale, stored_open, storage):
        if not count(clicks):
            return no_update
        text_csv = view_csv(ctx, checked_selection(ctx, selection),
                            checked_state(mode, sort, sortby, scale, stored_open, None, storage))
        if text_csv is None:
            return no_update
        return {"content": text_csv, "filename": "layers.csv", "type": "text/csv"}
