"""`cnc check`'s gates as pure functions: recovery and drop in each metric's direction, the
significance rule that keeps small samples from flaking, Holm over every test, and policy errors."""
from __future__ import annotations

import numpy as np
import pytest

from cnc.analysis.ci_gates import MetricInput, PolicyError, drop, evaluate, parse_policy, recovery


def test_recovery_and_drop_follow_the_metric_direction():
    assert recovery(0.9, 0.855, True) == pytest.approx(0.95)
    assert recovery(10.0, 20.0, False) == pytest.approx(0.5)  # latency doubled: half recovered
    assert drop(0.9, 0.85, True) == pytest.approx(0.05)
    assert drop(10.0, 12.0, False) == pytest.approx(2.0)
    assert drop(10.0, 8.0, False) == pytest.approx(-2.0)  # faster: a negative drop


def correct(n: int, wrong: list[int]) -> np.ndarray:
    out = np.ones(n)
    out[wrong] = 0
    return out


def test_a_small_drop_on_few_instances_is_noise_and_passes_unless_the_policy_says_so():
    base = correct(50, [])
    small = correct(50, [3])  # 2 points lower on 50 questions: McNemar p = 1
    data = MetricInput(True, 1.0, {"m": 0.98}, base, {"m": small})
    [r] = evaluate(parse_policy({"metrics": {"Accuracy": {"max_drop": 0.01}}}, "p"), ["m"],
                   {("Accuracy", None, None): data}, {}, {})
    assert r.breached and not r.failed and r.test == "mcnemar" and r.n == 50 and r.p_value == pytest.approx(1.0)
    assert "not significant" in r.reason
    [strict] = evaluate(parse_policy({"significance": False, "metrics": {"Accuracy": {"max_drop": 0.01}}}, "p"),
                        ["m"], {("Accuracy", None, None): data}, {}, {})
    assert strict.failed and "significance not required" in strict.reason


def test_a_large_drop_is_significant_and_fails():
    base = correct(400, [])
    worse = correct(400, list(range(0, 400, 10)))  # 40 right -> wrong, 10 points lower
    data = MetricInput(True, 1.0, {"m": 0.9}, base, {"m": worse})
    [r] = evaluate(parse_policy({"metrics": {"Accuracy": {"min_recovery": 0.95}}}, "p"), ["m"],
                   {("Accuracy", None, None): data}, {}, {})
    assert r.observed == pytest.approx(0.9) and r.failed and r.p_adjusted < 1e-6


def test_continuous_scores_use_the_bootstrap_and_holm_adjusts_over_all_tests():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.0, 300)
    models = {"a": base - 0.2, "b": base - rng.normal(0, 0.01, 300)}
    data = MetricInput(True, float(base.mean()), {k: float(v.mean()) for k, v in models.items()}, base, models)
    results = evaluate(parse_policy({"metrics": {"F1": {"max_drop": 0.0}}}, "p"), ["a", "b"],
                       {("F1", None, None): data}, {}, {})
    by = {r.candidate: r for r in results}
    assert by["a"].test == "bootstrap" and by["a"].failed
    assert all(r.p_adjusted >= r.p_value for r in results)


def test_metrics_without_instances_fail_on_the_threshold_and_missing_values_fail():
    data = MetricInput(False, 10.0, {"fast": 8.0, "slow": 13.0, "unmeasured": None})
    results = evaluate(parse_policy({"metrics": {"Latency": {"min_recovery": 0.8}}}, "p"),
                       ["fast", "slow", "unmeasured"], {("Latency", None, None): data}, {}, {})
    by = {r.candidate: r for r in results}
    assert not by["fast"].failed and by["fast"].observed == pytest.approx(1.25)
    assert by["slow"].failed and "no per-instance scores" in by["slow"].reason
    assert by["unmeasured"].failed and by["unmeasured"].reason == "no value"


def test_flip_rate_and_kl_limits():
    policy = parse_policy({"max_flip_rate": 0.1, "max_mean_kl": 0.05}, "p")
    results = evaluate(policy, ["a", "b"], {}, {"a": 0.05, "b": 0.2}, {"a": 0.01})
    verdict = {(r.candidate, r.gate.kind): r.failed for r in results}
    assert verdict == {("a", "max_flip_rate"): False, ("b", "max_flip_rate"): True,
                       ("a", "max_mean_kl"): False, ("b", "max_mean_kl"): True}  # b has no KL: not available


def test_non_finite_values_never_pass_a_gate():
    """NaN compares false with every limit: a model whose outputs hold NaN must fail, not slip through."""
    nan = float("nan")
    policy = parse_policy({"metrics": {"Acc": {"max_drop": 0.5}}, "max_flip_rate": 0.5, "max_mean_kl": 1.0}, "p")
    data = MetricInput(True, 0.9, {"a": nan, "b": 0.9})
    results = evaluate(policy, ["a", "b"], {("Acc", None, None): data}, {"a": 0.1, "b": nan}, {"a": nan, "b": 0.1},
                       {"max_mean_kl": "why not"})
    failed = {(r.candidate, r.gate.kind): r.reason for r in results if r.failed}
    assert set(failed) == {("a", "max_drop"), ("b", "max_flip_rate"), ("a", "max_mean_kl")}
    assert all("not a finite number" in why for why in failed.values())
    [missing] = evaluate(policy, ["c"], {("Acc", None, None): MetricInput(True, nan, {"c": 0.9})}, {}, {},
                         {"max_mean_kl": "measured against the root"})[:1]
    assert missing.failed and missing.reason.startswith("the base: not a finite number")
    kl = [r for r in evaluate(policy, ["c"], {("Acc", None, None): data}, {}, {}, {"max_mean_kl": "stored vs root"})
          if r.gate.kind == "max_mean_kl"][0]
    assert kl.failed and kl.reason == "not available: stored vs root"


@pytest.mark.parametrize("data, message", [
    ([1], "a policy is a mapping"),
    ({"metric": {}}, "unknown key"),
    ({"metrics": {"Accuracy": {"min_recovery": "high"}}}, "metrics.Accuracy.min_recovery is 'high'"),
    ({"metrics": {"Accuracy": {"significant": True}}}, "give min_recovery"),
    ({"metrics": {"Accuracy": 0.95}}, "metrics.Accuracy is 0.95"),
    ({"max_flip_rate": 2}, "between 0 and 1"),
    ({"alpha": 0.9, "max_flip_rate": 0.1}, "`alpha`"),
    ({}, "no gate"),
    ({"max_flip_rate": 0.1, "candidates": "m1"}, "`candidates`"),
])
def test_bad_policies_name_the_key_and_the_fix(data, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(data, "policy.yaml")
