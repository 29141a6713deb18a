"""The Compare page's selection: which models, which base, which tab (URL keys `models`, `base`,
`tab`), read by the page and by its tabs (Behaviors, Layers) from the `selection` store."""
from __future__ import annotations

from typing import Any

from cnc.server.context import AppContext
from cnc.server.urlstate import pick, split_list
from cnc.ui.ids import cid
from cnc.ui.inputs import ids, mapping

TABS = ("behaviors", "layers")
SELECTION = cid("compare", "selection")


def default_base(ctx: AppContext, models: list[str]) -> str | None:
    """The selected model nearest the root (ties: first selected)."""
    if not models:
        return None
    return min(models, key=lambda m: (ctx.experiment.depth(m), models.index(m)))


def ordered(models: list[str], base: str | None) -> list[str]:
    return ([base] if base in models else []) + [m for m in models if m != base]


def selection_from_query(ctx: AppContext, query: dict, notices: list[str]) -> tuple[list[str], str | None, str]:
    raw = split_list(query.get("models"))
    models = [m for m in dict.fromkeys(raw) if m in ctx.experiment.models]
    if len(models) < len(raw):
        notices.append(f"Ignored {len(raw) - len(models)} unknown or repeated model id(s) from the link.")
    base = pick(query.get("base"), models, default_base(ctx, models), notices, "base")
    tab = pick(query.get("tab"), TABS, "behaviors", notices, "tab")
    return models, base, tab


def url_params(ctx: AppContext, models: list[str], base: str | None, tab: str) -> dict:
    return {
        "models": models or None,
        "base": base if base != default_base(ctx, models) else None,
        "tab": tab if tab != "behaviors" else None,
    }


def selected_models(ctx: AppContext, selection: Any) -> list[str]:
    """The compare page's selection store (base first), known models only."""
    return ids(mapping(selection).get("models"), ctx.experiment.models)
