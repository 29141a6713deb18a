"""selection.*: the Selection Details panel's server-side work per user action (issue 4).

`selection.panel` is a new selection (cold explanation: the memo is cleared), the callback's whole
output JSON-encoded (table + figure); `selection.metric` a metric change on the same selection
(explanation memoized); `selection.refine` a refinement (flatten) on it. Random models from the
synthetic forest, where several operations compete, so explanations often need refinement.
"""
from __future__ import annotations

import json
import random
from types import SimpleNamespace

import plotly.utils

from cnc.bench import median_ms
from cnc.experiment.synthetic import make_experiment
from cnc.ui import selection_details as sd
from cnc.ui.selection_table import table_data


def render_panel(ctx, selection: list[str], metric: str | None, refinement: sd.Refinement) -> int:
    """What update_panel computes and sends, as bytes."""
    content = sd.panel_content(ctx, selection, metric, refinement)
    out = [table_data(ctx.experiment, content), content.figure, content.notes,
           sd.url_params(ctx, content.metric, refinement)]
    return len(json.dumps(out, cls=plotly.utils.PlotlyJSONEncoder))


def scenarios(quick: bool) -> list[dict]:
    out = []
    for k in (10,) if quick else (10, 50, 200, 1000):
        exp = make_experiment(2 * k, seed=k)
        ctx = SimpleNamespace(experiment=exp, version=0, config=SimpleNamespace(defaults=SimpleNamespace(color=None)))
        selection = random.Random(k).sample(list(exp.models), k)
        metrics = list(exp.metrics)

        def cold() -> None:
            sd._memo.clear()
            render_panel(ctx, selection, metrics[0], sd.Refinement())

        size = render_panel(ctx, selection, metrics[0], sd.Refinement())
        out.append({"scenario": "selection.panel", "models": k, "ms": median_ms(cold), "bytes": size})
        out.append({"scenario": "selection.metric", "models": k,
                    "ms": median_ms(lambda: render_panel(ctx, selection, metrics[-1], sd.Refinement()))})
        out.append({"scenario": "selection.refine", "models": k,
                    "ms": median_ms(lambda: render_panel(ctx, selection, metrics[0], sd.Refinement(flatten=True)))})
    return out
