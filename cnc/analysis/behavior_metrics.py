"""Behaviour comparison metrics: their specs (format, harm direction) and values per row group.

Every metric has an absolute value per model and row; the value *relative to the base* is the
model's value minus the base's. Metrics that already compare with the base (flip rate, |Δ|, MSE,
KL, % more errors) are 0 for the base, so their relative value equals the absolute one; ratios are
1 for the base and their relative value is ratio − 1. Group values are means over the group's
instances; ratios are ratios of group means (mean(model) / mean(base)). "% more errors than base"
is +∞ where the base makes no errors in a row and a model does (shown as "new errors").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from cnc.analysis.divergence import EPS
from cnc.analysis.paired_stats import group_totals

if TYPE_CHECKING:  # type hints only: cnc.analysis.behaviors re-exports this module
    from cnc.analysis.behavior_table import InstanceTable

TASK_ATTRIBUTE = "task"  # an instance attribute naming the benchmark task (lm-eval): its values are "tasks" rows


@dataclass(frozen=True)
class MetricSpec:
    """A comparison metric: how to format it and which direction means harm."""

    id: str
    label: str
    abs_fmt: str
    rel_fmt: str
    higher_is_worse: bool | None  # None: no harm direction (user scalars)
    base_value: float | None  # the base's own value when it is a constant (0 or 1), else None
    help: str = ""
    step: float | None = None  # threshold stepper increment; None: adapt to the data's magnitude
    inf_text: str | None = None  # how +inf reads (only metrics that define it)


_BUILTIN = (
    MetricSpec("error", "Error rate", ".1%", "pp", True, None,
               "Share of wrong predictions; relative: change in percentage points.", step=0.01),
    MetricSpec("moreerr", "% more errors than base", "+.0%", "+.0%", True, 0.0,
               "(model errors − base errors) / base errors; \"new errors\" where the base made none.",
               inf_text="new errors"),
    MetricSpec("flip", "Prediction flip rate", ".1%", ".1%", True, 0.0,
               "Share of instances whose top-1 prediction differs from the base's.", step=0.01),
    MetricSpec("conf", "Confidence on true label", ".3f", "+.3f", False, None,
               "Mean probability of the true class; relative: difference to the base.", step=0.01),
    MetricSpec("confabs", "|Δ confidence on true label|", ".3f", ".3f", True, 0.0,
               "Mean absolute difference of the true-class probability.", step=0.01),
    MetricSpec("confratio", "Confidence ratio (model / base)", ".3f", "+.1%", False, 1.0,
               "Mean true-class probability of the model over the base's.", step=0.01),
    MetricSpec("mse", "MSE of probabilities", ".2e", ".2e", True, 0.0,
               "Mean squared difference of the probability vectors."),
    MetricSpec("kl", "KL divergence (base ‖ model)", ".3g", ".3g", True, 0.0,
               "KL of the base's output distribution to the model's (clipped at 1e-7)."),
)


def metric_specs(scalar_names: Iterable[str] = ()) -> dict[str, MetricSpec]:
    """All metrics, including value / |Δ| / ratio for each declared per-instance scalar."""
    specs = {m.id: m for m in _BUILTIN}
    for name in scalar_names:
        specs[f"sc:{name}"] = MetricSpec(f"sc:{name}", name, ".3g", "+.3g", None, None,
                                         f"Mean {name}; relative: difference to the base.")
        specs[f"scabs:{name}"] = MetricSpec(f"scabs:{name}", f"|Δ {name}|", ".3g", ".3g", None, 0.0,
                                            f"Mean absolute difference of {name}.")
        specs[f"scratio:{name}"] = MetricSpec(f"scratio:{name}", f"{name} ratio (model / base)", ".3f",
                                              "+.1%", None, 1.0, f"Mean {name} of the model over the base's.")
    return specs


@dataclass(frozen=True)
class Grouping:
    """Row groups over instances: `codes[i]` is instance i's row; None for instance rows."""

    names: list[str]
    codes: np.ndarray | None
    counts: np.ndarray


