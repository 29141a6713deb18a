"""Keeps the URL and the views in step.

Each component keeps its query params in a `url_part` store; one callback merges all parts into
the URL (pushing browser history). The router re-renders a page only when the URL differs from
what the parts say (a pasted link, back/forward), never for the app's own writes.
"""
from __future__ import annotations

from dash import ALL, Input, Output, State, callback_context, no_update

from cnc.server.urlstate import ViewStore, build_query, parse_query
from cnc.ui.ids import URL, url_part
from cnc.ui.inputs import items, mapping


def merged_query(parts: list[dict | None]) -> dict:
    merged: dict = {}
    for part in items(parts):
        merged.update(mapping(part))
    return merged


def register(app, views: ViewStore) -> None:
    @app.callback(
        Output(URL, "search", allow_duplicate=True),
        Input(url_part(ALL), "data"),
        State(URL, "search"),
        prevent_initial_call=True,
    )
    def write_url(parts, current):
        if not callback_context.triggered or all(t["value"] is None for t in callback_context.triggered):
            return no_update
        query = views.shorten(build_query(merged_query(parts)))
        return no_update if query == (current or "") else query


def same_state(search: str, parts: list[dict | None], views: ViewStore) -> bool:
    """True when the URL already encodes the parts (the app wrote it)."""
    expanded, _ = views.expand(search)
    return parse_query(expanded) == parse_query(build_query(merged_query(parts)))
