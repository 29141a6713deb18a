"""Paired statistics against independent values (scipy's binomial test, bootstrap and paired t
interval) and hand-computed cases: ties, zero discordant pairs, n = 1, all NaN, vectorised = per row."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cnc.analysis.paired_stats import (
    EXACT_BOOTSTRAP_N,
    detectable_difference,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    significant,
)


def _pairs(worse: int, better: int, same_right: int = 5, same_wrong: int = 3):
    base = [1] * worse + [0] * better + [1] * same_right + [0] * same_wrong
    model = [0] * worse + [1] * better + [1] * same_right + [0] * same_wrong
    return np.array(base, bool), np.array(model, bool)


@pytest.mark.parametrize("worse,better", [(1, 9), (0, 6), (12, 3), (7, 7), (30, 18), (0, 1)])
def test_mcnemar_matches_scipys_exact_binomial_test(worse, better):
    got = mcnemar_exact(*_pairs(worse, better))
    assert (got.worse, got.better) == (worse, better)
    assert got.p_value == pytest.approx(stats.binomtest(worse, worse + better, 0.5).pvalue, rel=1e-12)


def test_mcnemar_hand_cases():
    assert mcnemar_exact(*_pairs(1, 9)).p_value == pytest.approx(2 * 11 / 1024)  # 2 * (C(10,0) + C(10,1)) / 2^10
    assert mcnemar_exact(*_pairs(0, 0)) == (0, 0, 1.0)  # no discordant pair: nothing changed
    assert mcnemar_exact(*_pairs(4, 4)).p_value == 1.0  # a tie between the two directions
    assert mcnemar_exact([True], [False]) == (1, 0, 1.0)  # n = 1: one flip is no evidence
    nan = mcnemar_exact([np.nan, np.nan], [1.0, 0.0])
    assert nan.worse == nan.better == 0 and math.isnan(nan.p_value)  # no valid pair at all
    # a missing value drops its pair only
    assert mcnemar_exact([1, 1, np.nan, 0], [0, 0, 0, 0])[:2] == (2, 0)


def test_mcnemar_is_vectorised_over_models():
    rng = np.random.default_rng(0)
    base = rng.random(500) > 0.4
    models = rng.random((5, 500)) > np.linspace(0.3, 0.6, 5)[:, None]
    got = mcnemar_exact(base, models)
    for k in range(5):
        one = mcnemar_exact(base, models[k])
        assert (got.worse[k], got.better[k]) == (one.worse, one.better) and got.p_value[k] == one.p_value


def test_bootstrap_matches_scipys_percentile_bootstrap():
    rng = np.random.default_rng(1)
    base = rng.random(300)
    model = base + rng.normal(0.05, 0.3, 300)
    got = paired_bootstrap(base, model)
    ref = stats.bootstrap((model - base,), np.mean, method="percentile", n_resamples=20000, random_state=0)
    assert got.diff == pytest.approx((model - base).mean())
    se = (model - base).std() / math.sqrt(300)  # Monte Carlo error of 1000 resamples is a small share of this
    assert abs(got.low - ref.confidence_interval.low) < 0.15 * se
    assert abs(got.high - ref.confidence_interval.high) < 0.15 * se
    assert got.p_value < 0.01 and significant(got.p_value)
    assert paired_bootstrap(base, model) == got  # seeded: the same view shows the same interval
    assert paired_bootstrap(base, model, seed=1) != got


def test_large_samples_use_the_normal_interval_which_matches_the_paired_t_interval():
    rng = np.random.default_rng(2)
    n = EXACT_BOOTSTRAP_N * 3
    base = rng.random(n)
    model = base + rng.normal(-0.01, 0.4, n)
    got = paired_bootstrap(base, model)
    ci = stats.ttest_rel(model, base).confidence_interval(0.95)
    assert got.low == pytest.approx(ci.low, abs=1e-4) and got.high == pytest.approx(ci.high, abs=1e-4)
    assert got.p_value == pytest.approx(stats.ttest_rel(model, base).pvalue, rel=0.01)


def test_bootstrap_hand_cases():
    same = paired_bootstrap(np.ones(20), np.ones(20))  # every difference 0 (all tied)
    assert (same.diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    one = paired_bootstrap([1.0], [3.0])  # n = 1: a difference, but no interval
    assert one.diff == 2.0 and math.isnan(one.low) and math.isnan(one.high) and not significant(one.p_value)
    empty = paired_bootstrap([np.nan] * 3, [1.0, 2.0, 3.0])
    assert all(math.isnan(x) for x in empty)
    shifted = paired_bootstrap(np.zeros(50), np.full(50, 0.5))
    assert shifted.low == shifted.high == 0.5 and significant(shifted.p_value)


def test_bootstrap_is_vectorised_with_each_model_on_its_own_valid_pairs():
    rng = np.random.default_rng(3)
    base = rng.random(200)
    models = base + rng.normal(0, 0.2, (3, 200))
    models[1, :50] = np.nan  # model 1 lacks 50 instances
    got = paired_bootstrap(base, models)
    for k in range(3):
        one = paired_bootstrap(base, models[k])
        assert got.diff[k] == pytest.approx(one.diff) and got.low[k] == pytest.approx(one.low)
        assert got.high[k] == pytest.approx(one.high)
    assert got.diff[1] == pytest.approx(np.nanmean(models[1] - base))


def test_holm_hand_computed_and_nan_kept():
    got = holm([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    got = holm(np.array([[0.5, np.nan], [0.01, 0.9]]))
    assert got.shape == (2, 2) and math.isnan(got[0, 1])
    np.testing.assert_allclose(got[[0, 1, 1], [0, 0, 1]], [1.0, 0.03, 1.0])
    assert holm([]).shape == (0,)


def test_detectable_difference_has_the_asked_power():
    d = detectable_difference(40)  # sd 0.5: a correct/incorrect score with a quarter of pairs discordant
    assert 0.2 < d < 0.25
    z = stats.norm.ppf(0.975)
    shift = d * math.sqrt(40) / 0.5
    assert stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z) == pytest.approx(0.8, abs=1e-3)
    assert detectable_difference(4000) == pytest.approx(d / 10)
    assert math.isnan(detectable_difference(0))
    np.testing.assert_allclose(detectable_difference(np.array([40, 160]), sd=0.3), [d * 0.6, d * 0.3])
