"""Type-to-find model picker (Overview): a searchable multi-select over model ids, tags and the
operation that made each model. It reads and writes the page's selection store, so picking here
selects and highlights in the Model Map and the Scatterplot, and a selection made there shows
here. Models the filters disable are listed but cannot be picked. Keyboard: type, arrows, Enter;
Backspace removes the last pick.

The options are searched on the server and sent LIMIT at a time (plus the picked models), so the
page and every filter change stay small at thousands of models."""
from __future__ import annotations

from itertools import islice

from dash import Input, Output, State, dcc, html, no_update

from cnc.analysis.filters import enabled_models, from_data
from cnc.analysis.map_positions import per_experiment
from cnc.analysis.recipe_text import model_name, model_title, operation_text, recipe_text
from cnc.analysis.short_labels import distinct_labels
from cnc.experiment.forest import Experiment
from cnc.server.context import AppContext
from cnc.ui.ids import cid
from cnc.ui.inputs import ids, text

PICKER = cid("picker", "models")
FOUND = cid("picker", "found")  # the server's options, before the browser adds the picked models
LIMIT = 50  # options sent per search; typing narrows them
LABEL_WIDTH = 48  # characters of a name in the list (the id follows it)


def _search_text(m) -> str:
    op = operation_text(m)
    names = " ".join(m.operation.parameters) if m.operation else ""  # "amount" finds prunes too
    return f"{m.id} {m.tag} {op} {names}"


@per_experiment
def _haystacks(exp: Experiment) -> dict[str, str]:
    """Model id -> the text a search looks in, built once per experiment (on the first search)."""
    return {m.id: _search_text(m) for m in exp.models.values()}


def labels(exp: Experiment, shown: list[str]) -> dict[str, str]:
    """Each listed model's entry: its name (a tag a person gave it, else its recipe), shortened
    where it is like the other listed ones' (the words that tell them apart kept, as on the map
    and the Pareto chips), then its id; the full recipe is the option's hover title."""
    names = {mid: model_name(exp.models[mid]) for mid in shown}
    names = {mid: recipe_text(exp, mid) or mid if name == mid else name for mid, name in names.items()}
    short = distinct_labels(names, LABEL_WIDTH)
    return {mid: mid if short[mid] == mid else f"{short[mid]} · {mid}" for mid in shown}


def options(exp: Experiment, enabled: set[str] | None = None, search: str = "",
            keep: list[str] = ()) -> list[dict]:
    """The picked models (`keep`) and the first LIMIT models whose id, tag or operation contain
    every word of `search`, in experiment order. Without a search (the page as first drawn) only
    the listed models' search texts are built."""
    words = search.lower().split()[:8]
    shown = []
    if words:
        for mid, haystack in _haystacks(exp).items():
            if len(shown) == LIMIT:
                break
            if all(w in haystack.lower() for w in words):
                shown.append(mid)
    else:
        shown = list(islice(exp.models, LIMIT))
    shown_set = set(shown)
    shown += [m for m in dict.fromkeys(keep) if m in exp.models and m not in shown_set]

    texts = labels(exp, shown)
    haystacks = _haystacks(exp) if words or len(shown) > 2 * LIMIT else None  # a big selection: the memo

    def option(mid: str) -> dict:  # on hover: its name, id and full recipe, as the chips'
        haystack = haystacks[mid] if haystacks is not None else _search_text(exp.models[mid])
        return {"label": texts[mid], "value": mid, "search": haystack,
                "disabled": enabled is not None and mid not in enabled, "title": model_title(exp, mid)}

    return [option(m) for m in shown]


def layout(exp: Experiment, selection: list[str], enabled: set[str]) -> html.Div:
    return html.Div([dcc.Dropdown(
        id=PICKER, options=options(exp, enabled, keep=selection), value=list(selection), multi=True,
        searchable=True,
        placeholder="Find models: type an id, tag or operation…", className="model-picker",
        optionHeight=30, maxHeight=320,
    ), dcc.Store(id=FOUND)], className="model-picker-wrap",
        title="Type to find models; Enter selects, Backspace removes")


def picked_selection(exp: Experiment, value, current, filters) -> list[str] | object:
    """The selection after a pick: known models that pass the filters, in picking order. The
    picker echoing a selection made elsewhere changes nothing (and skips the filters)."""
    value, current = ids(value, exp.models), ids(current, exp.models)
    if value == current:
        return no_update
    ok = set(enabled_models(exp, from_data(filters, exp)))
    new = [m for m in value if m in ok]
    return new if new != current else no_update


def register(app, ctx: AppContext, selection_store: dict, enabled_store: dict, filters_state: State) -> None:
    @app.callback(
        Output(selection_store, "data", allow_duplicate=True),
        Input(PICKER, "value"), State(selection_store, "data"), filters_state,
        prevent_initial_call=True,
    )
    def picked(value, current, filters):
        return picked_selection(ctx.experiment, value, current, filters)

    @app.callback(Output(FOUND, "data"), Input(PICKER, "search_value"), Input(enabled_store, "data"),
                  State(PICKER, "value"), prevent_initial_call=True)
    def update_options(search, enabled, value):
        exp = ctx.experiment
        return options(exp, set(ids(enabled, exp.models)), (text(search) or "")[:200], ids(value, exp.models))

    # In the browser, with the picker's value as it is now: a selection made in the map or the
    # scatterplot shows in the picker, and the options always list every picked model. The dropdown
    # drops a value its options lack, so options the server computed for an older value (a filter
    # change racing a pick) would otherwise unpick a model and empty the selection.
    app.clientside_callback(
        """function(selection, found, value, shown) {
            var noUpdate = window.dash_clientside.no_update;
            var trig = (window.dash_clientside.callback_context.triggered || []).map(function(t) { return t.prop_id; });
            var fromServer = trig.some(function(p) { return p.indexOf('"found"') >= 0; });
            var sel = Array.isArray(selection) ? selection : [];
            var fromSelection = trig.some(function(p) { return p.indexOf('"found"') < 0; });
            var newValue = fromSelection && JSON.stringify(sel) !== JSON.stringify(value || []) ? sel : null;
            var want = (newValue || value || []);
            var base = fromServer && Array.isArray(found) ? found : (shown || []);
            var known = {};
            (shown || []).forEach(function(o) { if (o && o.value !== undefined) { known[o.value] = o; } });
            var listed = {};
            base.forEach(function(o) { if (o && o.value !== undefined) { listed[o.value] = true; } });
            var missing = want.filter(function(v) { return !listed[v]; });
            var options = fromServer || missing.length
                ? base.concat(missing.map(function(v) { return known[v] || {label: String(v), value: v, search: String(v)}; }))
                : noUpdate;
            return [newValue === null ? noUpdate : newValue, options];
        }""",
        Output(PICKER, "value"), Output(PICKER, "options"),
        Input(selection_store, "data"), Input(FOUND, "data"), State(PICKER, "value"), State(PICKER, "options"),
        prevent_initial_call=True,
    )
