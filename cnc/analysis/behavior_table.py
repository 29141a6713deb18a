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

The other pieces of Behaviors have their own modules: behavior_metrics (metric specs and values
per row group), behavior_groups (drill-down to a class or subgroup), behavior_view (filter, sort,
histograms of one view state), behavior_cells (formatted page rows, bars, harm, instance detail).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cnc.analysis.divergence import PairCache, against_base
from cnc.analysis.worst_samples import Damage, right_to_wrong


@dataclass
class InstanceTable:
    """Per-instance comparison arrays for present models (row 0 is the base).

    `mse` and `kl` need every model's full probabilities; they are read from `pairs` (stored per
    base and model: precompute stores each model's against its root) or computed on first use (the
    first view that shows or sorts by them) and stored there, never when the table is built, so
    opening a selection reads only predictions and true-class probabilities."""

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
    pairs: PairCache | None = field(default=None, repr=False)  # stored divergences per (base, model)
    _divergence: tuple | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # instance rows' columns before the models': (field, grid header, tooltip, CSV header)
    INSTANCE_COLUMNS = (("label", "True label", None, "true label"), ("base_pred", "Base predicts", None, "base prediction"),
                        ("flips", "Flips", "In how many compared models the prediction differs from the base's",
                         "models changed"))

    def __post_init__(self) -> None:
        self.flips = (self.preds[1:] != self.preds[0]).sum(axis=0).astype(np.int16)

    def exemplar_order(self, order: np.ndarray, rank: str = "broke") -> np.ndarray:
        """Exemplars: most models disagreeing first; ties: largest mean KL (most changed outputs).
        One order for classifiers: `rank` chooses among generative tables' orders only."""
        kl = self.kl[1:, order].mean(axis=0) if len(self.models) > 1 else np.zeros(order.size)
        return order[np.lexsort((-kl, -self.flips[order].astype(np.int64)))]

    def damage(self, k: int) -> Damage:
        """Model k's damage per instance (cnc.analysis.worst_samples): right → wrong, the drop in the
        true class's probability, KL(base ‖ model)."""
        return Damage(right_to_wrong(self.correct[0], self.correct[k]),
                      self.conf[0].astype(np.float64) - self.conf[k], self.kl[k].astype(np.float64))

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
                self._divergence = against_base(self.models, self.probs, self.pairs)
                self.probs = []  # release the mapped probability files
            return self._divergence

    def nbytes(self) -> int:
        arrays = [self.labels, self.preds, self.correct, self.conf, self.flips, *self.scalars.values(),
                  *(self._divergence or ())]
        return int(sum(a.nbytes for a in arrays))


def build_table(labels: np.ndarray, models: list[str], get_outputs: Callable[[str], dict | None],
                status: Callable[[str], str] = lambda m: "no outputs",
                pairs: PairCache | None = None) -> InstanceTable | None:
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
        pairs=pairs,
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
