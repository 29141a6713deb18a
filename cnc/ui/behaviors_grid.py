"""The Behaviors tab's AG Grid: columns, server-paged row blocks with inline bars, sparkline row.

Split from cnc.ui.behaviors (which owns state, layout and callbacks) because it is the one part
that speaks AG Grid: the infinite row model asks for blocks, and every cell's bar is a CSS
gradient computed here, so the browser never holds more than a block of rows.
"""
from __future__ import annotations

import base64

import dash_ag_grid as dag

from cnc.analysis import behavior_cells, behavior_table, behavior_view
from cnc.analysis.generative_behaviors import GenerativeTable, shorten
from cnc.analysis.model_runtime import is_gguf_path, runtime_of
from cnc.analysis.parsing import parse_index
from cnc.analysis.recipe_text import model_name, model_title
from cnc.server.context import AppContext
from cnc.ui.ids import cid
from cnc.ui.inputs import items, mapping

BLOCK = 100
MAX_HEIGHT = 600  # px; taller tables scroll (and page) inside the grid
ROW_PX = 34
BAR_COLORS = {1: "#d1495b", -1: "#2e86ab", 0: "#9aa7b4"}
DRILL_COLUMNS = ("row", "n")  # clicking these cells of a class / subgroup row lists its instances
TEXT_COLUMNS = ("ref", "base_out")  # generative instance columns holding text
MIN_COL_PX, CHAR_PX, MARK_PX, PAD_PX = 96, 8.6, 14, 22  # a model column: at least; per value character; ▼; padding


def grid_id(version) -> dict:
    """The grid's id; a fresh version per view remounts it (dropping cached blocks)."""
    return cid("behaviors", "grid", v=version)


def grid(ctx: AppContext, view: behavior_view.View, version: int | str) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id(version),
        rowModelType="infinite",
        columnDefs=column_defs(ctx, view),
        defaultColDef={"sortable": True, "resizable": True, "sortingOrder": ["desc", "asc", None],
                       "suppressHeaderMenuButton": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        getRowId="params.data.id",
        rowClassRules={"bh-spark-row": "params.node.rowPinned"},
        dashGridOptions={
            "rowBuffer": 0, "cacheBlockSize": BLOCK, "maxBlocksInCache": 20, "infiniteInitialRowCount": BLOCK,
            "maxConcurrentDatasourceRequests": 1, "pinnedTopRowData": [spark_row(view)],
            "tooltipShowDelay": 300, "suppressCellFocus": True, "rowHeight": ROW_PX,
        },
        className="ag-theme-quartz bh-grid",
        style={"height": f"{min(MAX_HEIGHT, 44 + ROW_PX * (view.row_count + 1) + 4)}px", "width": "100%"},
    )


def value_width(chars: int) -> int:
    """Pixels a model column needs for `chars` characters of a 13 px value, its ▼/▲ mark and the
    cell padding (wider columns share the rest of the row: flex)."""
    return max(MIN_COL_PX, round(chars * CHAR_PX) + MARK_PX + PAD_PX)


def column_defs(ctx: AppContext, view: behavior_view.View) -> list[dict]:
    sort_col = col_for_sort(view)
    min_width = value_width(behavior_cells.widest_value(view))

    def col(field: str, header: str, **kw) -> dict:
        d = {"field": field, "colId": field, "headerName": header, **kw}
        if field == sort_col:
            d["sort"] = "desc" if view.state.desc else "asc"
        return d

    if view.instance_rows:
        cols = [col("row", "Instance", pinned="left", width=115)]  # fits the pinned row's "Distribution"
        for field, header, tip, _ in view.instance_columns:
            text = field in TEXT_COLUMNS  # generated text: wider, the whole text in a tooltip
            extra = {"tooltipField": field, "width": 125} if text else \
                {"width": 95 if field != "flips" else 80 if len(header) <= 5 else 100}
            if tip:
                extra["headerTooltip"] = tip
            cols.append(col(field, header, sortable=field == "flips", **extra))
    else:
        classes = view.state.mode == "classes"
        header = {"classes": "Class", "tasks": "Task"}.get(view.state.mode, view.state.attribute or "Subgroup")
        what = "class" if classes else "task" if view.state.mode == "tasks" else "subgroup"
        hint = f"Click a {what} to list its instances"
        cols = [col("row", header, pinned="left", width=170, cellClass="bh-drill", headerTooltip=hint),
                col("n", "Instances", width=105, cellClass="bh-drill-n", headerTooltip=hint)]
    for j, mid in enumerate(view.models):
        model = ctx.experiment.models.get(mid)
        label = model_name(model) if model else mid
        title = model_title(ctx.experiment, mid) if model else f"{mid}\nunknown model"
        runtime = runtime_of(ctx.outputs(mid), model.checkpoint) if model and is_gguf_path(model.checkpoint) else None
        title += f"\nran on {runtime}" if runtime else ""
        # instance rows: that model's output (generative); group rows: the paired test of its change
        tip = {"tooltipField": f"c{j}_t"} if view.instance_rows else {"tooltipField": f"c{j}_s"} if j else {}
        cols.append(col(f"c{j}", f"{label} (base)" if j == 0 else label, flex=1, minWidth=min_width, **tip,
                        headerTooltip=title, cellClass="bh-cell", cellClassRules=harm_rules(j),
                        cellStyle={"function": "params.data ? {'backgroundImage': params.data['c" + str(j) + "_bg']} : {}"}))
    return cols


