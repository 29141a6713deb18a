"""Behaviors tab at scale: 8 models x 100,000 instances x 100 classes of synthetic outputs.

Outputs are generated deterministically per model on demand (never all held at once, as a disk
cache would serve them). After the per-(selection, base) table is built once, each scenario times
what the server does when the user switches the row mode, sorts or filters: a cold view through the
callback code (filter, sort, histograms, the new grid component, the first block of rows, all
JSON-encoded). The build record carries the table build time (without generating the synthetic
outputs, reported apart as generate_ms) and memory: tracemalloc peak over the build plus a full view cache, and process peak RSS.
"""
from __future__ import annotations

import json
import time
import tracemalloc

import numpy as np
import plotly.utils

from cnc.analysis import behavior_cells, behavior_metrics, behavior_table, behavior_view
from cnc.bench import median_ms, peak_rss_mb
from cnc.experiment.synthetic import make_experiment
from cnc.ui import behaviors as ui
from cnc.ui import behaviors_data
from cnc.ui.behaviors_grid import col_for_sort

CHUNK = 10_000


class SyntheticOutputs:
    """Plausible outputs: model k adds more logit noise to the base, so errors and flips grow with k."""

    def __init__(self, model_ids: list[str], n: int, classes: int, seed: int = 0):
        self.model_ids, self.n, self.classes, self.seed = list(model_ids), n, classes, seed
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, classes, n).astype(np.int64)
        ink = np.array(["light", "medium", "heavy"])
        self.attributes = {"ink density": list(ink[rng.integers(0, 3, n)])}
        self.class_names = [f"class {c}" for c in range(classes)]

    def task_data(self) -> dict:
        return {"labels": self.labels, "class_names": self.class_names, "attributes": self.attributes,
                "sample_index": np.arange(min(self.n, 64))}

    def outputs(self, model_id: str) -> dict | None:
        if model_id not in self.model_ids:
            return None
        k = self.model_ids.index(model_id)
        probs = np.empty((self.n, self.classes), dtype=np.float32)
        for s in range(0, self.n, CHUNK):
            rows = slice(s, min(s + CHUNK, self.n))
            base = np.random.default_rng((self.seed, s)).standard_normal((rows.stop - s, self.classes), np.float32)
            base[np.arange(rows.stop - s), self.labels[rows]] += 4.0
            if k:
                noise = np.random.default_rng((self.seed, k, s)).standard_normal(base.shape, np.float32)
                base += noise * (0.4 * k)
            base -= base.max(axis=1, keepdims=True)
            np.exp(base, out=base)
            base /= base.sum(axis=1, keepdims=True)
            probs[rows] = base
        preds = probs.argmax(axis=1).astype(np.int64)
        loss = -np.log(np.maximum(probs[np.arange(self.n), self.labels], 1e-7)).astype(np.float32)
        return {"probs": probs, "preds": preds, "scalars": {"loss": loss}}

    def instance(self, i: int) -> dict | None:
        if not 0 <= i < self.n:
            return None
        rng = np.random.default_rng((self.seed, 7, i))
        return {"kind": "image", "pixels": rng.integers(0, 16, (8, 8)).tolist()}

    def status(self, model_id: str) -> str:
        return "ready" if model_id in self.model_ids else "no data"

    def attach(self, ctx) -> None:
        """Make an AppContext serve these outputs (tests and benchmarks only)."""
        ctx.task_data, ctx.outputs, ctx.instance, ctx.status = self.task_data, self.outputs, self.instance, self.status


def bench_models(n: int) -> list[str]:
    """n model ids that the synthetic experiment of _BenchContext has (root0, m2, m3, ...)."""
    return ["root0"] + [f"m{k}" for k in range(2, n + 1)]


class _BenchContext:
    """Just what the Behaviors callbacks read from an AppContext: an experiment holding the
    benchmark's models (callbacks drop ids the experiment does not know) and their outputs."""

    task_hash = None

    def __init__(self, data, models: list[str]):
        self.experiment = make_experiment(len(models) + 1)  # holds `models` (see bench_models): callbacks drop unknown ids
        unknown = set(models) - set(self.experiment.models)
        assert not unknown, f"benchmark models missing from the experiment: {sorted(unknown)}"
        self.task_data, self.outputs, self.instance, self.status = data.task_data, data.outputs, data.instance, data.status


def open_view(ctx, models: list[str], state: behavior_view.ViewState, clear: bool = True) -> None:
    """What the server does when a control changes: new grid (columns, sparklines) + first block of
    rows, JSON-encoded; `clear` drops memoized views so the view is built cold."""
    if clear:
        behaviors_data.VIEWS.clear()
    selection = {"models": models, "base": models[0]}
    children, status = ui.render_table(ctx, models, state, version="bench")
    table = ui.table_for(ctx, models)
    sort = col_for_sort(view := ui.view_for(ctx, table, state))
    request = {"startRow": 0, "endRow": 100,
               "sortModel": [{"colId": sort, "sort": "desc" if state.desc else "asc"}] if sort else []}
    response, _ = ui.on_rows(ctx, request, selection, ui.state_to_dict(state, None))
    json.dumps([c.to_plotly_json() for c in children], cls=plotly.utils.PlotlyJSONEncoder)
    json.dumps(response)
    assert response["rowCount"] == view.row_count


