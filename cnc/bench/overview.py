"""overview.*: server-side time and payload of the Overview's callbacks on synthetic experiments.

Each record times one callback body (the functions the Dash callbacks call) and, where it sends
a figure or elements, the JSON payload in bytes. "Cold" records run on a fresh experiment object
per run (what a reload or a model logged meanwhile gives: every per-experiment memo empty).
`tree_layout_cold` is the map's forest layouts; `page_layout_cold` the whole Overview page when
it is requested before the server's load-time warm-up (`overview.warm`, in a background thread
after every load) has run; `load_warmup` that warm-up itself; `page_layout_after_load` the page
once it has run (what a user opening the app after a load waits for).
`selection_change` is the server's share of a selection change (the selection bar; the map and
the scatterplot outline it in the browser); `selection_change_with_details` adds the Selection
Details panel (cold explanation) that every selection change also triggers. Colour, axis and
filter changes are drawn in the browser (`browser.*` records): their records here are the
server's share, which no redraw waits for.
"""
from __future__ import annotations

import json
import random
from types import SimpleNamespace

import plotly.utils
from dash import Patch, no_update

from cnc.analysis import map_positions
from cnc.analysis.filters import Filter, enabled_models, to_data
from cnc.analysis.pareto import pareto_front
from cnc.bench import median_ms
from cnc.bench.selection import render_panel
from cnc.experiment.config import Defaults
from cnc.experiment.synthetic import make_experiment
from cnc.pages import overview
from cnc.ui import filters as filter_ui
from cnc.ui import legend, model_map, model_picker, scatter
from cnc.ui import selection_details as sd


def _bytes(obj) -> int:
    return len(json.dumps(obj, cls=plotly.utils.PlotlyJSONEncoder))


def _ctx(exp):
    """Just what the page reads from an AppContext (no cache, no task)."""
    return SimpleNamespace(experiment=exp, config=SimpleNamespace(defaults=Defaults(), experiment=exp), version=0)


def _fresh(n: int, runs: int = 6):
    """A callable giving a new copy of the n-model experiment per call (`median_ms` runs 6)."""
    copies = iter([make_experiment(n, seed=1) for _ in range(runs)])
    return lambda: next(copies)


def _tree_layouts(exp) -> None:
    map_positions.forest_layout(exp, "step")
    map_positions.forest_layout(exp, "op")


def _after_load(exp):
    """The page's context once the load-time warm-up has run on `exp`."""
    ctx = _ctx(exp)
    overview.warm(ctx)
    sd._memo.clear()
    return ctx


