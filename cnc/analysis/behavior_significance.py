"""Is a Behaviors row's change against the base real? Paired tests per (compared model, row).

Which test follows from the metric (docs/statistics.md):
- correct / incorrect per instance (error rate, % more errors, right → wrong, wrong → right, exact
  match, and any score whose values are all 0 or 1, such as lm-eval's `acc`): the exact McNemar
  test on the discordant pairs, with both counts; the interval is the Wald interval of the
  paired difference in the share correct;
- continuous per-instance scores (confidence, F1, ROUGE, user scalars, repetition): the seeded
  paired bootstrap interval of the mean difference; a ratio metric is tested on the difference
  of its means (the ratio is 1 exactly when the difference is 0);
- token-weighted metrics (NLL, KL, top-1 agreement: sums over the reference tokens / tokens): the
  same bootstrap on the linearized ratio (`_linearized`), whose mean is the token-weighted change;
- metrics that are themselves a distance from the base (flip rate, |Δ|, MSE, KL of a classifier,
  output changed) and perplexity have no test.
The p-values of every compared model and row shown are adjusted together (Holm), so "significant"
holds for the table as a whole at `ALPHA`, not cell by cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnc.analysis import paired_stats as ps
from cnc.analysis.behavior_metrics import Grouping, group_sums
from cnc.analysis.generative_behaviors import EXACT, GenerativeTable
from cnc.analysis.metric_change import MINUS

BINARY_CHANGE = ("error", "moreerr", "r2w", "w2r")
NO_TEST = ("flip", "confabs", "mse", "kl", "ppl")


@dataclass
class RowTests:
    """Tests of the compared models (rows 1.. of every array; row 0, the base, is NaN) per group."""

    test: str  # "mcnemar" or "bootstrap"
    quantity: str  # what the interval is of: "error rate", "exact match", "mean confidence", ...
    rate: bool  # the quantity is a share: the interval reads in points
    diff: np.ndarray  # float64[M, G] model − base
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray  # raw p-values
    p_holm: np.ndarray  # Holm-adjusted over the cells `adjust` was given
    n: np.ndarray  # int64[G] instances per group
    detectable: np.ndarray  # float64[M, G] smallest difference the group's size can tell from noise
    worse: np.ndarray | None = None  # McNemar: base right -> model wrong, per cell
    better: np.ndarray | None = None

    def adjust(self, rows: np.ndarray) -> None:
        """Holm over the compared models' cells of `rows` (the rows a view shows)."""
        self.p_holm = np.full(self.p.shape, np.nan)
        if self.p.shape[0] > 1 and rows.size:
            self.p_holm[1:, rows] = ps.holm(self.p[1:, rows])

    @property
    def significant(self) -> np.ndarray:
        return ps.significant(self.p_holm)


def is_binary(values: np.ndarray) -> bool:
    """Every known value is 0 or 1 (and one is known): a correct / incorrect score."""
    with np.errstate(invalid="ignore"):
        return bool(((values == 0) | (values == 1) | np.isnan(values)).all()) and bool(np.isfinite(values).any())


def _inputs(table, metric: str) -> tuple[str, str, bool, np.ndarray, np.ndarray | None] | None:
    """(test, quantity, rate, values [M, N] (row 0 the base), token counts [N] or None), or None."""
    if metric in NO_TEST or metric.startswith("scabs:"):
        return None
    generative = isinstance(table, GenerativeTable)
    if metric in BINARY_CHANGE:
        if generative:
            em = table.scores.get(EXACT)
            return None if em is None else ("mcnemar", "exact match", True, em, None)
        return "mcnemar", "accuracy", True, table.correct, None
    if metric in ("conf", "confratio"):
        return "bootstrap", "mean confidence", False, table.conf.astype(np.float64), None
    if generative and metric in ("nll", "kl", "top1"):
        sums = {"nll": table.nll, "kl": table.klsum, "top1": table.top1sum}[metric]
        quantity = {"nll": "NLL per token", "kl": "KL per token", "top1": "top-1 agreement"}[metric]
        return "bootstrap", quantity, metric == "top1", sums, table.ntokens[0]
    if generative and metric == "rep":
        return "bootstrap", "repetition", True, table.repetition, None
    kind, _, name = metric.partition(":")
    values = (table.scores if generative else table.scalars).get(name) if kind in ("sc", "scratio") else None
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    rate = generative and name in ("exact_match", "f1", "rouge_l", "chrf")
    if is_binary(values):
        return "mcnemar", name, True, values, None
    return "bootstrap", f"mean {name}", rate, values, None


