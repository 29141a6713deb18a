"""Paired tests at scale: 8 models x 100,000 instances of synthetic classifier outputs.

The functions alone (`cnc.analysis.paired_stats`: McNemar, the bootstrap, both per group), then
the tests Behaviors adds to a view (`behavior_significance.row_tests` and `overall_tests`), then
whole cold views with their tests, as `behaviors.rows_*` measures them: the issue's budget is
200 ms of server time for such a view, bootstrap included. Then what the token panel, "Worst samples
of" and Selection Details compute when they are drawn: llama.cpp's Δp statistics of 8 models x
1,000,000 reference tokens, one model's worst samples among 100,000 instances, and the paired
tests of 200 selected models against their roots.
"""
from __future__ import annotations

import numpy as np

from cnc.analysis import (
    behavior_metrics,
    behavior_significance,
    behavior_table,
    behavior_view,
    selection_tests,
    token_probability,
    worst_samples,
)
from cnc.analysis import paired_stats as ps
from cnc.bench import median_ms
from cnc.bench.behaviors import SyntheticOutputs, _BenchContext, bench_models, open_view
from cnc.ui import behaviors_data


def scenarios(quick: bool) -> list[dict]:
    n, classes, n_models = (2_000, 10, 4) if quick else (100_000, 100, 8)
    models = bench_models(n_models)
    data = SyntheticOutputs(models, n, classes)
    task = data.task_data()
    table = behavior_table.build_table(task["labels"], models, data.outputs, data.status)
    base, correct, conf = table.correct[0], table.correct, table.conf.astype(np.float64)
    codes = table.labels
    size = {"models": n_models, "instances": n}
    records = [
        {"scenario": "paired_stats.mcnemar", **size, "ms": median_ms(lambda: ps.mcnemar_exact(base, correct))},
        {"scenario": "paired_stats.bootstrap_normal", **size, "ms": median_ms(lambda: ps.paired_bootstrap(conf[0], conf))},
        {"scenario": "paired_stats.bootstrap_resampled", "models": n_models, "instances": ps.EXACT_BOOTSTRAP_N,
         "ms": median_ms(lambda: ps.paired_bootstrap(conf[0, :ps.EXACT_BOOTSTRAP_N], conf[:, :ps.EXACT_BOOTSTRAP_N]))},
        {"scenario": "paired_stats.mcnemar_by_class", **size, "groups": classes,
         "ms": median_ms(lambda: ps.mcnemar_by_group(base, correct, codes, classes))},
        {"scenario": "paired_stats.bootstrap_by_class", **size, "groups": classes,
         "ms": median_ms(lambda: ps.bootstrap_by_group(conf[0], conf, codes, classes))},
    ]
    cases = {
        "paired_stats.view_tests_error": behavior_view.ViewState(mode="classes", metric="error", rel=True),
        "paired_stats.view_tests_conf": behavior_view.ViewState(mode="classes", metric="conf", rel=True),
        "paired_stats.view_tests_subgroups": behavior_view.ViewState(mode="subgroups", attribute="ink density",
                                                              metric="sc:loss", rel=True),
    }
    for name, state in cases.items():
        g = behavior_metrics.grouping(table, state.mode, task["class_names"], task["attributes"], state.attribute)

        def tests(s=state, g=g):
            behavior_significance.row_tests(table, s.metric, g).adjust(np.arange(len(g.names)))
            behavior_significance.overall_tests(table, s.metric)
        records.append({"scenario": name, **size, "groups": len(g.names), "ms": median_ms(tests)})
    ctx = _BenchContext(data, models)
    behaviors_data.TABLES.get_or((id(ctx), None, tuple(models), tuple("ready" for _ in models)), lambda: table)
    for name, state in cases.items():  # the whole cold view (grid, first rows, JSON) with its tests
        records.append({"scenario": name.replace("view_tests", "view_cold"), **size,
                        "ms": median_ms(lambda s=state: open_view(ctx, models, s))})
    return records + drawn_scenarios(quick, table)


def drawn_scenarios(quick: bool, table: behavior_table.InstanceTable) -> list[dict]:
    """Δp, worst samples and Selection Details' tests, from arrays as the stores hold them."""
    rng = np.random.default_rng(0)
    tokens, n_models = (20_000, 4) if quick else (1_000_000, 8)
    root = np.log(rng.uniform(0.01, 1.0, tokens)).astype(np.float32)
    lps = [np.minimum(root + rng.normal(0, 0.3, tokens).astype(np.float32), 0) for _ in range(n_models)]
    damage = worst_samples.Damage(worst_samples.right_to_wrong(table.correct[0], table.correct[1]),
                                  table.conf[0].astype(np.float64) - table.conf[1], rng.exponential(0.1, table.n))
    selected = 20 if quick else 200
    pairs = {f"m{k}": (table.correct[0].astype(np.float64), table.correct[1 + k % (len(table.models) - 1)].astype(np.float64))
             for k in range(selected)}
    return [
        {"scenario": "paired_stats.delta_p_panel", "models": n_models, "tokens": tokens,
         "ms": median_ms(lambda: [token_probability.delta_p_statistics(lp, root) for lp in lps])},
        {"scenario": "paired_stats.worst_samples_r2w", "instances": table.n,
         "ms": median_ms(lambda: worst_samples.worst_order(np.arange(table.n), damage, "r2w"))},
        {"scenario": "paired_stats.selection_tests", "models": selected, "instances": table.n,
         "ms": median_ms(lambda: selection_tests.model_tests(pairs, "accuracy", True))},
    ]
