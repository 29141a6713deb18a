"""Metric budgets ("latency <= 5 ms", "accuracy >= 0.95"): which models pass, histograms, URL form.

Filters combine with AND. A model whose value is missing for a filtered metric does not pass: a
budget cannot be confirmed for an unknown value. URL form: one key per filter, `f.<metric>=lo:hi`
with either bound empty (so metric names may hold any character), in the metric's stored unit.
Users see and type bounds in the metric's displayed unit: a percentage metric (format ending in
`%`) stores 0.9 but shows and accepts 90.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnc.analysis.parsing import parse_float
from cnc.experiment.forest import Experiment, Metric, is_missing
from cnc.experiment.formatting import format_metric

PREFIX = "f."
MAX_FILTERS = 20


@dataclass(frozen=True)
class Filter:
    metric: str
    lo: float | None = None
    hi: float | None = None

    def passes(self, value: float | None) -> bool:
        if is_missing(value):
            return False
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    @property
    def active(self) -> bool:
        return self.lo is not None or self.hi is not None


def enabled_models(exp: Experiment, filters: list[Filter]) -> list[str]:
    """Ids (experiment order) passing every active filter."""
    active = [f for f in filters if f.active and f.metric in exp.metrics]
    if not active:
        return list(exp.models)
    return [mid for mid, m in exp.models.items() if all(f.passes(m.metrics.get(f.metric)) for f in active)]


def histogram(values: list[float | None], bins: int = 24) -> tuple[list[int], list[float]]:
    """Counts and edges over the present values (one bin when all values are equal)."""
    vals = np.array([v for v in values if not is_missing(v)], dtype=float)
    if vals.size == 0:
        return [], []
    lo, hi = float(vals.min()), float(vals.max())
    if lo == hi:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi, bins = lo - pad, hi + pad, 1
    counts, edges = np.histogram(vals, bins=bins, range=(lo, hi))
    return counts.tolist(), edges.tolist()


def parse_filters(query: dict[str, str], exp: Experiment, notices: list[str]) -> list[Filter]:
    """Filters from `f.<metric>=lo:hi` keys; unknown metrics and malformed ranges get a notice."""
    out: list[Filter] = []
    for key, raw in query.items():
        if not key.startswith(PREFIX):
            continue
        metric = key[len(PREFIX):]
        if metric not in exp.metrics:
            notices.append(f"Ignored a filter on {metric[:60]!r} from the link: not a metric of this experiment.")
            continue
        parts = raw.split(":")
        lo = parse_float(parts[0]) if parts[0] else None
        hi = parse_float(parts[1]) if len(parts) == 2 and parts[1] else None
        if len(parts) != 2 or (parts[0] and lo is None) or (parts[1] and hi is None):
            notices.append(f"Ignored the filter {metric[:60]!r}={raw[:40]!r} from the link: "
                           f"expected min:max (either may be empty).")
            continue
        if len(out) >= MAX_FILTERS:
            notices.append(f"Ignored filters beyond the first {MAX_FILTERS} from the link.")
            break
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo  # as when typed reversed in the card
        out.append(Filter(metric, lo, hi))
    return out


def display_factor(metric: Metric) -> float:
    """Displayed value = stored value * factor: 100 for percentage formats, else 1."""
    return 100.0 if (metric.format or "").endswith("%") else 1.0


def to_display(metric: Metric, value: float | None) -> float | None:
    """A stored bound as the user reads it (rounded so 0.9512 shows as 95.12, not 95.12000000000001)."""
    factor = display_factor(metric)
    if value is None or factor == 1:
        return value
    return float(f"{value * factor:.10g}")


def from_display(metric: Metric, value: float | None) -> float | None:
    """A typed bound (display unit) in the stored unit."""
    factor = display_factor(metric)
    if value is None or factor == 1:
        return value
    return float(f"{value / factor:.10g}")


def range_warning(exp: Experiment, f: Filter) -> str | None:
    """A sentence when a bound lies outside the data (a likely unit slip: "0.9" meant as 90%),
    so "0 of N pass" is never silent."""
    vals = [v for v in exp.metric_values(f.metric) if not is_missing(v)]
    if not vals or f.metric not in exp.metrics:
        return None
    metric, lo, hi = exp.metrics[f.metric], min(vals), max(vals)
    if f.lo is not None and f.lo > hi:
        return f"Min is above every model (highest {format_metric(metric, hi)})."
    if f.hi is not None and f.hi < lo:
        return f"Max is below every model (lowest {format_metric(metric, lo)})."
    return None


def filter_params(filters: list[Filter]) -> dict[str, str]:
    """URL params for the filters; a filter without bounds is kept (the card stays open)."""
    return {PREFIX + f.metric: f"{_num(f.lo)}:{_num(f.hi)}" for f in filters}


def _num(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return ""
    return f"{v:.6g}"


def to_data(filters: list[Filter]) -> list[list]:
    """JSON form for a dcc.Store: [[metric, lo, hi], ...]."""
    return [[f.metric, f.lo, f.hi] for f in filters]


def from_data(data: list | None, exp: Experiment) -> list[Filter]:
    """Inverse of `to_data`, dropping anything malformed, unknown or repeated (the data comes
    back from the browser: any JSON)."""
    out: list[Filter] = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, (list, tuple)) and len(item) == 3 and isinstance(item[0], str) \
                and item[0] in exp.metrics and all(f.metric != item[0] for f in out):
            lo, hi = (parse_float(v) if isinstance(v, (int, float, str)) else None for v in item[1:])
            out.append(Filter(item[0], lo, hi))
    return out[:MAX_FILTERS]
