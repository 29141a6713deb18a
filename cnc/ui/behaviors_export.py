"""The Behaviors tab's CSV download: every row of the current view (filter, sort, metric, values
absolute or relative), computed on the server from the same view the grid pages through."""
from __future__ import annotations

from dash import Input, Output, State, no_update

from cnc.analysis import behavior_cells
from cnc.analysis.csv_export import csv_text
from cnc.server.context import AppContext
from cnc.ui import download
from cnc.ui.behaviors_data import table_for, view_for
from cnc.ui.behaviors_state import checked, state_from_dict
from cnc.ui.compare_selection import SELECTION, selected_models

NAME = "behaviors-csv"


def csv_for(ctx: AppContext, selection, state_data) -> str | None:
    """The view's rows as CSV text, or None when there is nothing to export."""
    models = selected_models(ctx, selection)
    state, _ = state_from_dict(state_data)
    state = checked(ctx, models, state)
    table = table_for(ctx, models) if models else None
    if table is None:
        return None
    view = view_for(ctx, table, state)
    header, rows = behavior_cells.view_records(view, table, (ctx.task_data() or {}).get("class_names", []))
    return csv_text(header, rows)


def button():
    return download.button(NAME, "Download CSV", "Every row of this view (not only the rows loaded) as a CSV file")


def register(app, ctx: AppContext, state_store: dict) -> None:
    @app.callback(
        Output(download.file_id(NAME), "data"),
        Input(download.button_id(NAME), "n_clicks"), State(SELECTION, "data"), State(state_store, "data"),
        prevent_initial_call=True,
    )
    def send(clicks, selection, state_data):
        text = csv_for(ctx, selection, state_data) if clicks else None
        return no_update if text is None else download.csv_file(text, "behaviors.csv")