def scenarios(quick: bool) -> list[dict]:
    n, classes, n_models = (2_000, 10, 4) if quick else (100_000, 100, 8)
    models = bench_models(n_models)
    data = SyntheticOutputs(models, n, classes)
    task = data.task_data()
    tracemalloc.start()
    generating = [0.0]

    def timed_outputs(mid: str) -> dict | None:  # generation stands in for reading the disk cache
        t = time.perf_counter()
        out = data.outputs(mid)
        generating[0] += time.perf_counter() - t
        return out

    t0 = time.perf_counter()
    table = behavior_table.build_table(task["labels"], models, timed_outputs, data.status)
    table.kl  # the MSE / KL columns (computed lazily by the app) count as part of the build here
    build_ms = (time.perf_counter() - t0 - generating[0]) * 1000
    specs = behavior_metrics.metric_specs(table.scalars)
    cases = {
        "behaviors.rows_classes": behavior_view.ViewState(mode="classes", metric="error", rel=True),
        "behaviors.rows_subgroups": behavior_view.ViewState(mode="subgroups", attribute="ink density", metric="error", rel=True),
        "behaviors.rows_instances": behavior_view.ViewState(mode="instances", metric="kl"),
        "behaviors.rows_exemplars": behavior_view.ViewState(mode="exemplars", min_flips=2),
        "behaviors.sort_instances": behavior_view.ViewState(mode="instances", metric="conf", rel=True, sort=models[-1], desc=False),
        "behaviors.sort_flips": behavior_view.ViewState(mode="instances", sort="flips"),
        "behaviors.filter_newerr": behavior_view.ViewState(mode="instances", filt="newerr", metric="flip", sort=models[-1]),
        "behaviors.filter_threshold": behavior_view.ViewState(mode="classes", metric="flip", threshold=0.2),
    }

    ctx = _BenchContext(data, models)
    behaviors_data.TABLES.get_or((id(ctx), None, tuple(models), tuple("ready" for _ in models)), lambda: table)
    selection = {"models": models, "base": models[0]}

    def cold(state: behavior_view.ViewState, clear: bool = True) -> None:
        open_view(ctx, models, state, clear)

    for state in cases.values():  # the memory pass: table plus a full view cache
        cold(state, clear=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    records = [{"scenario": name, "models": n_models, "ms": median_ms(lambda s=state: cold(s)), "instances": n,
                "classes": classes} for name, state in cases.items()]

    def drill(group_view: behavior_view.ViewState, row: int) -> None:
        """A class / subgroup row clicked: the click handler, then its restricted instance view."""
        clicked = ui.on_group_click(ctx, {"rowId": f"g{row}", "colId": "row"}, selection,
                                    ui.state_to_dict(group_view, None))
        assert clicked is not None and clicked["group"], "the click must drill down"
        cold(ui.state_from_dict(clicked)[0])

    drills = {  # error change, sorted by the last model: which of the group's instances broke
        "behaviors.drill_group": (behavior_view.ViewState(mode="classes", rel=True, sort=models[-1]), 8),
        "behaviors.drill_subgroup": (behavior_view.ViewState(mode="subgroups", attribute="ink density", rel=True,
                                                 filt="newerr", sort=models[-1]), 0),
    }
    for name, (group_view, row) in drills.items():
        records.append({"scenario": name, "models": n_models, "instances": n, "classes": classes,
                        "ms": median_ms(lambda v=group_view, r=row: drill(v, r))})
    behaviors_data.VIEWS.clear()
    deep = behavior_view.build_view(table, behavior_view.ViewState(mode="instances", sort=models[1]), specs, task["class_names"],
                        task["attributes"])
    records.append({"scenario": "behaviors.page_deep", "models": n_models, "instances": n, "classes": classes,
                    "ms": median_ms(lambda: json.dumps(behavior_cells.page_rows(deep, table, n // 2, n // 2 + 100,
                                                                   task["class_names"])))})
    records.append({"scenario": "behaviors.build_table", "models": n_models, "ms": round(build_ms, 1),
                    "generate_ms": round(generating[0] * 1000, 1), "instances": n, "classes": classes, "table_mb": round(table.nbytes() / 2 ** 20, 1),
                    "tracemalloc_peak_mb": round(peak / 2 ** 20, 1),
                    "peak_rss_mb": peak_rss_mb()})
    return records
