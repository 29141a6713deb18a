"""Is a change against the base real? Paired tests on per-instance scores of two models.

Both models answered the same instances, so every test here is paired (instance i of the base
against instance i of the model); a pair where either value is NaN is left out.

- correct / incorrect per instance: the exact McNemar test, a two-sided binomial test of the
  discordant pairs (right -> wrong against wrong -> right) at p = 1/2;
- continuous scores: a percentile bootstrap interval of the mean difference (model - base), seeded,
  so the same view always shows the same interval. It is the Poisson bootstrap (each pair drawn
  Poisson(1) times, the mean weighted by the draws): its weights for n pairs are the first n rows
  of one seeded [EXACT_BOOTSTRAP_N, n_boot] matrix (drawn block by block as needed), so every group
  size shares it and the resampled means of all models are one matrix product. Above `EXACT_BOOTSTRAP_N`
  pairs the normal interval with the bootstrap's variance (exactly s^2 / n) is used instead: the
  bootstrap distribution of a mean approaches it (its skewness shrinks as 1 / sqrt(n)), and
  resampling costs models x pairs x n_boot operations (8 x 100,000 x 1,000 would take seconds);
  small samples, where skewed scores make the two differ, are the ones resampled;
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
EXACT_BOOTSTRAP_N = 200


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
    r = mcnemar_from_counts(worse, better, ok.sum(-1))
    return McNemarResult(_scalar(worse, scalar), _scalar(better, scalar), _scalar(r.p_value, scalar))


BLOCK = 200  # rows of the weight matrix drawn together: a group of n pairs draws only what it needs


@lru_cache(maxsize=64)
def _weight_block(block: int, n_boot: int, seed: int) -> np.ndarray:
    """float32 [BLOCK, n_boot]: Poisson(1) draws of pairs block*BLOCK ... (seeded per block)."""
    weights = np.random.default_rng((seed, block)).poisson(1.0, size=(BLOCK, n_boot)).astype(np.float32)
    weights.setflags(write=False)
    return weights


def _poisson_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """float32 [n, n_boot]: how often each of n pairs is drawn in each resample (the same first
    rows whatever n, so groups of any size share them)."""
    blocks = [_weight_block(b, n_boot, seed) for b in range(-(-n // BLOCK))]
    return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks))[:n]


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
            w = _poisson_weights(int(k), n_boot, seed)
            total = w.sum(0)
            # einsum, not BLAS: a threaded BLAS stalls on a busy 2-core server (80 ms against 0.5 ms)
            sums = np.einsum("rk,kb->rb", values.astype(np.float32), w)
            means = sums[:, total > 0] / total[total > 0]  # [R, resamples that drew a pair]
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


def _flat_codes(codes: np.ndarray, rows: int, n_groups: int) -> np.ndarray:
    """Group index of every cell of an [rows, N] array, for one bincount over all rows."""
    return (np.asarray(codes, dtype=np.int64)[None, :] + n_groups * np.arange(rows)[:, None]).ravel()


def _count(flat: np.ndarray | None, weights: np.ndarray, rows: int, n_groups: int) -> np.ndarray:
    """[rows, N] weights summed per group -> [rows, G] (`flat` None: a single group, a plain sum)."""
    if flat is None:
        return weights.sum(-1, dtype=np.float64)[:, None]
    return np.bincount(flat, weights=weights.ravel(), minlength=rows * n_groups).reshape(rows, n_groups)


def group_totals(values: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """[M, N] (NaN = missing) -> ([M, G] sums of the finite values per group, [M, G] their counts)."""
    rows = values.shape[0]
    finite = np.isfinite(values)
    flat = None if n_groups == 1 else _flat_codes(codes, rows, n_groups)
    return _count(flat, np.where(finite, values, 0.0), rows, n_groups), _count(flat, finite, rows, n_groups)


def mcnemar_counts(base_correct, model_correct, codes: np.ndarray, n_groups: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(worse, better, valid pairs), int64 [M, G]: McNemar's counts of every model in every group
    (bool input is taken as is: no missing values)."""
    b, m = np.asarray(base_correct), np.asarray(model_correct)
    if b.dtype == bool and m.dtype == bool:
        b, m = np.broadcast_arrays(np.atleast_2d(b), np.atleast_2d(m))
        ok, b_right, m_right = None, b, m
    else:
        b, m, ok, _ = _pairs(b, m)
        b_right, m_right = b > 0.5, m > 0.5
    rows = b.shape[0]
    flat = None if n_groups == 1 else _flat_codes(codes, rows, n_groups)
    worse, better = b_right & ~m_right, ~b_right & m_right
    if ok is not None:
        worse, better = worse & ok, better & ok
    pairs = np.full((rows, n_groups), 0.0) + np.bincount(np.asarray(codes, np.int64), minlength=n_groups) \
        if ok is None else _count(flat, ok, rows, n_groups)
    return (_count(flat, worse, rows, n_groups).astype(np.int64), _count(flat, better, rows, n_groups).astype(np.int64),
            pairs.astype(np.int64))


