"""Top-k KL approximation and llama.cpp-style statistics against hand-computed and exact values."""
import math

import numpy as np
import pytest

from cnc.analysis.token_divergence import (
    coarse_kl,
    exact_kl,
    kl_statistics,
    log_softmax,
    per_instance_mean,
    perplexity,
    tail_logmass,
    topk_summary,
)


def _coarse(ref_lp, model_lp, k):
    vals, ids, tail = topk_summary(ref_lp, k)
    q = np.take_along_axis(model_lp, ids.astype(np.int64), -1)
    return coarse_kl(vals, tail, q, tail_logmass(model_lp, ids))


def test_hand_computed_three_tokens():
    p, q = np.log([[0.5, 0.3, 0.2]]), np.log([[0.25, 0.25, 0.5]])
    vals, ids, tail = topk_summary(p, 1)
    assert ids.tolist() == [[0]] and tail[0] == pytest.approx(math.log(0.5))
    # bins {token 0}, {tokens 1, 2}: P = (.5, .5), Q = (.25, .75)
    assert _coarse(p, q, 1)[0] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    exact = 0.5 * math.log(2) + 0.3 * math.log(0.3 / 0.25) + 0.2 * math.log(0.2 / 0.5)
    assert exact_kl(p, q)[0] == pytest.approx(exact)
    assert _coarse(p, q, 2)[0] == pytest.approx(exact)  # one token in the tail: nothing pooled
    assert _coarse(p, q, 3)[0] == pytest.approx(exact)  # k >= vocabulary: the tail is empty


def test_lower_bound_and_exact_on_random_distributions():
    rng = np.random.default_rng(0)
    ref = log_softmax(rng.normal(size=(200, 500)) * 3)
    model = log_softmax(np.log(np.exp(ref) + 1e-12) + rng.normal(size=(200, 500)) * 0.5)
    exact = exact_kl(ref, model)
    for k in (1, 8, 32, 128):
        approx = _coarse(ref, model, k)
        assert np.all(approx <= exact + 1e-9)
    assert np.allclose(_coarse(ref, model, 499), exact, atol=1e-6)  # float32 storage
    errors = [np.abs(_coarse(ref, model, k) - exact).mean() for k in (1, 8, 32, 128)]
    assert errors == sorted(errors, reverse=True)  # more bins, closer (refinement never lowers KL)
    assert np.allclose(_coarse(ref, ref, 32), 0, atol=1e-6)


def test_tail_is_accurate_when_topk_hold_nearly_all_mass():
    logits = np.array([[30.0, 0.0, 0.0, 0.0]])  # tail mass ~ 3 * e^-30 ~ 2.8e-13
    _, _, tail = topk_summary(log_softmax(logits), 1)
    assert tail[0] == pytest.approx(math.log(3) - 30, abs=1e-5)  # 1 - sum(top-k) would give log(0)


def test_topk_is_sorted():
    lp = log_softmax(np.array([[0.1, 3.0, -1.0, 2.0, 2.5]]))
    vals, ids, _ = topk_summary(lp, 3)
    assert ids.tolist() == [[1, 4, 3]] and np.all(np.diff(vals) <= 0)


def test_kl_statistics_hand_computed():
    kl = np.arange(11, dtype=float)  # 0..10
    top1 = np.array([True] * 8 + [False] * 3)
    s = kl_statistics(kl, top1)
    assert s["tokens"] == 11 and s["mean"] == 5.0 and s["median"] == 5.0 and s["max"] == 10.0
    assert s["p90"] == pytest.approx(9.0) and s["p99"] == pytest.approx(9.9) and s["p99.9"] == pytest.approx(9.99)
    assert s["same_top_pct"] == pytest.approx(800 / 11)
    assert s["mean_err"] == pytest.approx(np.std(kl, ddof=1) / math.sqrt(11))
    assert kl_statistics(np.array([]), np.array([], bool)) == {"tokens": 0}


def test_per_instance_mean_and_perplexity():
    values, ntokens = np.array([1.0, 3.0, 5.0, 7.0]), np.array([2, 0, 1, 1])
    out = per_instance_mean(values, ntokens)
    assert out[0] == 2.0 and math.isnan(out[1]) and out[2] == 5.0 and out[3] == 7.0
    with pytest.raises(ValueError):
        per_instance_mean(values, np.array([1, 1]))
    assert perplexity(np.array([2.0, 4.0]), np.array([3, 3])) == pytest.approx(math.exp(1.0))


def test_same_top_token_never_counts_a_tie():
    from cnc.analysis.token_divergence import same_top, strict_argmax, unique_top
    ref = log_softmax(np.array([[3.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 5.0, 1.0], [1.0, 1.0, 1.0]]))
    model = log_softmax(np.array([[3.0, 3.0, 0.0], [2.0, 1.0, 0.0], [0.0, 4.0, 1.0], [1.0, 1.0, 1.0]]))
    assert strict_argmax(ref).tolist() == [0, -1, 1, -1]
    # a tie in the model, a tie in the reference, a real agreement, all logits equal in both
    assert same_top(ref, model).tolist() == [False, False, True, False]
    assert same_top(ref, ref).tolist() == [True, False, True, False]  # a reference agrees with itself where its top is unique
    assert unique_top(topk_summary(ref, 2)[0]).tolist() == [True, False, True, False]
    assert unique_top(np.zeros((3, 1))).tolist() == [True] * 3
    flat = np.zeros((50, 7))  # a model whose logits are all equal: 0%, never 100%
    assert same_top(log_softmax(np.random.default_rng(0).normal(size=(50, 7))), flat).mean() == 0.0
