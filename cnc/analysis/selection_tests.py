"""Is a selected model's change against its root real? Paired tests for Selection Details.

Selection Details charts one metric for the selected models. When that metric is one the app
evaluated per instance itself (the derived "(computed)" accuracy or score means, and their change
vs root), every selected model that is not a root gets the same paired test Behaviors uses
(cnc.analysis.behavior_significance): the exact McNemar test when the per-instance values are all
0 or 1 (correct / incorrect, exact match, lm-eval acc), else the seeded paired bootstrap of the
mean difference, each model against the root of its own tree. The p-values of the selected
models are Holm-adjusted together. Logged metrics have no per-instance values, so no test.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from cnc.analysis import derived_metrics as D
from cnc.analysis import paired_stats as ps
from cnc.analysis.behavior_significance import RowTests, is_binary, plain

CSV_COLUMNS = ("vs root", "Δ", "95% low", "95% high", "p (Holm)", "significant", "right → wrong", "wrong → right",
               "test")


def instance_values(metric: str, out: Mapping | None, labels: np.ndarray | None,
                    root_out: Mapping | None = None) -> tuple[np.ndarray, str, bool] | None:
    """(per-instance values float64 [N], what they are, whether a share) behind a derived metric of
    one model's stored outputs, or None (a logged metric, or outputs without it). A "change vs
    root" metric reads the score it is the change of (the root's primary score, as derived_metrics)."""
    if not out:
        return None
    if out.get("kind") == "generative":
        scores = out.get("scores") or {}
        name = next((s for s in scores if D.score_metric(s).name == metric), None)
        if name is None and root_out is not None:
            primary = D.primary_score(root_out.get("scores") or scores)
            name = primary if primary is not None and D.change_metric(primary).name == metric else None
        if name is None or name not in scores:
            return None
        return (np.asarray(scores[name], np.float64), D.SCORE_NAMES.get(name, name),
                name in D.UNIT_SCORES)
    if metric not in (D.ACCURACY.name, D.change_metric("accuracy").name) or labels is None:
        return None
    preds = out.get("preds")
    if preds is None or np.shape(preds) != np.shape(labels):
        return None
    return (np.asarray(preds) == np.asarray(labels)).astype(np.float64), "accuracy", True


def model_tests(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], quantity: str, rate: bool) -> RowTests | None:
    """The tests of models (`pairs`: model id -> (its root's values, its values), [N] each, in
    order) as one RowTests: row 0 a placeholder (no base of its own), row k the k-th model against
    its root, one column (all instances); Holm over the models. None without a model to test."""
    if not pairs:
        return None
    base = np.stack([b for b, _ in pairs.values()])
    values = np.stack([v for _, v in pairs.values()])
    m = len(pairs)
    nan_row = np.full((1, 1), np.nan)
    n = np.array([int((np.isfinite(base) & np.isfinite(values)).sum(-1).max())])
    if is_binary(np.concatenate([base, values])):
        r = ps.mcnemar_exact(base, values)
        ok = (np.isfinite(base) & np.isfinite(values)).sum(-1)
        diff, low, high = ps.paired_interval(r.worse, r.better, ok)
        sd = np.sqrt(np.where(ok > 0, (r.worse + r.better) / np.maximum(ok, 1), np.nan))
        detectable = ps.detectable_difference(ok, np.where(sd > 0, sd, 0.5))
        worse, better = (np.concatenate([[0], x]).reshape(m + 1, 1) for x in (r.worse, r.better))
        test, p = "mcnemar", r.p_value
    else:
        r = ps.paired_bootstrap(base, values)
        diff, low, high, p = r.diff, r.low, r.high, r.p_value
        ok = (np.isfinite(base) & np.isfinite(values)).sum(-1)
        sd = np.nanstd(values - base, axis=-1)
        detectable = ps.detectable_difference(ok, np.where(sd > 0, sd, np.nan))
        worse = better = None
        test, quantity = "bootstrap", f"mean {quantity}"
    column = (lambda x: np.concatenate([nan_row, np.asarray(x, np.float64).reshape(m, 1)]))  # noqa: E731
    p_holm = column(ps.holm(p))
    return RowTests(test, quantity, rate, column(diff), column(low), column(high), column(p), p_holm, n,
                    column(detectable), worse, better)


def csv_cells(t: RowTests | None, k: int, root: str | None) -> list:
    """The CSV cells (CSV_COLUMNS) of the k-th tested model (k >= 1), or blanks (no test)."""
    if t is None or root is None:
        return [root] + [None] * (len(CSV_COLUMNS) - 1)
    counts = [None, None] if t.worse is None else [int(t.worse[k, 0]), int(t.better[k, 0])]
    return [root, *(plain(a[k, 0]) for a in (t.diff, t.low, t.high, t.p_holm)), bool(t.significant[k, 0]),
            *counts, "exact McNemar" if t.test == "mcnemar" else "paired bootstrap"]