def mcnemar_by_group(base_correct, model_correct, codes: np.ndarray, n_groups: int) -> McNemarResult:
    """`mcnemar_exact` of every model [M, N] in every group (instance i is in group codes[i]):
    arrays [M, G], in a few bincounts."""
    return mcnemar_from_counts(*mcnemar_counts(base_correct, model_correct, codes, n_groups))


def mcnemar_from_counts(worse, better, pairs) -> McNemarResult:
    """The exact two-sided p-value from the discordant counts (NaN without a valid pair)."""
    worse, better = np.asarray(worse), np.asarray(better)
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(worse, better), worse + better, 0.5))
    return McNemarResult(worse, better, np.where(np.asarray(pairs) > 0, p, np.nan))


def paired_interval(worse, better, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(difference, low, high) of the share correct (model - base) from McNemar's counts: the Wald
    interval of a paired difference of proportions (McNemar gives the p-value; this the size)."""
    worse, better, n = (np.asarray(x, dtype=np.float64) for x in (worse, better, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (better - worse) / n
        se = np.sqrt(np.maximum((better + worse) / n - diff ** 2, 0.0) / n)
    z = stats.norm.ppf(0.5 + level / 2.0)
    return diff, diff - z * se, diff + z * se


def bootstrap_by_group(base, model, codes: np.ndarray, n_groups: int, n_boot: int = N_BOOT, seed: int = 0,
                       level: float = 0.95) -> Interval:
    """`paired_bootstrap` of every model [M, N] in every group: arrays [M, G]. Groups above
    `EXACT_BOOTSTRAP_N` pairs take the normal interval all at once; smaller ones are resampled."""
    b, m, ok, _ = _pairs(base, model)
    d = np.where(ok, m - b, 0.0)
    codes = np.asarray(codes, dtype=np.int64)
    rows = d.shape[0]
    flat = None if n_groups == 1 else _flat_codes(codes, rows, n_groups)
    sums, squares, n = _count(flat, d, rows, n_groups), _count(flat, d * d, rows, n_groups), _count(flat, ok, rows, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = sums / n
        se = np.sqrt(np.maximum(squares / n - diff ** 2, 0.0) / n)
        z = stats.norm.ppf(0.5 + level / 2.0)
        low, high = diff - z * se, diff + z * se
        p = np.where(se > 0, 2.0 * stats.norm.sf(np.abs(diff) / se), (diff == 0) * 1.0)
    low, high, p = (np.where(n >= 2, x, np.nan) for x in (low, high, p))
    small = np.flatnonzero(((n >= 2) & (n <= EXACT_BOOTSTRAP_N)).any(0))
    if small.size:
        d = np.where(ok, d, np.nan)
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
        for g in small:
            idx = order[starts[g]:starts[g + 1]]
            got = paired_bootstrap(np.zeros(idx.size), d[:, idx], n_boot, seed, level)
            low[:, g], high[:, g], p[:, g] = got.low, got.high, got.p_value
    return Interval(diff, low, high, p)
