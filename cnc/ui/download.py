"""A download button next to a `dcc.Download`: what every export (CSV tables, the experiment file)
shows. Each owning component registers the callback that fills its file."""
from __future__ import annotations

from dash import dcc, html

from cnc.ui.ids import cid


def file_id(name: str) -> dict:
    return cid(name, "download")


def button_id(name: str) -> dict:
    return cid(name, "download-button")


def button(name: str, label: str, title: str) -> html.Span:
    return html.Span([
        html.Button(label, id=button_id(name), n_clicks=0, className="btn small download", title=title),
        dcc.Download(id=file_id(name)),
    ], className="download-wrap")


def csv_file(text: str, filename: str) -> dict:
    return dcc.send_string(text, filename, type="text/csv")


def graph_config(filename: str, **extra) -> dict:
    """A Plotly chart's config with its own camera button: "Download plot as a PNG" (2x scale)."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
            **extra}
