"""Component ids. Dash pattern-matching ids (dicts), never ids glued from strings.

Convention: {"cnc": <component name>, "role": <what it is>} (plus "index" etc. for repeated items).
Each component module keeps its ids in one place via `cid`.
"""
from __future__ import annotations

from typing import Any

URL = "url"  # the single dcc.Location
PAGE = "page"  # the page container


def cid(component: str, role: str, **extra: Any) -> dict:
    """A pattern-matching id: cid("map", "graph") -> {"cnc": "map", "role": "graph"}."""
    return {"cnc": component, "role": role, **extra}


def url_part(component: str) -> dict:
    """The dcc.Store in which a component keeps its share of the URL query (a dict of params)."""
    return {"cnc": "url-part", "role": component}
