"""A Behaviors view: the rows one view state shows (filter, sort) and their distributions.

Row thresholds ("any model ≥ t" or "any model ≤ t") compare each compared (non-base) model's shown
value; undefined values (NaN) never pass. +∞ ("new errors") sorts above every finite value, passes
any "≥" threshold and fails any "≤" one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cnc.analysis.behavior_groups import Group, group_mask, parse_group
from cnc.analysis.behavior_metrics import Grouping, MetricSpec, grouping, metric_values, relative
from cnc.analysis.behavior_significance import RowTests, overall_tests, row_tests
from cnc.analysis.generative_behaviors import GenerativeTable
from cnc.analysis.worst_samples import worst_order

if TYPE_CHECKING:  # type hints only: cnc.analysis.behaviors re-exports this module
    from cnc.analysis.behavior_table import InstanceTable

HIST_BINS = 16
ROW_MODES = ("classes", "subgroups", "tasks", "instances", "exemplars")  # tasks: subgroups of the "task" attribute
INSTANCE_MODES = ("instances", "exemplars")
FILTERS = ("all", "newerr", "fixed", "flipped")
THRESHOLD_DIRECTIONS = ("ge", "le")  # keep rows where any model's value is >= / <= the threshold
RANKS = ("broke", "fixed")  # top changes in outputs: what compression broke first (default), or fixed
FILTER_LABELS = {
    "all": "All instances",
    "newerr": "Base right, a model wrong",
    "fixed": "Base wrong, a model right",
    "flipped": "Prediction changed in a model",
}


@dataclass
class ViewState:
    """Everything that decides which rows are shown and in which order (the URL state)."""

    mode: str = "classes"
    attribute: str | None = None
    metric: str = "error"
    rel: bool = False
    filt: str = "all"
    threshold: float | None = None  # keep rows where any non-base model's shown value is >= (or <=) this
    direction: str = "ge"  # "ge" or "le": which side of the threshold is kept
    min_flips: int = 1  # exemplars: prediction changed in at least this many models
    sort: str | None = None  # a model id, "flips", "n" or "row"; None = natural order
    desc: bool = True
    group: str | None = None  # instance modes: only instances of this `Group` (its key)
    rank: str = "broke"  # generative exemplars: one of RANKS
    worst: str | None = None  # instance rows: a compared model whose worst samples come first (no column sort)
    worst_by: str = "r2w"  # ...ranked by one of worst_samples.WORST_BY

    def key(self) -> tuple:
        return (self.mode, self.attribute, self.metric, self.rel, self.filt, self.threshold, self.direction,
                self.min_flips, self.sort, self.desc, self.group, self.rank, self.worst, self.worst_by)


@dataclass
class View:
    """A filtered, sorted table ready for paging (arrays; nothing formatted yet)."""

    state: ViewState
    spec: MetricSpec
    models: list[str]
    names: list[str]  # row labels for group modes
    counts: np.ndarray  # instances per row (all rows)
    shown: np.ndarray  # float64[M, rows] the displayed values (abs or relative)
    order: np.ndarray  # row indices after filter and sort
    scale: float  # max |value| over shown cells, for the inline bars
    signed: bool  # some shown value is negative: bars grow from the middle
    edges: np.ndarray  # shared histogram bin edges
    hists: np.ndarray  # int[M, bins] distribution of each model's shown values over filtered rows
    group: Group | None = None  # the class or subgroup instance rows are restricted to
    group_size: int = 0  # instances in that group (before the other filters)
    instance_columns: tuple = ()  # instance rows: (field, header, tooltip, CSV header) of the columns before the models'
    tests: RowTests | None = None  # group rows: paired tests per (model, row), Holm over the rows shown
    overall: RowTests | None = None  # the same tests over all instances, one per model

    @property
    def instance_rows(self) -> bool:
        return self.state.mode in INSTANCE_MODES

    @property
    def row_count(self) -> int:
        return int(self.order.shape[0])


def build_view(table: InstanceTable | GenerativeTable, state: ViewState, specs: dict[str, MetricSpec], class_names: list[str],
               attributes: dict[str, list[str]]) -> View:
    """Filter and sort one table for a view state (a few vector operations, no Python loops)."""
    spec = specs[state.metric]
    mode = "instances" if state.mode == "exemplars" else state.mode
    g = grouping(table, mode, class_names, attributes, state.attribute)
    values = table.values(state.metric, g) if isinstance(table, GenerativeTable) else \
        metric_values(table, state.metric, g)
    shown = relative(values, spec) if state.rel else values
    group = parse_group(state.group, class_names, attributes, table) if state.mode in INSTANCE_MODES else None
    within = group_mask(table, group, attributes) if group else None
    keep = _row_mask(table, state, shown, g, within)
    order = np.flatnonzero(keep)
    order = _sort(table, state, shown, g, order)
    sub = shown if order.size == shown.shape[1] else shown[:, order]  # rows kept, in any order
    others = sub[1:] if sub.shape[0] > 1 and state.rel else sub  # the base is all zeros when relative
    finite = others[np.isfinite(others)]  # +inf ("new errors") draws a full bar, not the scale
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    signed = bool(np.nanmin(others, initial=0.0) < 0)
    edges, hists = _histograms(sub)
    tests = row_tests(table, state.metric, g)
    if tests is not None:
        tests.adjust(order)
    return View(state, spec, table.models, g.names, g.counts, shown, order, scale, signed, edges, hists,
                group, int(within.sum()) if within is not None else 0, table.INSTANCE_COLUMNS, tests,
                overall_tests(table, state.metric))


def _row_mask(table: InstanceTable, state: ViewState, shown: np.ndarray, g: Grouping,
              within: np.ndarray | None = None) -> np.ndarray:
    n_rows = shown.shape[1]
    keep = g.counts > 0  # empty groups (e.g. a class absent from the evaluation set) are hidden
    if within is not None:
        keep &= within
    if state.mode in INSTANCE_MODES:
        wrong_any = ~table.correct[1:].all(axis=0) if len(table.models) > 1 else np.zeros(n_rows, bool)
        right_any = table.correct[1:].any(axis=0) if len(table.models) > 1 else np.zeros(n_rows, bool)
        base_ok = table.correct[0]
        if state.filt == "newerr":
            keep &= base_ok & wrong_any
        elif state.filt == "fixed":
            keep &= ~base_ok & right_any
        elif state.filt == "flipped":
            keep &= table.flips > 0
        if state.mode == "exemplars":
            keep &= table.flips >= max(1, state.min_flips)
    if state.threshold is not None and shown.shape[0] > 1:
        with np.errstate(invalid="ignore"):
            passes = shown[1:] <= state.threshold if state.direction == "le" else shown[1:] >= state.threshold
            keep &= passes.any(axis=0)
    return keep


def _sort(table: InstanceTable, state: ViewState, shown: np.ndarray, g: Grouping,
          order: np.ndarray) -> np.ndarray:
    sort = state.sort
    if sort is None and state.mode in INSTANCE_MODES and state.worst in table.models[1:]:
        return worst_order(order, table.damage(table.models.index(state.worst)), state.worst_by)
    if sort is None and state.mode == "exemplars":
        return table.exemplar_order(order, state.rank)
    if sort is None or sort == "row":
        return order[::-1] if (sort == "row" and state.desc) else order
    if sort == "flips" and g.codes is None:  # flips exist per instance only
        key = table.flips[order].astype(np.float64)
    elif sort == "n":
        key = g.counts[order].astype(np.float64)
    elif sort in table.models:
        key = shown[table.models.index(sort), order]
    else:
        return order
    # undefined values last in either direction; +inf ("new errors") is the largest value
    idx = np.lexsort((-key if state.desc else key, np.isnan(key)))
    return order[idx]


def _histograms(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-model histograms [M, bins] on shared edges over the finite values (one bincount).

    NaNs are left out; ±inf values are counted in the outermost bins.
    """
    m = values.shape[0]
    finite, counted = np.isfinite(values), ~np.isnan(values)
    if not counted.any():
        return np.linspace(0, 1, HIST_BINS + 1), np.zeros((m, HIST_BINS), dtype=np.int64)
    lo, hi = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    clipped = np.clip(np.where(counted, values, lo), lo, hi)
    bins = np.clip(((clipped - lo) * (HIST_BINS / (hi - lo))).astype(np.int64), 0, HIST_BINS - 1)
    flat = (bins + HIST_BINS * np.arange(m)[:, None])[counted]
    return edges, np.bincount(flat, minlength=m * HIST_BINS).reshape(m, HIST_BINS)


def threshold_step(view: View) -> float:
    """The threshold stepper's increment for a view: the metric's own (0.01 for rates and
    probabilities), else a tenth of the largest shown value's order of magnitude (0.1 for values
    up to ~9, 1e-4 for MSEs around 1e-3), so a few clicks move through the data's range."""
    if view.spec.step is not None:
        return view.spec.step
    if not view.scale > 0:
        return 0.01
    return float(10.0 ** max(-12, min(12, math.floor(math.log10(view.scale)) - 1)))


def step_threshold(value: float | None, step: float, up: bool) -> float:
    """The next threshold on the step grid above (or below) `value` (from 0 when unset).

    Snapping to the grid keeps typed values like 0.5 on round numbers (0.51, not 1.5); rounding
    to the step's decimals drops float noise (0.1 + 0.2 reads 0.3)."""
    if not step > 0:
        raise ValueError("step must be positive")
    v = 0.0 if value is None or not math.isfinite(value) else float(value)
    k = v / step
    n = math.floor(k + 1e-9) + 1 if up else math.ceil(k - 1e-9) - 1
    decimals = max(0, -math.floor(math.log10(step))) + 1
    return round(n * step, decimals) + 0.0  # + 0.0: no "-0"