def harm_rules(j: int) -> dict:
    """Worse / better than the base: a ▼ / ▲ after the value (assets/behaviors.css), so harm is
    not told by the bar's colour alone; a change that is not significant reads muted, marked "n.s."."""
    return {"bh-worse": f"params.data && params.data.c{j}_h === 1",
            "bh-better": f"params.data && params.data.c{j}_h === -1",
            "bh-ns": f"params.data && params.data.c{j}_ns === 1"}


def col_for_sort(view: behavior_view.View) -> str | None:
    s = view.state.sort
    if s in view.models:
        return f"c{view.models.index(s)}"
    return s if s in ("flips", "n", "row") else None


def block_range(request: dict) -> tuple[int, int]:
    """The rows a grid request may have: at most one block, whatever `endRow` the browser sent."""
    def as_int(value, default: int) -> int:
        try:
            return max(0, int(value))
        except (TypeError, ValueError, OverflowError):
            return default

    start = min(as_int(request.get("startRow"), 0), 10 ** 9)
    return start, min(max(start, as_int(request.get("endRow"), start + BLOCK)), start + BLOCK)


def sort_from_model(sort_model: list[dict] | None, models: list[str]) -> tuple[str | None, bool]:
    """AG Grid sortModel -> (sort key, descending)."""
    first = mapping(items(sort_model)[0]) if items(sort_model) else {}
    col, direction = first.get("colId"), first.get("sort")
    index = parse_index(col[1:]) if isinstance(col, str) and col.startswith("c") else None
    if index is not None and index < len(models):
        key = models[index]
    elif col in ("flips", "n", "row"):
        key = col
    else:
        return None, True
    return key, direction != "asc"


def bar_css(fraction: float, harm: int) -> str:
    """A bar as a CSS gradient: from the middle for signed values, else from the left."""
    c = BAR_COLORS[harm]
    if fraction < 0:
        a, b = 50 + fraction * 50, 50
    else:
        a, b = 50, 50 + fraction * 50
    return f"linear-gradient(90deg,transparent {a:.1f}%,{c} {a:.1f}%,{c} {b:.1f}%,transparent {b:.1f}%)"


def rows_for(view: behavior_view.View, table: behavior_table.InstanceTable | GenerativeTable, start: int, end: int,
             class_names: list[str]) -> list[dict]:
    """Page rows with an id ("i<instance>" or "g<group index>") and a bar background per model cell
    (generative instance rows: each model's output as the cell's tooltip, `c<j>_t`)."""
    rows = behavior_cells.page_rows(view, table, start, end, class_names)
    texts = table.texts if view.instance_rows and isinstance(table, GenerativeTable) else None
    for row in rows:
        row["id"] = f"i{row['i']}" if view.instance_rows else f"g{row['g']}"
        for j in range(len(view.models)):
            if texts is not None:
                row[f"c{j}_t"] = shorten(str(texts[j, row["i"]]), 300) or "(empty output)"
            f, h = row.pop(f"c{j}_b"), row[f"c{j}_h"]  # harm stays: it picks the cell's text cue
            if not view.signed:  # unsigned values: bars grow from the left edge
                row[f"c{j}_bg"] = (f"linear-gradient(90deg,{BAR_COLORS[h]} {f * 100:.1f}%,"
                                   f"transparent {f * 100:.1f}%)")
            else:
                row[f"c{j}_bg"] = bar_css(f, h)
    return rows


def spark_row(view: behavior_view.View) -> dict:
    """The pinned header row: each model's distribution over the shown rows as an SVG sparkline."""
    row = {"id": "hist", "row": "Distribution"}
    for j in range(len(view.models)):
        svg = base64.b64encode(behavior_cells.sparkline_svg(view.hists[j]).encode()).decode()
        row[f"c{j}_bg"] = f"url(data:image/svg+xml;base64,{svg})"
        row[f"c{j}"] = ""
    return row
