"""Performance Comparison page (`/compare`): selected models vs a base, Behaviors and Layers tabs.

The selection (URL keys `models`, `base`, `tab`) is parsed in cnc.ui.compare_selection; the tabs
are components (cnc.ui.behaviors, cnc.ui.layers) that read the `selection` store.
"""
from __future__ import annotations

from dash import Input, Output, State, dcc, html, no_update

from cnc.analysis.recipe_text import model_name
from cnc.server.context import AppContext
from cnc.ui import behaviors, compare_strip, layers
from cnc.ui.compare_selection import (  # noqa: F401 (the page's API)
    SELECTION,
    TABS,
    default_base,
    ordered,
    selection_from_query,
    url_params,
)
from cnc.ui.ids import cid, url_part
from cnc.ui.inputs import ids, one_of
from cnc.ui.notices import notices as notice_box

MODELS = cid("compare", "models")
BASE = cid("compare", "base")
TAB = cid("compare", "tab")


def layout(ctx: AppContext, query: dict, notices: list[str]) -> html.Div:
    models, base, tab = selection_from_query(ctx, query, notices)
    options = [{"label": f"{name} ({m.id})" if (name := model_name(m)) != m.id else m.id, "value": m.id}
               for m in ctx.experiment.models.values()]
    tab_notices: list[str] = []
    body = [
        behaviors.layout(ctx, query, tab_notices),
        layers.layout(ctx, query, tab_notices),
    ]
    return html.Div([
        notice_box(notices + ctx.model_notices(models) + tab_notices),
        dcc.Store(id=url_part("compare"), data=url_params(ctx, models, base, tab)),
        dcc.Store(id=SELECTION, data={"models": ordered(models, base), "base": base}),
        html.Div([
            html.Label(["Models", dcc.Dropdown(id=MODELS, options=options, value=models, multi=True,
                                               placeholder="Pick two or more models to compare")],
                       className="control wide"),
            html.Label(["Base model", dcc.Dropdown(id=BASE, options=_base_options(ctx, models), value=base,
                                                   clearable=False)], className="control"),
        ], className="controls"),
        html.Div(_hint(models), id=cid("compare", "hint"), className="hint"),
        compare_strip.layout(ctx.experiment, ordered(models, base)),
        dcc.Tabs(id=TAB, value=tab, children=[
            dcc.Tab(label="Behaviors", value="behaviors", children=body[0]),
            dcc.Tab(label="Layers", value="layers", children=body[1]),
        ]),
    ], className="compare-page")


def _base_options(ctx: AppContext, models: list[str]) -> list[dict]:
    return [{"label": ctx.experiment.models[m].label, "value": m} for m in models]


def _hint(models: list[str]) -> str:
    if len(models) < 2:
        return ("Select two or more models (here, or on the Overview with Compare) to see what "
                "compression changed relative to a base model.")
    return ""


def register(app, ctx: AppContext) -> None:
    @app.callback(
        Output(SELECTION, "data"), Output(url_part("compare"), "data"),
        Output(BASE, "options"), Output(BASE, "value"), Output(cid("compare", "hint"), "children"),
        Input(MODELS, "value"), Input(BASE, "value"), Input(TAB, "value"),
        State(SELECTION, "data"),
        prevent_initial_call=True,
    )
    def update_selection(models, base, tab, current):
        models = ids(models, ctx.experiment.models)
        base = one_of(base, models, default_base(ctx, models))
        tab = one_of(tab, TABS, "behaviors")
        selection = {"models": ordered(models, base), "base": base}
        return (selection if selection != current else no_update,
                url_params(ctx, models, base, tab), _base_options(ctx, models), base, _hint(models))

    behaviors.register(app, ctx)
    layers.register(app, ctx)
    compare_strip.register(app, ctx)
