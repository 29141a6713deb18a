"""Selection Details' paired tests: each selected model's change in the charted metric against the
root of its tree, when the metric is one the app evaluated per instance (cnc.analysis.selection_tests).
The chart's hover gives each tested model's verdict, interval and test; the CSV export its columns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnc.analysis.behavior_significance import RowTests, cell_text
from cnc.analysis.derived_metrics import SUFFIX
from cnc.analysis.selection_tests import CSV_COLUMNS, csv_cells, instance_values, model_tests
from cnc.server.context import AppContext
from cnc.server.memo import Memo

MAX_TESTED = 500  # selected models tested at most (each reads its stored outputs once)
_MEMO = Memo(16)


@dataclass
class SelectionTests:
    """The tested models (in selection order), their roots and their tests (row k + 1 is model k)."""

    metric: str
    models: list[str] = field(default_factory=list)
    roots: dict[str, str] = field(default_factory=dict)
    tests: RowTests | None = None

    def hover(self) -> dict[str, str]:
        """Model id -> "vs ROOT: verdict, interval, test" for the chart's hover."""
        if self.tests is None:
            return {}
        over = f"the {len(self.models)} models tested" if len(self.models) > 1 else "1 model: none"
        return {m: f"vs {self.roots[m]}: {cell_text(self.tests, k, 0, over)}" for k, m in enumerate(self.models, start=1)}

    def note(self) -> str | None:
        if self.tests is None:
            return None
        test = "exact McNemar test" if self.tests.test == "mcnemar" else "paired bootstrap"
        return (f"Each model's {self.metric} against the root of its tree: {test} over the instances, Holm-adjusted "
                f"over the {len(self.models):,} models tested; hover a bar for the interval and the verdict.")

    def csv(self, selection: list[str]) -> tuple[list[str], list[list]]:
        """(header, one list of cells per selected model) of the tests; a model without one is blank."""
        header = [f"{self.metric} · {c}" for c in CSV_COLUMNS]
        index = {m: k for k, m in enumerate(self.models, start=1)}
        return header, [csv_cells(self.tests if m in index else None, index.get(m, 0), self.roots.get(m))
                        for m in selection]


def selection_tests(ctx: AppContext, metric: str | None, selection: list[str]) -> SelectionTests | None:
    """The tests of the selected models in `metric`, or None (not a metric the app evaluated per
    instance: logged metrics have no per-instance values)."""
    if not metric or not metric.endswith(SUFFIX) or ctx.task_hash is None:
        return None
    key = (ctx.version, ctx.task_hash, metric, tuple(selection), ctx.store.done_count())
    return _MEMO.get_or(key, lambda: _compute(ctx, metric, selection[:MAX_TESTED]))


def _compute(ctx: AppContext, metric: str, selection: list[str]) -> SelectionTests:
    exp, task = ctx.experiment, ctx.task_data() or {}
    labels = np.asarray(task["labels"]) if task.get("labels") is not None else None
    found = SelectionTests(metric)
    pairs, what = {}, None
    for mid in selection:
        root = exp.path_to_root(mid)[0] if mid in exp.models else mid
        if root == mid:
            continue
        out, root_out = ctx.outputs(mid), ctx.outputs(root)
        mine, theirs = instance_values(metric, out, labels, root_out), instance_values(metric, root_out, labels, root_out)
        if mine is None or theirs is None or mine[0].shape != theirs[0].shape:
            continue
        pairs[mid], what = (theirs[0], mine[0]), mine[1:]
        found.roots[mid] = root
    if pairs:
        found.models, found.tests = list(pairs), model_tests(pairs, *what)
    return found
