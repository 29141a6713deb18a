"""Selection Details' metric table: selected models x (explaining variables, metrics).

The server sends compact rows (`table_data`) and assets/selection_table.js draws the table: at a
few hundred rows, Dash components cost more to build and to send than the explanation itself
(1,000 selected: ~45 ms and 220 KB as components, ~4 ms and 23 KB as rows). Rows not charted
are muted; the current metric's column is highlighted.
"""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, dcc, html

from cnc.analysis.recipe_text import model_name
from cnc.experiment.forest import Experiment
from cnc.experiment.formatting import MISSING, format_metric, metric_help
from cnc.ui.ids import cid
from cnc.ui.selection_chart import value_text

TABLE = cid("selection", "table")
DATA = cid("selection", "table-data")
MAX_ROWS = 200
MAX_VARIABLE_COLUMNS = 4


def table_data(exp: Experiment, content) -> dict | None:
    """What the table shows for a `selection_details.PanelContent`, as JSON-ready lists.

    `columns`: [header, title, kind] with kind "var", "metric" or "current"; `rows`:
    [label, model id, charted (0/1), cell texts...]; `missing`: the text of a missing value."""
    if not content.selection:
        return None
    expl = content.explanation
    charted = set(content.chart.rows) if content.chart is not None else set(content.selection)
    variables = expl.variables[:MAX_VARIABLE_COLUMNS]
    metrics = list(exp.metrics.values())
    columns = [[v.label, f"variable ({v.kind})", "var"] for v in variables]
    columns += [[m.name + (f" ({m.unit})" if m.unit else ""), metric_help(m),
                 "current" if m.name == content.metric else "metric"] for m in metrics]
    rows = []
    for mid in content.selection[:MAX_ROWS]:
        model = exp.models[mid]
        values = expl.rows.get(mid, ())
        rows.append([model_name(model), mid, int(mid in charted),
                     *[value_text(v, values[k]) for k, v in enumerate(variables)],
                     *[format_metric(m, model.metrics.get(m.name), with_unit=False) for m in metrics]])
    notes = []
    if len(expl.variables) > len(variables):
        notes.append(f"{len(expl.variables) - len(variables)} more variables differ (see Refine comparison).")
    if len(content.selection) > MAX_ROWS:
        notes.append(f"… and {len(content.selection) - MAX_ROWS} more selected models.")
    return {"columns": columns, "rows": rows, "missing": MISSING, "notes": notes}


def layout(data: dict | None) -> list:
    return [dcc.Store(id=DATA, data=data), html.Div(id=TABLE, className="sd-table-wrap")]


def register(app) -> None:
    app.clientside_callback(ClientsideFunction("cncSelection", "table"), Output(TABLE, "children"), Input(DATA, "data"))