def row_tests(table, metric: str, g: Grouping) -> RowTests | None:
    """Tests of every compared model in every group of `g` (None: instance rows, one model, or a
    metric without a test). Call `adjust` with the rows shown before reading `significant`."""
    if g.codes is None or len(table.models) < 2:
        return None
    got = _inputs(table, metric)
    if got is None:
        return None
    test, quantity, rate, values, tokens = got
    n_groups = len(g.names)
    n = np.asarray(g.counts, dtype=np.int64)
    if test == "mcnemar":
        worse, better, pairs = ps.mcnemar_counts(values[0], values, g.codes, n_groups)
        r = ps.mcnemar_from_counts(worse, better, pairs)
        diff, low, high = ps.paired_interval(r.worse, r.better, pairs)
        if quantity == "accuracy":  # classifier error metrics: the change in the error rate
            quantity, diff, low, high = "error rate", -diff, -high, -low
        sd = np.sqrt(np.where(pairs > 0, (r.worse + r.better) / np.maximum(pairs, 1), np.nan))
        out = RowTests(test, quantity, rate, diff, low, high, r.p_value, r.p_value.copy(), n,
                       ps.detectable_difference(pairs, np.where(sd > 0, sd, 0.5)), r.worse, r.better)
    else:
        base, values = values[0], (values if tokens is None else _linearized(values, tokens, g))
        r = ps.bootstrap_by_group(base if tokens is None else np.zeros_like(base), values, g.codes, n_groups)
        # the spread of the differences, read back from the interval's width (no second pass)
        sd = (r.high - r.low) / (2 * ps.stats.norm.ppf(0.975)) * np.sqrt(n)
        out = RowTests(test, quantity, rate, r.diff, r.low, r.high, r.p_value, r.p_value.copy(), n,
                       ps.detectable_difference(n, np.where(sd > 0, sd, np.nan)))
    for a in (out.diff, out.low, out.high, out.p, out.p_holm, out.detectable):
        a[0] = np.nan
    return out


