"""AG Grid's script (1.3 MB, 0.36 MB compressed), which only the Behaviors table uses, is fetched
when a grid first mounts instead of before every page draws anything.

Dash puts a script tag in every page for each component library the app imports; on the Overview
that was the largest script parsed before the renderer could start. The tag is swapped for its URL
(`window.cncGridSrc`), and assets/grid_loader.js stands in for `dash_ag_grid.AgGrid` until the
script is there (fetched on first mount, or in idle time once the Overview is drawn). A page
opened at /compare keeps the plain tag: its table is wanted at once.
"""
from __future__ import annotations

import json
import re

_GRID_TAG = re.compile(r'<script src="([^"]*/_dash-component-suites/dash_ag_grid/dash_ag_grid\.[^"]*\.js)"></script>')


def defer_grid(scripts_html: str, path: str) -> str:
    """Dash's script tags for a page at `path`, AG Grid's replaced by its URL unless on Compare."""
    if path.rstrip("/").endswith("/compare"):
        return scripts_html
    return _GRID_TAG.sub(lambda m: f"<script>window.cncGridSrc = {json.dumps(m.group(1))};</script>",
                         scripts_html, count=1)
