"""Selection Details' CSV download: the metric table of every selected model (not only the rows
the panel lists), with the variables that tell them apart and raw metric values."""
from __future__ import annotations

from typing import Any

from dash import Input, Output, State, no_update

from cnc.analysis.comparability import Explanation
from cnc.analysis.csv_export import csv_text
from cnc.experiment.forest import Experiment
from cnc.server.context import AppContext
from cnc.ui import download
from cnc.ui.inputs import ids
from cnc.ui.selection_chart import value_text

NAME = "selection-csv"


def records(exp: Experiment, selection: list[str], explanation: Explanation) -> tuple[list[str], list[list[Any]]]:
    """(header, rows): model id, label, each explaining variable's value, each metric's raw value."""
    metrics = list(exp.metrics.values())
    header = ["model id", "model", *(v.label for v in explanation.variables),
              *(m.name + (f" ({m.unit})" if m.unit else "") for m in metrics)]
    rows = []
    for mid in selection:
        model = exp.models[mid]
        row = explanation.rows.get(mid, ())
        values = [value_text(v, row[k]) if k < len(row) else "" for k, v in enumerate(explanation.variables)]
        rows.append([mid, model.label, *values, *(model.metrics.get(m.name) for m in metrics)])
    if exp.device:  # benchmark metrics are the numbers of one device: say which
        header.append("benchmark device")
        rows = [[*row, exp.device] for row in rows]
    return header, rows


def button():
    return download.button(NAME, "Download CSV", "The metric table of all selected models as a CSV file")


def register(app, ctx: AppContext, selection_store: dict, explain) -> None:
    @app.callback(
        Output(download.file_id(NAME), "data"),
        Input(download.button_id(NAME), "n_clicks"), State(selection_store, "data"),
        prevent_initial_call=True,
    )
    def send(clicks, selection):
        sel = ids(selection, ctx.experiment.models)
        if not clicks or not sel:
            return no_update
        header, rows = records(ctx.experiment, sel, explain(ctx, sel))
        return download.csv_file(csv_text(header, rows), "selection.csv")
