"""Selection Details' CSV download: the metric table of every selected model (not only the rows
the panel lists), with the variables that tell them apart and raw metric values, and, when the
charted metric is one the app evaluated per instance, each model's paired test against its root."""
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
from cnc.ui.selection_significance import SelectionTests, selection_tests

NAME = "selection-csv"


def records(exp: Experiment, selection: list[str], explanation: Explanation,
            tests: SelectionTests | None = None) -> tuple[list[str], list[list[Any]]]:
    """(header, rows): model id, label, each explaining variable's value, each metric's raw value,
    then the tests' columns (`tests`: of the charted metric)."""
    metrics = list(exp.metrics.values())
    header = ["model id", "model", *(v.label for v in explanation.variables),
              *(m.name + (f" ({m.unit})" if m.unit else "") for m in metrics)]
    rows = []
    for mid in selection:
        model = exp.models[mid]
        row = explanation.rows.get(mid, ())
        values = [value_text(v, row[k]) if k < len(row) else "" for k, v in enumerate(explanation.variables)]
        rows.append([mid, model.label, *values, *(model.metrics.get(m.name) for m in metrics)])
    if tests is not None and tests.tests is not None:
        more, cells = tests.csv(selection)
        header += more
        rows = [[*row, *extra] for row, extra in zip(rows, cells)]
    if exp.device:  # benchmark metrics are the numbers of one device: say which
        header.append("benchmark device")
        rows = [[*row, exp.device] for row in rows]
    return header, rows


def button():
    return download.button(NAME, "Download CSV", "The metric table of all selected models as a CSV file")


def send(ctx: AppContext, clicks: Any, selection: Any, metric: Any, explain) -> dict | None:
    """The CSV file of a Download click (None: nothing selected)."""
    sel = ids(selection, ctx.experiment.models)
    if not clicks or not sel:
        return None
    metric = metric if isinstance(metric, str) and metric in ctx.experiment.metrics else None
    header, rows = records(ctx.experiment, sel, explain(ctx, sel), selection_tests(ctx, metric, sel))
    return download.csv_file(csv_text(header, rows), "selection.csv")


def register(app, ctx: AppContext, selection_store: dict, explain, metric_input: dict) -> None:
    @app.callback(
        Output(download.file_id(NAME), "data"),
        Input(download.button_id(NAME), "n_clicks"), State(selection_store, "data"), State(metric_input, "value"),
        prevent_initial_call=True,
    )
    def on_click(clicks, selection, metric):
        found = send(ctx, clicks, selection, metric, explain)
        return no_update if found is None else found