def scenarios(quick: bool) -> list[dict]:
    out = []
    for n in (100,) if quick else (100, 1000, 5000):
        exp = make_experiment(n, seed=1)
        ctx = _ctx(exp)
        rng = random.Random(0)
        ids = list(exp.models)
        filters = [Filter("Accuracy", 0.8, None), Filter("Latency", None, 6.0)]
        enabled = enabled_models(exp, filters)
        selection = rng.sample(enabled, min(len(enabled), max(2, n // 20)))

        def rec(what: str, fn, payload=None, **extra) -> None:
            record = {"scenario": f"overview.{what}", "models": n, "ms": median_ms(fn)}
            if payload is not None:
                record["bytes"] = _bytes(payload)
            record.update(extra)
            out.append(record)

        fresh = _fresh(n)
        rec("tree_layout_cold", lambda: _tree_layouts(fresh()))
        fresh = _fresh(n)
        rec("page_layout_cold", lambda: (sd._memo.clear(), overview.layout(_ctx(fresh()), {}, []).to_plotly_json()),
            note="requested before the load-time warm-up ran")
        fresh = _fresh(n)
        rec("load_warmup", lambda: overview.warm(_ctx(fresh())), note="background thread after each load")
        warmed = iter([_after_load(make_experiment(n, seed=1)) for _ in range(6)])
        rec("page_layout_after_load", lambda: overview.layout(next(warmed), {}, []).to_plotly_json(),
            note="the first request after the warm-up")
        key = model_map.experiment_key(exp)

        def map_update(trigger, mode="op", key=key):
            out = overview.map_outputs(exp, mode, [trigger], key)
            return [o.to_plotly_json() if isinstance(o, Patch) else o for o in out if o is not no_update]

        rec("map_update", lambda: map_update(legend.COLOR), payload=map_update(legend.COLOR),
            note="colour change: nothing to send (the browser encodes)")
        rec("map_mode", lambda: map_update(model_map.MODE, mode="step"), payload=map_update(model_map.MODE, mode="step"),
            note="column mode change: positions and a new layout")
        rec("map_full", lambda: map_update(legend.COLOR, key=None), payload=map_update(legend.COLOR, key=None),
            note="the whole map data and model values (the experiment changed)")
        rec("page", lambda: overview.layout(ctx, {}, []),
            payload=overview.layout(ctx, {}, []), note="the page as the router sends it")
        rec("hover", lambda: (model_map.tooltip(exp, {"mid": ids[-1]}),
                              scatter.hover_card(exp, {"points": [{"curveNumber": 1, "customdata": ids[-1]}]})),
            payload=[model_map.tooltip(exp, {"mid": ids[-1]}),
                     [c.to_plotly_json() for c in scatter.hover_card(exp, {"points": [{"curveNumber": 1, "customdata": ids[-1]}]})[2]]])
        front_ids = pareto_front([(m, exp.models[m].metrics.get("Size"), exp.models[m].metrics.get("Accuracy"))
                                  for m in enabled], False, True)
        rec("axis_change", lambda: (map_update(scatter.X), scatter.front_list(exp, front_ids)),
            payload=[c.to_plotly_json() for c in scatter.front_list(exp, front_ids)],
            note="the server's share: the front's chips (the browser draws the figure)")
        rec("filter_change", lambda: enabled_models(exp, filters), payload=enabled)
        rec("filter_cascade", lambda: (
            overview.selection_after(exp, None, "data", None, None, None, enabled, selection, []),
            map_update(filter_ui.FILTERS),
            model_picker.options(exp, set(enabled), "", selection),
        ), payload=model_picker.options(exp, set(enabled), "", selection),
            note="the server's callbacks of a filter change: selection check, map key, picker options")
        nodes = [{"id": model_map.node_id(m)} for m in selection]
        rec("selection_change", lambda: (
            overview.selection_after(exp, model_map.GRAPH, "selectedNodeData", nodes, None, None, enabled, [], []),
            overview.selection_outputs(exp, selection),
        ), payload=list(overview.selection_outputs(exp, selection)))
        rec("selection_change_overview", lambda: (
            overview.selection_after(exp, model_map.GRAPH, "selectedNodeData", nodes, None, None, enabled, [], []),
            overview.selection_outputs(exp, selection),
            overview.url_params(ctx, "op", "Latency", "Size", "Size", "Accuracy", to_data(filters), selection),
            model_picker.picked_selection(exp, selection, selection, to_data(filters)),
        ), note="every Overview callback a selection change runs (map/scatter highlight, URL, picker echo)")
        rec("selection_change_with_details", lambda: (
            overview.selection_after(exp, model_map.GRAPH, "selectedNodeData", nodes, None, None, enabled, [], []),
            overview.selection_outputs(exp, selection),
            sd._memo.clear(),
            render_panel(ctx, selection, "Accuracy", sd.Refinement()),
        ))
        rec("subtree", lambda: overview.next_selection(exp, "subtree", selection, enabled))
        rec("url_state", lambda: overview.url_params(ctx, "op", "Latency", "Size", "Size", "Accuracy",
                                                      to_data(filters), selection))
        rec("histogram", lambda: filter_ui.hist_figure(exp, filters[0]),
            payload=filter_ui.hist_figure(exp, filters[0]))
        rec("colour_change", lambda: (map_update(legend.COLOR), legend.legend(exp, "Latency", "Size")),
            payload=[c.to_plotly_json() for c in legend.legend(exp, "Latency", "Size")],
            note="the server's share: the legend (the browser recolours map and scatterplot)")
    return out
