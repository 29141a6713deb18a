"""Placeholder until the behaviors tab lands."""
from __future__ import annotations

from dash import html


def layout(ctx, query: dict, notices: list[str]) -> html.Div:
    return html.Div("Coming soon.", className="hint")


def register(app, ctx) -> None:
    return None
