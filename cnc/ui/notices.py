"""Small visible notices (ignored URL values, experiment warnings, missing data)."""
from __future__ import annotations

from dash import html


def notices(messages: list[str], kind: str = "info") -> html.Div:
    return html.Div([html.Div(m, className=f"notice notice-{kind}") for m in messages],
                    className="notices")