def _linearized(sums: np.ndarray, tokens: np.ndarray, g: Grouping) -> np.ndarray:
    """[M, N] per-instance values whose group means are the token-weighted changes
    R = sum(d) / sum(tokens) (d = model − base sums over an instance's tokens) and whose spread is
    the ratio's (the linearized ratio estimator: z = R + (d − R·tokens) / mean tokens)."""
    d = sums - sums[0]
    t = np.where(np.isfinite(d), np.asarray(tokens, np.float64), np.nan)
    dsum, tsum = group_sums(d, g)[0], group_sums(t, g)[0]
    tcount = group_sums(t, g)[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(tsum > 0, dsum / tsum, np.nan)
        mean_tokens = np.where(tcount > 0, tsum / tcount, np.nan)
    return ratio[:, g.codes] + (d - ratio[:, g.codes] * t) / mean_tokens[:, g.codes]


def overall_tests(table, metric: str) -> RowTests | None:
    """The tests over all instances, one per compared model, Holm-adjusted across the models."""
    n = table.n
    tests = row_tests(table, metric, Grouping(["all instances"], np.zeros(n, np.int64), np.array([n])))
    if tests is not None:
        tests.adjust(np.array([0]))
    return tests


def number_text(t: RowTests, value: float, signed: bool = True) -> str:
    """A change in the test's units: points for shares, else three significant digits."""
    if not np.isfinite(value):
        return "—"
    if t.rate:
        text = f"{value * 100:+.1f} pt" if signed else f"{abs(value) * 100:.2g} pt"
    else:
        text = f"{value:+.3g}" if signed else f"{abs(value):.2g}"
    return text.replace("-", MINUS)


def cell_text(t: RowTests, k: int, r: int, holm_over: str = "the table") -> str:
    """The hover text of model k's cell in row r: the verdict, the interval, the test (`holm_over`:
    what the p-values were adjusted over, as the reader sees it)."""
    p = t.p_holm[k, r]
    if not np.isfinite(p):
        if not np.isfinite(t.diff[k, r]):
            return "No test: no valid pairs with the base"
        return f"Δ {t.quantity} {number_text(t, t.diff[k, r])}: too few instances for a test"
    verdict = "Significant change" if p <= ps.ALPHA else "No significant change"
    text = (f"{verdict}: Δ {t.quantity} {number_text(t, t.diff[k, r])} [{number_text(t, t.low[k, r])}, "
            f"{number_text(t, t.high[k, r])}] (95% interval), p = {p:.2g} (Holm over {holm_over})")
    if t.worse is not None:
        text += f"; {int(t.worse[k, r])} right → wrong, {int(t.better[k, r])} wrong → right (exact McNemar test)"
    else:
        text += "; paired bootstrap"
    if p > ps.ALPHA and np.isfinite(t.detectable[k, r]):
        text += (f". n = {int(t.n[r]):,}: differences under ~{number_text(t, t.detectable[k, r], False)} "
                 "cannot be told from noise")
    return text


def test_columns(t: RowTests, models: list[str], rows: np.ndarray) -> tuple[list[str], list[list]]:
    """CSV columns of the tests: per compared model the change, its interval, the Holm p-value,
    whether it is significant and (McNemar) the discordant counts; one list of cells per row."""
    header, columns = [], []
    for k, mid in enumerate(models[1:], start=1):
        named = {f"{mid} · Δ {t.quantity}": t.diff[k], f"{mid} · 95% low": t.low[k], f"{mid} · 95% high": t.high[k],
                 f"{mid} · p (Holm)": t.p_holm[k], f"{mid} · significant": t.significant[k]}
        if t.worse is not None:
            named.update({f"{mid} · right → wrong": t.worse[k], f"{mid} · wrong → right": t.better[k]})
        header += list(named)
        columns += list(named.values())
    cells = [[plain(c[r]) for c in columns] for r in rows.tolist()]
    return header, cells


def plain(value) -> float | int | bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value) if np.isfinite(value) else None


def overall_text(t: RowTests, models: list[str]) -> str:
    """One line: each compared model's change over all instances, significant or not."""
    parts = []
    for k, mid in enumerate(models[1:], start=1):
        diff, p = t.diff[k, 0], t.p_holm[k, 0]
        if not np.isfinite(p):
            parts.append(f"{mid} {number_text(t, diff)} (no test)")
            continue
        span = f"{number_text(t, diff)} [{number_text(t, t.low[k, 0])}, {number_text(t, t.high[k, 0])}]"
        parts.append(f"{mid} {span}, p = {p:.2g}" if p <= ps.ALPHA else f"{mid} no significant change ({span})")
    return f"Δ {t.quantity} against the base over all {int(t.n[0]):,} instances: " + " · ".join(parts)


def method_text(t: RowTests, cells: int) -> str:
    """What "n.s." means in the table."""
    test = "exact McNemar test" if t.test == "mcnemar" else "paired bootstrap"
    return (f"“n.s.”: no significant change at {ps.ALPHA:.0%} ({test} per row and model, Holm-adjusted over the "
            f"{cells:,} comparisons shown); hover a value for its 95% interval.")
