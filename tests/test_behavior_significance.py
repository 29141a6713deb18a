"""Behaviors' paired tests per (model, row) against direct computations: McNemar counts and
p-values per class, the bootstrap for continuous scores, Holm over the rows shown, muted cells,
hover texts, the CSV's test columns, and generative metrics (exact match, F1, token-weighted NLL)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cnc.analysis import behavior_cells, behavior_metrics, behavior_significance, behavior_table, behavior_view
from cnc.analysis import generative_behaviors as G
from cnc.analysis.paired_stats import holm, paired_bootstrap

CLASSES = ["broken", "noisy", "same"]
N = 600  # 200 per class


def _outputs(preds: np.ndarray, conf: np.ndarray) -> dict:
    probs = np.zeros((N, 3), np.float32)
    probs[np.arange(N), preds] = 1.0
    return {"probs": probs, "preds": preds, "p_true": conf.astype(np.float32)}


def classifier_table() -> behavior_table.InstanceTable:
    """Class "broken": the model loses 40 of the base's 200 right answers (significant); "noisy": 6
    right→wrong and 4 wrong→right (not significant); "same": identical predictions."""
    labels = np.repeat([0, 1, 2], 200)
    base = labels.copy()
    model = labels.copy()
    model[:40] = 1                      # broken: 40 right -> wrong
    model[200:206] = 0                  # noisy: 6 right -> wrong
    base[206:210] = 0                   # noisy: the base is wrong on 4 the model gets right
    rng = np.random.default_rng(0)
    conf = rng.random(N)
    outputs = {"base": _outputs(base, conf), "m": _outputs(model, conf - 0.2 * (labels == 0))}
    return behavior_table.build_table(labels, ["base", "m"], outputs.get)


def _view(t, metric="error", rel=True, mode="classes", **kw):
    specs = behavior_metrics.metric_specs(t.scalars)
    state = behavior_view.ViewState(mode=mode, metric=metric, rel=rel, **kw)
    return behavior_view.build_view(t, state, specs, CLASSES, {"half": ["a"] * 300 + ["b"] * 300})


def test_mcnemar_per_class_against_scipy_and_holm_over_the_rows_shown():
    view = _view(classifier_table())
    t = view.tests
    assert t.test == "mcnemar" and t.quantity == "error rate"
    assert t.worse[1].tolist() == [40, 6, 0] and t.better[1].tolist() == [0, 4, 0]
    raw = [stats.binomtest(40, 40, 0.5).pvalue, stats.binomtest(4, 10, 0.5).pvalue, 1.0]
    np.testing.assert_allclose(t.p[1], raw)
    np.testing.assert_allclose(t.p_holm[1], holm(raw))
    assert t.diff[1, 0] == pytest.approx(0.2) and t.low[1, 0] > 0  # +20 pt error rate, interval above 0
    assert t.significant[1].tolist() == [True, False, False] and np.isnan(t.p[0]).all()
    # the overall line: 46 right -> wrong, 4 wrong -> right over 600
    assert view.overall.worse[1, 0] == 46 and view.overall.better[1, 0] == 4
    assert view.overall.p_holm[1, 0] == pytest.approx(stats.binomtest(4, 50, 0.5).pvalue)


def test_a_threshold_that_hides_rows_shrinks_the_holm_family():
    t = classifier_table()
    every = _view(t).tests
    only = _view(t, threshold=0.005).tests  # keeps the classes where the error rate rose
    assert np.isnan(only.p_holm[1, 2]) and only.p_holm[1, 1] < every.p_holm[1, 1]


def test_cells_are_muted_when_not_significant_and_keep_their_mark_when_significant():
    t = classifier_table()
    view = _view(t)
    rows = {r["row"]: r for r in behavior_cells.page_rows(view, t, 0, 10, CLASSES)}
    assert rows["broken"]["c1_h"] == 1 and "c1_ns" not in rows["broken"]
    assert rows["broken"]["c1_s"].startswith("Significant change: Δ error rate +20.0 pt [")
    assert "40 right → wrong, 0 wrong → right (exact McNemar test)" in rows["broken"]["c1_s"]
    assert rows["noisy"]["c1_ns"] == 1 and rows["noisy"]["c1_h"] == 0
    assert rows["noisy"]["c1_s"].startswith("No significant change") and "n = 200: differences under ~" in rows["noisy"]["c1_s"]
    absolute = {r["row"]: r for r in behavior_cells.page_rows(_view(t, rel=False), t, 0, 10, CLASSES)}
    assert "c1_ns" not in absolute["noisy"] and absolute["noisy"]["c1_s"].startswith("No significant")
    text = behavior_significance.method_text(view.tests, 3)
    assert "exact McNemar test" in text and "Holm-adjusted over the 3 comparisons" in text
    assert behavior_significance.overall_text(view.overall, view.models).startswith(
        "Δ error rate against the base over all 600 instances: m +7.0 pt [")


def test_continuous_scores_use_the_paired_bootstrap():
    t = classifier_table()
    view = _view(t, metric="conf")
    tests = view.tests
    assert tests.test == "bootstrap"
    broken = paired_bootstrap(t.conf[0, :200], t.conf[1, :200])
    assert tests.diff[1, 0] == pytest.approx(-0.2, abs=1e-6)
    assert tests.low[1, 0] == pytest.approx(broken.low, abs=1e-6) and tests.significant[1, 0]
    assert tests.diff[1, 1] == pytest.approx(0.0, abs=1e-6) and not tests.significant[1, 1]
    assert _view(t, metric="flip").tests is None and _view(t, metric="kl").tests is None  # distances: no test
    assert _view(t, mode="instances").tests is None  # one instance: no test


def test_csv_has_the_tests_columns():
    t = classifier_table()
    header, rows = behavior_cells.view_records(_view(t), t, CLASSES)
    assert header[-7:] == ["m · Δ error rate", "m · 95% low", "m · 95% high", "m · p (Holm)", "m · significant",
                           "m · right → wrong", "m · wrong → right"]
    assert rows[0][-3:-2] == [True] and rows[0][-2:] == [40, 0] and rows[1][-3] is False


def test_generative_exact_match_f1_and_token_weighted_nll():
    rng = np.random.default_rng(1)
    n = 300
    ntok = rng.integers(1, 6, n)
    em_base = (rng.random(n) < 0.7).astype(np.float32)
    em_model = em_base.copy()
    em_model[:30] = 0  # 30 right -> wrong among the first 30 (where the base was right)
    em_base[:30] = 1
    task = {"kind": "generative", "prompts": ["p"] * n, "references": [["r"]] * n,
            "attributes": {"task": ["t"] * n}, "score_names": ["exact_match", "f1"]}
    nll_base = rng.random(n) * ntok

    def out(em, nll):
        return {"kind": "generative", "texts": [str(x) for x in em], "scores": {"exact_match": em, "f1": em * 0.9},
                "nll": nll.astype(np.float32), "ntokens": ntok.astype(np.int32), "repetition": np.zeros(n, np.float32),
                "kl": None, "top1": None, "kl_reference": None}
    outputs = {"base": out(em_base, nll_base), "m": out(em_model, nll_base + 0.5 * ntok)}
    t = G.build_generative_table(task, ["base", "m"], outputs.get)
    em = behavior_view.build_view(t, behavior_view.ViewState(mode="tasks", metric="sc:exact_match", rel=True),
                                  t.specs(), [], task["attributes"]).tests
    assert em.test == "mcnemar" and em.worse[1, 0] == 30 and em.better[1, 0] == 0 and em.significant[1, 0]
    f1 = behavior_view.build_view(t, behavior_view.ViewState(mode="tasks", metric="sc:f1", rel=True),
                                  t.specs(), [], task["attributes"]).tests
    assert f1.test == "bootstrap" and f1.diff[1, 0] == pytest.approx(-0.09, abs=1e-6)
    nll = behavior_view.build_view(t, behavior_view.ViewState(mode="tasks", metric="nll", rel=True),
                                   t.specs(), [], task["attributes"]).tests
    assert nll.diff[1, 0] == pytest.approx(0.5, abs=1e-5)  # +0.5 nats on every token
    assert nll.low[1, 0] == pytest.approx(0.5, abs=1e-4) and nll.significant[1, 0]
