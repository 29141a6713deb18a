"""Is a change against the base real? Paired tests on per-instance scores of two models.

Both models answered the same instances, so every test here is paired (instance i of the base
against instance i of the model); a pair where either value is NaN is left out.

- correct / incorrect per instance: the exact McNemar test, a two-sided binomial test of the
  discordant pairs (right -> wrong against wrong -> right) at p = 1/2;
- continuous scores: a percentile bootstrap interval of the mean difference (model - base), seeded,
  so the same view always shows the same interval. It is the Poisson bootstrap (each pair drawn
  Poisson(1) times, the mean weighted by the draws): its weights for n pairs are the first n rows
  of one seeded [EXACT_BOOTSTRAP_N, n_boot] matrix, so every group size shares it and the resampled
  means of all models are one matrix product. Above `EXACT_BOOTSTRAP_N`
  pairs the bootstrap distribution of a mean is normal to within its own Monte Carlo error (its
  variance is exactly s^2 / n, its skewness shrinks as 1 / sqrt(n)), and the normal interval with
  that variance is used instead: the same answer without an n_boot x n matrix;
- many comparisons at once: Holm's step-down adjustment of the p-values;
- too small to tell: the smallest true difference a test of n pairs detects with the given power.

scipy provides the distributions; everything is vectorised over models (a leading axis).
docs/statistics.md says which test applies to which score.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import stats

ALPHA = 0.05
N_BOOT = 1000
EXACT_BOOTSTRAP_N = 5000


class McNemarResult(NamedTuple):
    """Discordant pairs (base right -> model wrong, base wrong -> model right) and the exact p-value
    (NaN without a single valid pair; 1 when no pair is discordant)."""
    worse: np.ndarray | int
    better: np.ndarray | int
    p_value: np.ndarray | float


class Interval(NamedTuple):
    """Mean difference (model - base) with its bootstrap interval, and the bootstrap's two-sided
    p-value for "no difference" (NaN everywhere without valid pairs; bounds NaN below 2 pairs)."""
    diff: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    p_value: np.ndarray | float = float("nan")


def _scalar(x: np.ndarray, scalar: bool):
    return x.item() if scalar else x


def _pairs(base, model) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """float64 base / model broadcast to [M, N], the valid-pair mask, and whether the input was 1-D."""
    b, m = np.asarray(base, dtype=np.float64), np.asarray(model, dtype=np.float64)
    scalar = b.ndim <= 1 and m.ndim <= 1
    b, m = np.broadcast_arrays(np.atleast_2d(b), np.atleast_2d(m))
    return b, m, np.isfinite(b) & np.isfinite(m), scalar


def mcnemar_exact(base_correct, model_correct) -> McNemarResult:
    """Exact McNemar test of `model_correct` against `base_correct` (bool or 0/1, NaN = missing),
    [N] or [M, N] against [N]; results are scalars for 1-D input, else arrays [M]."""
    b, m, ok, scalar = _pairs(base_correct, model_correct)
    worse = ((b > 0.5) & (m <= 0.5) & ok).sum(-1)
    better = ((b <= 0.5) & (m > 0.5) & ok).sum(-1)
    n = worse + better
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(worse, better), n, 0.5))
    p = np.where(ok.any(-1), p, np.nan)
    return McNemarResult(_scalar(worse, scalar), _scalar(better, scalar), _scalar(p, scalar))


@lru_cache(maxsize=4)
def _poisson_weights(n_boot: int, seed: int) -> np.ndarray:
    """float32 [EXACT_BOOTSTRAP_N, n_boot]: how often each pair is drawn in each resample."""
    weights = np.random.default_rng(seed).poisson(1.0, size=(EXACT_BOOTSTRAP_N, n_boot)).astype(np.float32)
    weights.setflags(write=False)
    return weights


def paired_bootstrap(base, model, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> Interval:
    """Mean of model - base over valid pairs with its `level` percentile bootstrap interval;
    `model` [N] or [M, N] against `base` [N] (each model uses its own valid pairs)."""
    b, m, ok, scalar = _pairs(base, model)
    d = np.where(ok, m - b, 0.0)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = d.sum(-1) / n
    low, high, p = (np.full(diff.shape, np.nan) for _ in range(3))
    tail = (1.0 - level) / 2.0
    for k in np.unique(n[n >= 2]):
        rows = np.flatnonzero(n == k)
        values = np.stack([d[r][ok[r]] for r in rows])  # [R, k]
        if k <= EXACT_BOOTSTRAP_N:
            w = _poisson_weights(n_boot, seed)[:k]
            total = w.sum(0)
            means = (values @ w)[:, total > 0] / total[total > 0]  # [R, resamples that drew a pair]
            low[rows], high[rows] = np.quantile(means, [tail, 1.0 - tail], axis=-1)
            hits = np.minimum((means <= 0).sum(-1), (means >= 0).sum(-1))
            p[rows] = np.minimum(1.0, 2.0 * (hits + 1) / (means.shape[-1] + 1))  # never 0 from finite draws
        else:
            se = values.std(-1) / np.sqrt(k)
            z = stats.norm.ppf(1.0 - tail)
            low[rows], high[rows] = diff[rows] - z * se, diff[rows] + z * se
            with np.errstate(invalid="ignore", divide="ignore"):
                p[rows] = np.where(se > 0, 2.0 * stats.norm.sf(np.abs(diff[rows]) / se), (diff[rows] == 0) * 1.0)
    return Interval(*(_scalar(x, scalar) for x in (diff, low, high, p)))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (any shape; NaN entries stay NaN and are not counted)."""
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(flat))
    order = valid[np.argsort(flat[valid], kind="stable")]
    m = order.size
    if m:
        scaled = (m - np.arange(m)) * flat[order]
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out.reshape(p.shape)


def detectable_difference(n, sd=0.5, alpha: float = ALPHA, power: float = 0.8):
    """The smallest true mean difference a two-sided test of `n` pairs detects with `power` at
    `alpha`, for per-instance differences of standard deviation `sd` (for correct/incorrect scores
    sd = sqrt(share of discordant pairs); 0.5 when unknown). NaN for n < 1."""
    n = np.asarray(n, dtype=np.float64)
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= 1, z * np.asarray(sd, dtype=np.float64) / np.sqrt(np.maximum(n, 1)), np.nan)
    return out.item() if out.ndim == 0 else out


def significant(p_value, alpha: float = ALPHA):
    """p_value <= alpha (False for NaN): the change is told apart from noise."""
    with np.errstate(invalid="ignore"):
        return np.asarray(p_value, dtype=np.float64) <= alpha
