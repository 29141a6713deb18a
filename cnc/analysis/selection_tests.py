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
    its root, one column (all instances); Holm over the models. None without a model to test.
    Model by model: stacking hundreds of models' values would cost far more memory than time."""
    if not pairs:
        return None
    items = [(np.asarray(b, np.float64), np.asarray(v, np.float64)) for b, v in pairs.values()]
    ok = np.array([int((np.isfinite(b) & np.isfinite(v)).sum()) for b, v in items])
    if all(is_binary(b) and is_binary(v) for b, v in items):
        tests = [ps.mcnemar_exact(b, v) for b, v in items]
        worse, better = np.array([t.worse for t in tests]), np.array([t.better for t in tests])
        p = np.array([t.p_value for t in tests], np.float64)
        diff, low, high = ps.paired_interval(worse, better, ok)
        sd = np.sqrt(np.where(ok > 0, (worse + better) / np.maximum(ok, 1), np.nan))
        detectable = ps.detectable_difference(ok, np.where(sd > 0, sd, 0.5))
        counts = [np.concatenate([[0], x])[:, None] for x in (worse, better)]
        test = "mcnemar"
    else:
        found = [ps.paired_bootstrap(b, v) for b, v in items]
        diff, low, high, p = (np.array([r[i] for r in found], np.float64) for i in range(4))
        with np.errstate(invalid="ignore"):
            sd = np.array([np.nanstd(v - b) if n else np.nan for (b, v), n in zip(items, ok)])
        detectable = ps.detectable_difference(ok, np.where(sd > 0, sd, np.nan))
        counts, test, quantity = [None, None], "bootstrap", f"mean {quantity}"
    column = (lambda x: np.concatenate([[np.nan], np.asarray(x, np.float64)])[:, None])  # noqa: E731
    return RowTests(test, quantity, rate, column(diff), column(low), column(high), column(p), column(ps.holm(p)),
                    np.array([int(ok.max())]), column(detectable), *counts)


def csv_cells(t: RowTests | None, k: int, root: str | None) -> list:
    """The CSV cells (CSV_COLUMNS) of the k-th tested model (k >= 1), or blanks (no test)."""
    if t is None or root is None:
        return [root] + [None] * (len(CSV_COLUMNS) - 1)
    counts = [None, None] if t.worse is None else [int(t.worse[k, 0]), int(t.better[k, 0])]
    return [root, *(plain(a[k, 0]) for a in (t.diff, t.low, t.high, t.p_holm)), bool(t.significant[k, 0]),
            *counts, "exact McNemar" if t.test == "mcnemar" else "paired bootstrap"]
