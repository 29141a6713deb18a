"""Failed callbacks: a short notice in the page, the traceback in the server log.

Dash calls `on_error` when a callback raises. The handler logs the traceback with a short
reference, writes a notice into the shell's error area (outside the page, so it shows on every
page) and leaves the callback's outputs unchanged. The notice names no internals beyond the
exception type; the reference finds the full traceback in the log. It clears when the user
dismisses it or opens another view.
"""
from __future__ import annotations

import logging
import uuid

from dash import Input, Output, callback_context, html, set_props

from cnc.ui.ids import cid

AREA = cid("errors", "area")
DISMISS = cid("errors", "dismiss")
log = logging.getLogger("cnc.callbacks")


def area() -> html.Div:
    return html.Div(id=AREA, className="error-area", role="alert")


def notice(ref: str, what: str) -> list:
    return [html.Div([
        html.Span(f"Something went wrong while updating {what}; the view may be out of date. Change it "
                  f"again or reload the page. (Reference {ref} in the server log.)"),
        html.Button("×", id=DISMISS, className="error-dismiss", title="Dismiss",
                    **{"aria-label": "Dismiss the error"}),
    ], className="notice notice-error")]


def handle(err: Exception) -> None:
    """Dash's `on_error` hook: log, show, change nothing else (returns None: no_update)."""
    ref = uuid.uuid4().hex[:8]
    outputs = callback_context.outputs_list if callback_context else []
    first = outputs[0] if isinstance(outputs, list) and outputs else outputs
    if isinstance(first, list):  # a pattern-matching output
        first = first[0] if first else {}
    target = (first or {}).get("id", "the view")
    log.error("callback for %s failed [ref %s]", target, ref, exc_info=err)
    what = target.get("cnc", "the view") if isinstance(target, dict) else "the view"
    set_props(AREA, {"children": notice(ref, f"the {what}" if what != "the view" else what)})


def register(app, url_id: str) -> None:
    """Dismissing the notice, or opening another page, clears it (in the browser)."""
    app.clientside_callback("function(n) { return n ? [] : window.dash_clientside.no_update; }",
                            Output(AREA, "children", allow_duplicate=True), Input(DISMISS, "n_clicks"),
                            prevent_initial_call=True)
    app.clientside_callback("function(path) { return []; }", Output(AREA, "children", allow_duplicate=True),
                            Input(url_id, "pathname"), prevent_initial_call=True)
