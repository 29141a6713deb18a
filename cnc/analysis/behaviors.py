"""Behaviour comparison of models against a base, from cached predictions and probabilities.

Answers "which inputs did compression break?": per-instance comparison arrays are computed once
per (selection, base) by `build_table` (from predictions and true-class probabilities only; the
full probability matrices stay on disk, memory-mapped, until an MSE or KL column needs them,
then are streamed in row chunks), then any row mode (classes,
subgroups, instances, exemplars), metric, sort and filter is a cheap vector operation on them
(`build_view`), and paging is a slice (`page_rows`). Instance rows can be restricted to one class or
subgroup (`Group`, "which instances of class 8 broke?"), a boolean mask over the same arrays.

Conventions
- Every metric has an absolute value per model and row; the value *relative to the base* is the
  model's value minus the base's. Metrics that already compare with the base (flip rate, |Δ|,
  MSE, KL, % more errors) are 0 for the base, so their relative value equals the absolute one;
  ratios are 1 for the base and their relative value is ratio − 1.
- Group values are means over the group's instances; ratios are ratios of group means
  (mean(model) / mean(base)), which equal the per-instance ratio for an instance row and stay
  finite when a few base values are tiny.
- KL divergence is KL(base ‖ model) = Σ_c p_b · log(p_b / p_m), with both distributions clipped
  below at `EPS` = 1e-7 inside the log (not renormalized). A class the base gives probability 0
  contributes 0; a class the model gives 0 but the base does not contributes p_b·log(p_b/EPS)
  (large but finite). Identical outputs give exactly 0.
- "% more errors than base" is (err_model − err_base) / err_base. Where the base makes no errors
  in a row it is +0% if the model makes none either, and +∞ if the model does: compression
  introduced errors there, the worst case. +∞ is shown as "new errors", sorts above every finite
  value, passes any "≥" threshold and fails any "≤" one.
- Row thresholds ("any model ≥ t" or "any model ≤ t") compare each compared (non-base) model's
  shown value; undefined values (NaN) never pass.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from cnc.urlstate import parse_index

EPS = 1e-7
CHUNK = 8192  # rows per chunk for the [N, C] computations (bounds temporary memory)
HIST_BINS = 16

ROW_MODES = ("classes", "subgroups", "instances", "exemplars")
INSTANCE_MODES = ("instances", "exemplars")
FILTERS = ("all", "newerr", "fixed", "flipped")
THRESHOLD_DIRECTIONS = ("ge", "le")  # keep rows where any model's value is >= / <= the threshold
FILTER_LABELS = {
    "all": "All instances",
    "newerr": "Base right, a model wrong",
    "fixed": "Base wrong, a model right",
    "flipped": "Prediction changed in a model",
}


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


# ----------------------------------------------------------------------------- per-instance table

@dataclass
class InstanceTable:
    """Per-instance comparison arrays for present models (row 0 is the base).

    `mse` and `kl` need every model's full probabilities; they are computed on first use (the
    first view that shows or sorts by them), not when the table is built, so opening a selection
    reads only predictions and true-class probabilities."""

    models: list[str]
    labels: np.ndarray  # int64[N]
    preds: np.ndarray  # int32[M, N]
    correct: np.ndarray  # bool[M, N]
    conf: np.ndarray  # float32[M, N] probability of the true label
    probs: list = field(default_factory=list, repr=False)  # per model [N, C] (memory-mapped), until used
    scalars: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float32[M, N]
    missing: dict[str, str] = field(default_factory=dict)  # model id -> why it has no outputs
    flips: np.ndarray = field(init=False)  # int16[N] non-base models whose top-1 differs from the base's
    subgroup_cache: dict = field(default_factory=dict, repr=False)  # attribute -> Grouping
    _divergence: tuple | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.flips = (self.preds[1:] != self.preds[0]).sum(axis=0).astype(np.int16)

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def mse(self) -> np.ndarray:
        """float32[M, N] mean squared difference of output probabilities vs base (row 0 zeros)."""
        return self._divergences()[0]

    @property
    def kl(self) -> np.ndarray:
        """float32[M, N] KL(base ‖ model) (row 0 zeros)."""
        return self._divergences()[1]

    def _divergences(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:  # concurrent views of one table compute it once
            if self._divergence is None:
                self._divergence = divergences(self.probs)
                self.probs = []  # release the mapped probability files
            return self._divergence

    def nbytes(self) -> int:
        arrays = [self.labels, self.preds, self.correct, self.conf, self.flips, *self.scalars.values(),
                  *(self._divergence or ())]
        return int(sum(a.nbytes for a in arrays))


def _log_clipped(p: np.ndarray) -> np.ndarray:
    """log(max(p, EPS)) in float32; for float16 input a lookup over all 65,536 values."""
    if p.dtype == np.float16:
        return np.take(_F16_LOG, p.view(np.uint16))
    return np.log(np.maximum(p.astype(np.float32), np.float32(EPS)))


with np.errstate(all="ignore"):
    _F16_LOG = np.log(np.maximum(np.arange(2 ** 16, dtype=np.uint16).view(np.float16).astype(np.float32),
                                 np.float32(EPS)))
    _F16_LOG[~np.isfinite(_F16_LOG)] = np.log(np.float32(EPS))  # NaN/negative codes never occur in probs


def divergences(probs: list) -> tuple[np.ndarray, np.ndarray]:
    """(mse[M, N], kl[M, N]) of every model's probabilities [N, C] against probs[0], in float32
    over row chunks (both threads of a 2-core server); the base's logs are taken once per chunk."""
    m = len(probs)
    n, c = np.shape(probs[0]) if m else (0, 1)
    mse = np.zeros((m, n), dtype=np.float32)
    kl = np.zeros((m, n), dtype=np.float32)

    def chunk(s: int) -> None:
        rows = slice(s, min(s + CHUNK // 4, n))
        base = np.asarray(probs[0][rows])
        b = base.astype(np.float32)
        log_b = _log_clipped(base)
        for k in range(1, m):
            other = np.asarray(probs[k][rows])
            kl[k, rows] = np.einsum("ij,ij->i", b, log_b - _log_clipped(other))
            diff = other.astype(np.float32) - b
            mse[k, rows] = np.einsum("ij,ij->i", diff, diff) / c

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(chunk, range(0, n, CHUNK // 4)))
    return mse, kl


def build_table(labels: np.ndarray, models: list[str], get_outputs: Callable[[str], dict | None],
                status: Callable[[str], str] = lambda m: "no outputs") -> InstanceTable | None:
    """Compute per-instance arrays for `models` (base first) from their predictions and
    true-class probabilities; full probabilities are kept only as (memory-mapped) references for
    the MSE / KL columns, computed when first shown.

    Models without outputs (or with outputs of the wrong shape) are left out and listed in
    `missing` with the reason. Returns None when the base itself has no usable outputs.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    missing: dict[str, str] = {}
    base_out = get_outputs(models[0]) if models else None
    if not _usable(base_out, n):
        if models:
            missing[models[0]] = why_missing(base_out, n, status(models[0]))
        return None
    classes = np.shape(base_out["probs"])[1]
    scalar_names = sorted(base_out.get("scalars") or {})
    present, preds, correct, conf, probs = [], [], [], [], []
    scalars: dict[str, list[np.ndarray]] = {s: [] for s in scalar_names}
    for mid in models:
        out = base_out if mid == models[0] else get_outputs(mid)
        if not _usable(out, n, classes):
            missing[mid] = why_missing(out, n, status(mid))
            continue
        pred = np.asarray(out["preds"], dtype=np.int32)
        present.append(mid)
        preds.append(pred)
        correct.append(pred == labels)
        true_p = out.get("p_true")
        conf.append(np.asarray(true_p, np.float32) if true_p is not None and np.shape(true_p) == (n,)
                    else np.asarray(out["probs"][np.arange(n), np.clip(labels, 0, classes - 1)], np.float32))
        probs.append(out["probs"])
        for s in scalar_names:
            values = (out.get("scalars") or {}).get(s)
            ok = values is not None and np.shape(values) == (n,)
            scalars[s].append(np.asarray(values, np.float32) if ok else np.full(n, np.nan, np.float32))
    return InstanceTable(
        models=present, labels=labels, preds=np.stack(preds), correct=np.stack(correct),
        conf=np.stack(conf), probs=probs, scalars={s: np.stack(v) for s, v in scalars.items()}, missing=missing,
    )


def _usable(out: dict | None, n: int, classes: int | None = None) -> bool:
    if not out or "probs" not in out or "preds" not in out:
        return False
    shape = np.shape(out["probs"])
    return len(shape) == 2 and shape[0] == n and (classes is None or shape[1] == classes) \
        and np.shape(out["preds"]) == (n,)


def why_missing(out: dict | None, n: int, status: str) -> str:
    if out is None:
        return {"pending": "outputs not computed yet (precompute pending)",
                "no data": "no checkpoint or stored outputs"}.get(status, status)
    return f"stored outputs do not match the evaluation set ({n} instances, same classes)"


# ----------------------------------------------------------------------------- rows

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
    if mode == "subgroups":
        if attribute not in table.subgroup_cache:  # string codes are the slow part: once per attribute
            names, codes = np.unique(np.asarray(attributes[attribute], dtype=str), return_inverse=True)
            table.subgroup_cache[attribute] = Grouping([str(x) for x in names], codes.astype(np.int64),
                                                       np.bincount(codes, minlength=len(names)))
        return table.subgroup_cache[attribute]
    return Grouping([], None, np.ones(table.n, dtype=np.int64))


def _group_means(values: np.ndarray, g: Grouping) -> np.ndarray:
    """[M, N] -> [M, G] means per group (NaN-aware; empty groups are NaN)."""
    if g.codes is None:
        return values.astype(np.float64)
    m, k = values.shape[0], len(g.names)
    finite = np.isfinite(values)
    flat_codes = (g.codes[None, :] + k * np.arange(m)[:, None]).ravel()
    sums = np.bincount(flat_codes, weights=np.where(finite, values, 0).ravel(), minlength=m * k)
    counts = np.bincount(flat_codes, weights=finite.ravel(), minlength=m * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(m, k)


def metric_values(table: InstanceTable, metric: str, g: Grouping) -> np.ndarray:
    """Absolute values [M, rows] of a metric per model (row 0 the base)."""
    if metric == "error":
        return _group_means(~table.correct, g)
    if metric == "moreerr":
        return more_errors(_group_means(~table.correct, g))
    if metric == "flip":
        return _group_means(table.preds != table.preds[0], g)
    if metric == "conf":
        return _group_means(table.conf, g)
    if metric == "confabs":
        return _group_means(np.abs(table.conf - table.conf[0]), g)
    if metric == "confratio":
        means = _group_means(table.conf, g)
        return _ratio(means, means[0])
    if metric == "mse":
        return _group_means(table.mse, g)
    if metric == "kl":
        return _group_means(table.kl, g)
    kind, _, name = metric.partition(":")
    values = table.scalars.get(name)
    if values is None:
        raise KeyError(metric)
    if kind == "sc":
        return _group_means(values, g)
    if kind == "scabs":
        return _group_means(np.abs(values - values[0]), g)
    if kind == "scratio":
        means = _group_means(values, g)
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


# ----------------------------------------------------------------------------- drill-down

@dataclass(frozen=True)
class Group:
    """A class (by index) or a subgroup (attribute = value) whose instances a view can show alone.

    Its `key` is the URL form: "class:8" or "attr:ink density:high" (attribute names may contain
    colons: parsing matches the declared names).
    """

    kind: str  # "class" or "attr"
    value: str  # the class index as text, or the attribute value
    attribute: str | None = None

    @property
    def key(self) -> str:
        return f"class:{self.value}" if self.kind == "class" else f"attr:{self.attribute}:{self.value}"

    @classmethod
    def from_key(cls, text: str | None, attributes: Iterable[str], class_names: list[str] = ()) -> Group | None:
        """Syntax only (values are not checked): "class:<index or name>" / "attr:<attribute>:<value>"."""
        kind, _, rest = (text or "").partition(":")
        if kind == "class":
            if parse_index(rest) is not None:
                return cls("class", str(parse_index(rest)))
            return cls("class", str(list(class_names).index(rest))) if rest in class_names else None
        if kind == "attr":  # the longest declared attribute name that prefixes the rest
            attr = max((a for a in attributes if rest.startswith(f"{a}:")), key=len, default=None)
            return cls("attr", rest[len(attr) + 1:], attr) if attr is not None else None
        return None

    def label(self, class_names: list[str]) -> str:
        """"class 8" / "ink density = high" (a class name that already says "class" is kept as is)."""
        if self.kind == "attr":
            return f"{self.attribute} = {self.value}"
        name = class_name(class_names, int(self.value))
        return name if name.lower().startswith("class ") else f"class {name}"


def group_for_row(mode: str, attribute: str | None, index: int, names: list[str]) -> Group | None:
    """The group behind row `index` of a class or subgroup view (None for other rows)."""
    if not 0 <= index < len(names):
        return None
    if mode == "classes":
        return Group("class", str(index))
    if mode == "subgroups" and attribute is not None:
        return Group("attr", names[index], attribute)
    return None


def parse_group(text: str | None, class_names: list[str], attributes: dict[str, list[str]],
                table: InstanceTable | None = None, n_classes: int = 0) -> Group | None:
    """A group from its key, or None when malformed or unknown.

    A class is its index (or, for hand-written links, its exact name); it must be below the number
    of classes (class names, `n_classes`, or the table's labels). A subgroup needs a declared
    attribute and one of its values (checked on the table's cached subgroup names when given).
    """
    group = Group.from_key(text, attributes, class_names)
    if group is None:
        return None
    if group.kind == "class":
        n = max(len(class_names), n_classes, int(table.labels.max(initial=-1)) + 1 if table is not None else 0)
        return group if int(group.value) < n else None
    known = grouping(table, "subgroups", class_names, attributes, group.attribute).names if table is not None \
        else attributes[group.attribute]
    return group if group.value in known else None


def group_mask(table: InstanceTable, group: Group, attributes: dict[str, list[str]]) -> np.ndarray:
    """bool[N]: which instances belong to the group (the subgroup codes are cached per attribute)."""
    if group.kind == "class":
        return table.labels == int(group.value)
    g = grouping(table, "subgroups", [], attributes, group.attribute)
    if group.value not in g.names:
        return np.zeros(table.n, dtype=bool)
    return g.codes == g.names.index(group.value)


def group_instances(table: InstanceTable, group: Group, attributes: dict[str, list[str]]) -> np.ndarray:
    """Indices of the group's instances, ascending."""
    return np.flatnonzero(group_mask(table, group, attributes))


# ----------------------------------------------------------------------------- views

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

    def key(self) -> tuple:
        return (self.mode, self.attribute, self.metric, self.rel, self.filt, self.threshold, self.direction,
                self.min_flips, self.sort, self.desc, self.group)


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

    @property
    def instance_rows(self) -> bool:
        return self.state.mode in INSTANCE_MODES

    @property
    def row_count(self) -> int:
        return int(self.order.shape[0])


def build_view(table: InstanceTable, state: ViewState, specs: dict[str, MetricSpec], class_names: list[str],
               attributes: dict[str, list[str]]) -> View:
    """Filter and sort one table for a view state (a few vector operations, no Python loops)."""
    spec = specs[state.metric]
    mode = "instances" if state.mode == "exemplars" else state.mode
    g = grouping(table, mode, class_names, attributes, state.attribute)
    values = metric_values(table, state.metric, g)
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
    return View(state, spec, table.models, g.names, g.counts, shown, order, scale, signed, edges, hists,
                group, int(within.sum()) if within is not None else 0)


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
    if sort is None and state.mode == "exemplars":
        # Most models disagreeing first; ties: largest mean KL (most changed outputs).
        kl = table.kl[1:, order].mean(axis=0) if len(table.models) > 1 else np.zeros(order.size)
        return order[np.lexsort((-kl, -table.flips[order].astype(np.int64)))]
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


# ----------------------------------------------------------------------------- output

def format_number(value: float, fmt: str) -> str:
    """Python format spec, or "pp" for percentage points; NaN/inf -> "—"."""
    if value is None or not math.isfinite(value):
        return "—"
    if fmt == "pp":
        return f"{value * 100:+.1f} pp"
    text = format(value, fmt)
    if text.startswith("-") and not any(ch in "123456789" for ch in text.split("e")[0]):
        text = ("+" if "+" in fmt else "") + text[1:]  # a value that rounds to zero has no sign
    return text


def page_rows(view: View, table: InstanceTable, start: int, end: int, class_names: list[str]) -> list[dict]:
    """Row dicts for rows [start, end) of a view: value strings and bar fractions per model.

    Keys: "row" (label), "n", "g" (group index), and per model column `c<j>` (text), `c<j>_b` (bar fraction in
    [-1, 1]), `c<j>_h` (harm: 1 bad, -1 good, 0 neutral). Instance rows also carry "i", "label",
    "base_pred" and "flips".
    """
    idx = view.order[max(0, start):max(0, end)]
    fmt = view.spec.rel_fmt if view.state.rel else view.spec.abs_fmt
    rows = []
    for r in idx.tolist():
        row: dict = {}
        if view.instance_rows:
            row.update(i=r, row=f"#{r}", label=class_name(class_names, int(table.labels[r])),
                       base_pred=class_name(class_names, int(table.preds[0, r])), flips=int(table.flips[r]))
        else:
            row.update(g=r, row=view.names[r], n=int(view.counts[r]))
        for j in range(len(view.models)):
            v = float(view.shown[j, r])
            words = _INSTANCE_WORDS.get((view.spec.id, view.state.rel)) if view.instance_rows else None
            if words and math.isfinite(v):
                row[f"c{j}"] = words.get(round(v), "—")
            else:
                row[f"c{j}"] = view.spec.inf_text if v == math.inf and view.spec.inf_text else format_number(v, fmt)
            row[f"c{j}_b"] = bar_fraction(v, view.scale)
            row[f"c{j}_h"] = harm(v, view.spec, view.state.rel)
        rows.append(row)
    return rows


# 0/1 metrics of a single instance read better as words than as 0% / 100%.
_INSTANCE_WORDS = {
    ("error", False): {0: "right", 1: "wrong"},
    ("error", True): {0: "same", 1: "new error", -1: "fixed"},
    ("flip", False): {0: "same", 1: "changed"},
    ("flip", True): {0: "same", 1: "changed"},
}


def bar_fraction(value: float, scale: float) -> float:
    """value / scale in [-1, 1]; ±inf is a full bar, NaN none."""
    if math.isinf(value):
        return math.copysign(1.0, value)
    if math.isnan(value) or scale <= 0:
        return 0.0
    return round(max(-1.0, min(1.0, value / scale)), 4)


def harm(value: float, spec: MetricSpec, rel: bool) -> int:
    """1 when the value means the model is worse than the base, -1 better, 0 neutral/unknown."""
    if spec.higher_is_worse is None or math.isnan(value):
        return 0
    baseline = 0.0 if rel else spec.base_value
    if baseline is None:
        return 0
    if abs(value - baseline) < 1e-12:
        return 0
    worse = value > baseline if spec.higher_is_worse else value < baseline
    return 1 if worse else -1


def class_name(class_names: list[str], k: int) -> str:
    return class_names[k] if 0 <= k < len(class_names) else str(k)


def sparkline_svg(counts: np.ndarray, width: int = 120, height: int = 26) -> str:
    """A tiny bar histogram as an SVG document (numbers only: safe to embed as a data URI)."""
    counts = np.asarray(counts, dtype=np.float64)
    top = counts.max() if counts.size and counts.max() > 0 else 1.0
    w = width / max(1, counts.size)
    bars = []
    for k, c in enumerate(counts):
        h = 0 if c == 0 else max(1.5, (height - 2) * c / top)
        bars.append(f'<rect x="{k * w + 0.5:.1f}" y="{height - h:.1f}" width="{max(w - 1, 1):.1f}" '
                    f'height="{h:.1f}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="none"><g fill="#6b8fb5">{"".join(bars)}</g></svg>')


def instance_detail(index: int, label: int, class_names: list[str], models: list[str],
                    outputs: list[dict | None], top_k: int = 3) -> list[dict]:
    """Per model: prediction, whether it is right, and its top-k classes with probabilities."""
    rows = []
    for mid, out in zip(models, outputs):
        if not out or "probs" not in out or index >= len(out["preds"]):
            rows.append({"model": mid, "pred": None, "correct": None, "top": [], "true_prob": None})
            continue
        p = np.asarray(out["probs"][index], dtype=np.float64)
        top = np.argsort(-p, kind="stable")[:top_k]
        pred = int(out["preds"][index])
        rows.append({
            "model": mid, "pred": class_name(class_names, pred), "correct": pred == label,
            "true_prob": float(p[label]) if 0 <= label < p.size else None,
            "top": [(class_name(class_names, int(k)), float(p[k])) for k in top],
        })
    return rows
