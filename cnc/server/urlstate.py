"""View state in the URL query string (pure; no Dash).

Each UI component owns a few query keys and validates its own values; this module only parses
and builds query strings, and shortens long ones: a query longer than `MAX_QUERY` is stored
server-side and replaced by `?view=<id>` (a content hash, so the same state gets the same id).
URL values are data: they are never used as paths or code.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode

from cnc.experiment.config import VIEW_DAYS, VIEW_MB

MAX_QUERY = 1500
MAX_INPUT = 200_000  # longer queries are ignored outright
_VIEW_ID = re.compile(r"^[0-9a-f]{12}$")


def parse_query(search: str | None) -> dict[str, str]:
    """'?a=1&b=x,y' -> {"a": "1", "b": "x,y"}; malformed pieces are skipped, last value wins."""
    if not search or len(search) > MAX_INPUT:
        return {}
    try:
        pairs = parse_qsl(search.lstrip("?"), keep_blank_values=False, max_num_fields=500)
    except ValueError:
        return {}
    return {k: v for k, v in pairs}


def build_query(params: dict[str, Any]) -> str:
    """Deterministic query string ('' when empty); lists are comma-joined; None is omitted."""
    clean = {}
    for key in sorted(params):
        value = params[key]
        if value is None or value == [] or value == "":
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(_fmt(v) for v in value)
        clean[key] = _fmt(value)
    return "?" + urlencode(clean, safe=",:;~") if clean else ""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def split_list(value: str | None) -> list[str]:
    return [x for x in (value or "").split(",") if x]


def pick(value: str | None, allowed: Iterable[str], default: str | None, notices: list[str], key: str) -> str | None:
    """`value` if it is one of `allowed`, else the default with a notice (None value: silent)."""
    allowed = list(allowed)
    if value is None:
        return default
    if value in allowed:
        return value
    notices.append(f"Ignored {key}={value[:60]!r} from the link: not a known value.")
    return default




def fits_address(query: str) -> bool:
    """A query short enough to stay in the URL as it is (longer ones live behind ?view=<id>)."""
    return len(query) <= MAX_QUERY


class ViewStore:
    """Long view states kept server-side (any mapping-like store: a diskcache works).

    With a diskcache backend each view expires `max_age` seconds after it was last saved or
    opened. The server gives views their own cache (`open_views`), so browsers filling it up
    can only evict other views, never precomputed summaries.
    """

    def __init__(self, backend: Any, max_age: float | None = None):
        self.backend = backend
        self.max_age = max_age

    def shorten(self, query: str) -> str:
        if fits_address(query):
            return query
        if len(query) > MAX_INPUT:  # would be ignored when opened: do not store it
            return ""
        view_id = hashlib.sha256(query.encode()).hexdigest()[:12]
        if hasattr(self.backend, "set"):
            self.backend.set(("view", view_id), query, expire=self.max_age, retry=True)
        else:
            self.backend[("view", view_id)] = query
        return "?" + urlencode({"view": view_id})

    def expand(self, search: str | None) -> tuple[str, list[str]]:
        """Resolve '?view=<id>' to the stored query; unknown ids give '' and a notice."""
        params = parse_query(search)
        view_id = params.get("view")
        if view_id is None:
            return search or "", []
        if not _VIEW_ID.match(view_id):
            return "", ["Ignored a malformed view id in the link."]
        try:
            stored = self.backend.get(("view", view_id))
            if stored is not None and hasattr(self.backend, "touch"):
                self.backend.touch(("view", view_id), expire=self.max_age)  # a used link stays alive
        except Exception:
            stored = None
        if stored is None:
            return "", [f"The saved view {view_id} is no longer available; showing defaults."]
        return stored, []


def open_views(cache_dir: str | Path, max_age_days: float = VIEW_DAYS, max_mb: float = VIEW_MB) -> ViewStore:
    """The server's view store: its own diskcache under `cache_dir/views`, capped and expiring
    (quick-checked at open like the summaries: a damaged one is moved aside, not fatal)."""
    from cnc.precompute.cache_db import open_checked

    cache, _ = open_checked(Path(cache_dir) / "views", size_limit=int(max_mb * 2 ** 20),
                            eviction_policy="least-recently-used")
    return ViewStore(cache, max_age=max_age_days * 86400)
