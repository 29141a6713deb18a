"""The header's "Download experiment": the current experiment as a YAML file in our format, which
a teammate opens with `python app.py --config experiment.yaml` (metrics, operations, provenance)."""
from __future__ import annotations

import yaml
from dash import Input, Output, dcc, no_update

from cnc.experiment.forest import experiment_as_dict
from cnc.server.context import AppContext
from cnc.ui import download

NAME = "experiment-file"


def experiment_yaml(ctx: AppContext) -> str:
    # as loaded: derived metrics (cnc.server.derived) are recomputed where it is opened, never logged
    return yaml.safe_dump(experiment_as_dict(ctx.config.experiment), sort_keys=False, allow_unicode=True)


def button():
    return download.button(NAME, "Download experiment",
                           "This experiment as a YAML file (metrics, operations, models) that "
                           "`python app.py --config <file>` opens")


def register(app, ctx: AppContext) -> None:
    @app.callback(Output(download.file_id(NAME), "data"), Input(download.button_id(NAME), "n_clicks"),
                  prevent_initial_call=True)
    def send(clicks):
        if not clicks:
            return no_update
        return dcc.send_string(experiment_yaml(ctx), "experiment.yaml", type="application/yaml")
