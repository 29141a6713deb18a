"""The Layers table as Dash's component JSON, built directly (see `h`) for one page of rows.

Histograms travel as compact codes (`histogram_codes`: per change category, one character per bin
giving its stacked height) and one client-side function draws them (assets/layers.js), instead of
an SVG image per cell. Change classes carry a text cue (`change_cue`) besides their colour.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnc.analysis import layers as L
from cnc.analysis.recipe_text import model_title
from cnc.server.memo import Memo
from cnc.ui.ids import cid

COMPONENT = "layers"
COLORS = {"unchanged": "#a9b8c8", "small": "#f2b134", "large": "#e4572e", "zeroed": "#6a3d9a",
          "unknown": "#d4d4d4"}
BASE_COLOR = "#4c78a8"
SPARSITY_COLOR = "#b9a3dc"
LEGEND = {"unchanged": "unchanged", "small": "small change (≤10% of the base's RMS)",
          "large": "large change", "zeroed": "set to zero", "unknown": "not comparable / not sampled"}
SHORT_LEGEND = [LEGEND[name].split(" (")[0] for name in L.CATEGORIES]
N_CAT = len(L.CATEGORIES)
HIST_UNITS = 60  # bar height resolution of a histogram code
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"  # heights 0..63
_ALPHABET_BYTES = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_CODES = Memo(4096)


def h(tag: str, children: Any = None, **props: Any) -> dict:
    """An html element in the JSON form Dash sends to the browser (what `html.<Tag>(...)` encodes
    to; tests/test_layers_table.py checks the two agree, so a Dash upgrade cannot change it
    silently). A Dash component object costs ~70 us to build and encode and a page of the table
    has thousands of elements; the dicts cost ~1 us. Text children are still rendered as text."""
    if children is not None:
        props["children"] = children
    return {"type": tag, "namespace": "dash_html_components", "props": props}


def histogram_codes(mixes: np.ndarray, scale: str = "sqrt") -> list[str]:
    """Stacked histograms ([cells, bins, categories] counts) of one row on one y scale (the row's
    tallest bin), so models compare at a glance. Per cell: for each category, one character per
    bin (its segment's height in 0..HIST_UNITS), categories joined by ','; an empty category is
    ''. Bar height is the bin count (square-root or linear); a non-empty bin is at least 2 units."""
    n, n_bins, _ = mixes.shape
    total = mixes.sum(axis=2)
    vmax = total.max() if total.size else 0.0
    frac = total / vmax if vmax > 0 else np.zeros_like(total)
    height = np.where(total > 0, np.maximum((np.sqrt(frac) if scale == "sqrt" else frac) * HIST_UNITS, 2.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[..., None] > 0, mixes / total[..., None], 0.0)
    upper = np.rint(np.cumsum(share, axis=2) * height[..., None]).astype(np.int64)
    seg = np.diff(upper, axis=2, prepend=0).transpose(0, 2, 1)  # [cells, categories, bins]
    text = _ALPHABET_BYTES[seg]
    used = seg.any(axis=2)
    return [",".join(text[i, c].tobytes().decode() if used[i, c] else "" for c in range(N_CAT)) for i in range(n)]


def row_codes(table: L.LayerTable, r: int, scale: str) -> list[str | None]:
    """Histogram codes of a row, memoized with the (memoized) table: paging, expanding or
    re-sorting redraws the same rows for free."""
    def make() -> list[str | None]:
        cols = [c for c in range(len(table.models)) if table.module[r, c] >= 0]
        out: list[str | None] = [None] * len(table.models)
        if cols:
            for c, code in zip(cols, histogram_codes(np.stack([table.mix(r, c) for c in cols]), scale)):
                out[c] = code
        return out

    return _CODES.get_or((id(table), r, scale), make, (table,))


def fmt_change(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "from zero"
    return f"Δ {value:.1%}" if value < 10 else f"Δ ×{value:.0f}"


def mix_text(fractions: np.ndarray) -> str:
    """'unchanged 90%, set to zero 10%' for a tooltip."""
    return ", ".join(f"{label} {f:.0%}" for label, f in zip(SHORT_LEGEND, fractions.tolist()) if f >= 0.005)


CUE_WORDS = {L.SMALL: "small", L.LARGE: "large", L.ZEROED: "zeroed"}


def change_cue(fractions: np.ndarray) -> str:
    """The largest change class of a cell in words ('zeroed 40%'), so classes are not told apart
    by colour alone; '' when (nearly) everything is unchanged or not comparable."""
    k = max(CUE_WORDS, key=lambda c: fractions[c])
    return f"{CUE_WORDS[k]} {fractions[k]:.0%}" if fractions[k] >= 0.01 else ""


def bar_gradient(parts: list[tuple[str, float]]) -> str:
    """A stacked horizontal bar as one CSS gradient (one element per cell instead of one per part)."""
    stops, at = [], 0.0
    for color, share in parts:
        if share > 0:
            stops.append(f"{color} {at * 100:.2f}% {(at + share) * 100:.2f}%")
            at += share
    stops.append(f"transparent {at * 100:.2f}%")
    return f"linear-gradient(90deg, {', '.join(stops)})"


def table(exp, table: L.LayerTable, rows: list[int], state: dict, param_counts: dict[str, int]) -> dict:
    """The table of the given rows (one page)."""
    quant = table.quant if table.quant is not None and table.quant.quantized.any() else None
    shown_col = _storage_col(table, state) if quant is not None else None
    head = [h("Th", "Module", className="layers-name"), h("Th", "Params", className="layers-num")]
    if shown_col is not None:
        head.append(h("Th", ["Storage", h("Div", exp.models[table.models[shown_col]].label, className="model-sub")],
                      className="layers-storage-col", title="How this model stores each layer: type · bits per weight"))
    for col, m in enumerate(table.models):
        is_base = col == table.base
        head.append(h("Th", [h("Div", exp.models[m].label, className="model-label", title=model_title(exp, m)),
                             h("Div", "base" if is_base else m, className="model-sub" + (" is-base" if is_base else ""))],
                      className="layers-model"))
    tree, flat = table.tree, state.get("flat", state["sort"] != "tree")
    open_nodes = state.get("open_nodes") if not flat else set()
    body = []
    for r in rows:
        name = tree.names[r]
        has_kids = bool(tree.children[r])
        aggregate = has_kids and not flat
        codes = [] if aggregate or state["mode"] == "sparsity" else row_codes(table, r, state["scale"])
        cells = [_name_cell(name, table.types[r], int(tree.depth[r]), has_kids, flat,
                            open_nodes is None or name in open_nodes),
                 h("Td", f"{param_counts.get(name, 0):,}", className="layers-num")]
        if shown_col is not None:
            cells.append(_storage_cell(quant, r, shown_col))
        cells += [_cell(table, r, col, state, aggregate, codes) for col in range(len(table.models))]
        body.append(h("Tr", cells, className="layers-row" + (" is-parent" if aggregate else "")))
    colors = [COLORS[c] for c in L.CATEGORIES]
    return h("Table", [h("Thead", h("Tr", head)), h("Tbody", body)], className="layers-table",
             **{"data-colors": ",".join(colors), "data-base-color": BASE_COLOR, "data-units": str(HIST_UNITS)})


def _storage_col(table: L.LayerTable, state: dict) -> int:
    """The model whose storage the column shows: the one sorted by, else the first quantized one."""
    col = state.get("sortby_col")
    if col is not None:
        return col
    found = [c for c in range(len(table.models)) if table.quant.quantized[c] and c != table.base]
    return found[0] if found else int(np.flatnonzero(table.quant.quantized)[0])


def _storage_cell(quant, r: int, col: int) -> dict:
    kind, bits = quant.storage[r][col], quant.bits[r, col]
    text = (f"{kind} · {bits:.2f} b" if kind else f"{bits:.2f} b") if math.isfinite(bits) else "—"
    return h("Td", text, className="layers-storage-col" + (" is-parent" if not kind else ""))


def quant_note(quant, r: int, col: int) -> str:
    """'Q4_K · err 6.1%' under a cell of a quantized model ('' when it has no error vs a reference)."""
    if quant is None or not quant.quantized[col] or not math.isfinite(quant.error[r, col]) or quant.error[r, col] == 0:
        return ""  # float or unquantized layers (norms kept in F32) lose nothing
    kind = quant.storage[r][col]
    return (f"{kind} · " if kind else "") + f"err {quant.error[r, col]:.2%}"


def cell_note(change: str, quant: str) -> dict | str:
    """The words under a cell: the change, and a quantized layer's storage and error on a line of
    its own, so the note never widens the column past its histogram's width by much (a one-line
    note of both cut the last model column at 1400 px)."""
    if not quant:
        return h("Div", change, className="cell-note")
    return h("Div", [h("Span", change), h("Span", quant, className="quant-note")], className="cell-note")


def quant_tip(quant, r: int, col: int) -> str:
    if quant is None or not math.isfinite(quant.error[r, col]):
        return ""
    return (f"; vs the root's weights: relative error {quant.error[r, col]:.4f}, SQNR {quant.sqnr_db(r, col):.1f} dB, "
            f"cosine {quant.cosine[r, col]:.5f}; {quant.bits[r, col]:.2f} bits per weight")


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


def _cell(table: L.LayerTable, r: int, col: int, state: dict, aggregate: bool, codes: list) -> dict:
    count = table.agg_count[r, col]
    if count == 0:
        return h("Td", "missing" if table.present[:, col].any() else "no data", className="layers-cell is-missing")
    is_base = col == table.base
    change = table.agg_change[r, col]
    fractions = table.agg_fractions[r, col]
    if is_base:
        note = "base"
    elif math.isnan(change):
        note = "not in base" if table.agg_count[r, table.base] == 0 else "shape differs"
    else:
        cue = change_cue(fractions) if state["mode"] != "sparsity" else ""
        note = fmt_change(change) + (f" · {cue}" if cue else "")
    sparsity = table.agg_sparsity[r, col]
    zeros = int(round(sparsity * count))
    what = "outputs" if state["mode"] == "activations" else "weights"
    tip = (f"{table.models[col]}: {int(count):,} {what}, {sparsity:.1%} zero ({zeros:,})"
           + ("" if is_base or math.isnan(change) else
              f"; change vs base: {fmt_change(change)} ({mix_text(fractions)})") + quant_tip(table.quant, r, col))
    if state["mode"] == "sparsity":
        main = h("Div", f"{sparsity:.1%} · {zeros:,}", className="spars-bar",
                 style={"backgroundImage": bar_gradient([(SPARSITY_COLOR, sparsity)])})
    elif aggregate:
        colors = [BASE_COLOR] * N_CAT if is_base else [COLORS[c] for c in L.CATEGORIES]
        main = h("Div", className="mix-bar",
                 style={"backgroundImage": bar_gradient(list(zip(colors, fractions.tolist())))})
    else:
        main = h("Canvas", className="hist" + (" is-base" if is_base else ""), width=120, height=30,
                 **{"data-h": codes[col] or ""})
    return h("Td", [main, cell_note(note, quant_note(table.quant, r, col))], className="layers-cell" + (" is-base" if is_base else ""), title=tip)
