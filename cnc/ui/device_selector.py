"""The device selector: whose benchmark numbers (tokens/s, TTFT, memory ...) the Overview's map,
scatterplot, filters, Pareto front and Selection Details use. URL key `device` (docs/urls.md).

Shown only when measurements exist for several devices. Picking one reloads the page with the new
`device` (every value, range and front changes), keeping the rest of the query.
"""
from __future__ import annotations

from dash import Input, Output, dcc, html

from cnc.experiment.forest import Experiment
from cnc.server.device import KEY
from cnc.ui.ids import cid, url_part

PART = "device"
DROPDOWN = cid("device", "dropdown")
SINK = cid("device", "sink")

# Set `device` in the page's query (the default device: no key) and load it.
_RELOAD = """function(value) {
    if (!value) { return window.dash_clientside.no_update; }
    const q = new URLSearchParams(window.location.search);
    q.delete("view");
    q.set("%s", value);
    window.location.search = q.toString();
    return window.dash_clientside.no_update;
}""" % KEY


def url_params(exp: Experiment) -> dict:
    return {"device": exp.device} if exp.device and exp.devices and exp.device != exp.devices[0] else {}  # KEY


def layout(exp: Experiment) -> list:
    """The selector and its URL part (nothing but the part when there is one device or none)."""
    part = dcc.Store(id=url_part(PART), data=url_params(exp))
    if len(exp.devices) < 2:
        return [part]
    return [part, dcc.Store(id=SINK), html.Label([
        html.Span("Device", className="control-label"),
        dcc.Dropdown(id=DROPDOWN, options=[{"label": d, "value": d} for d in exp.devices], value=exp.device,
                     clearable=False, className="device-dropdown", style={"minWidth": "18em"}),
    ], className="control device-control", title="Benchmark numbers (speed, latency, memory) measured on this device; "
                                                  "models not measured there show as missing")]


def register(app) -> None:
    app.clientside_callback(_RELOAD, Output(SINK, "data"), Input(DROPDOWN, "value"), prevent_initial_call=True)