def grouping(table: InstanceTable, mode: str, class_names: list[str],
             attributes: dict[str, list[str]], attribute: str | None) -> Grouping:
    if mode == "classes":
        c = max(len(class_names), int(table.labels.max(initial=-1)) + 1)
        names = [class_names[i] if i < len(class_names) else str(i) for i in range(c)]
        return Grouping(names, table.labels, np.bincount(table.labels, minlength=c))
    if mode == "tasks":
        return grouping(table, "subgroups", class_names, attributes, TASK_ATTRIBUTE)
    if mode == "subgroups":
        if attribute not in table.subgroup_cache:  # string codes are the slow part: once per attribute
            names, codes = np.unique(np.asarray(attributes[attribute], dtype=str), return_inverse=True)
            table.subgroup_cache[attribute] = Grouping([str(x) for x in names], codes.astype(np.int64),
                                                       np.bincount(codes, minlength=len(names)))
        return table.subgroup_cache[attribute]
    return Grouping([], None, np.ones(table.n, dtype=np.int64))


def group_sums(values: np.ndarray, g: Grouping) -> tuple[np.ndarray, np.ndarray]:
    """[M, N] -> ([M, G] sums of the finite values per group, [M, G] how many were finite)."""
    return group_totals(values, g.codes, len(g.names))


def group_means(values: np.ndarray, g: Grouping) -> np.ndarray:
    """[M, N] -> [M, G] means per group (NaN-aware; empty groups are NaN)."""
    if g.codes is None:
        return values.astype(np.float64)
    sums, counts = group_sums(values, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def metric_values(table: InstanceTable, metric: str, g: Grouping) -> np.ndarray:
    """Absolute values [M, rows] of a metric per model (row 0 the base)."""
    if metric == "error":
        return group_means(~table.correct, g)
    if metric == "moreerr":
        return more_errors(group_means(~table.correct, g))
    if metric == "flip":
        return group_means(table.preds != table.preds[0], g)
    if metric == "conf":
        return group_means(table.conf, g)
    if metric == "confabs":
        return group_means(np.abs(table.conf - table.conf[0]), g)
    if metric == "confratio":
        means = group_means(table.conf, g)
        return _ratio(means, means[0])
    if metric == "mse":
        return group_means(table.mse, g)
    if metric == "kl":
        return group_means(table.kl, g)
    kind, _, name = metric.partition(":")
    values = table.scalars.get(name)
    if values is None:
        raise KeyError(metric)
    if kind == "sc":
        return group_means(values, g)
    if kind == "scabs":
        return group_means(np.abs(values - values[0]), g)
    if kind == "scratio":
        means = group_means(values, g)
        return _ratio(means, means[0])
    raise KeyError(metric)


def more_errors(err: np.ndarray) -> np.ndarray:
    """[M, rows] error rates -> (err − err_base) / err_base; base without errors: 0 or +inf.

    +inf marks rows where compression introduced errors the base never made, so they sort and
    filter as the worst rows instead of disappearing as undefined.
    """
    base = np.broadcast_to(err[0], err.shape)
    zero = base < EPS
    out = np.zeros(err.shape)
    np.divide(err - base, np.where(zero, 1.0, base), out=out, where=~zero)
    out[zero & (err >= EPS)] = np.inf
    return np.where(np.isnan(err) | np.isnan(base), np.nan, out)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0/0 = 1 and x/0 = NaN (undefined), clipping tiny denominators at EPS."""
    den = np.broadcast_to(den, num.shape)
    out = np.full(num.shape, np.nan)
    zero = np.abs(den) < EPS
    np.divide(num, np.where(zero, 1.0, den), out=out, where=~zero)
    out[zero & (np.abs(num) < EPS)] = 1.0
    return out


def relative(values: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """Values relative to the base: model − base (so the base row is exactly 0)."""
    base = values[0] if spec.base_value is None else spec.base_value
    return values - base
