"""Metrics the app computes itself from a model's stored outputs: its own evaluated scores and its
fidelity to the root of its tree. They join the logged metrics on the Overview (colour, size,
axes, filters, Pareto front, Selection Details), named with a "(computed)" suffix and described as
derived, so nobody mistakes them for what the user logged.

Definitions (docs/statistics.md):
- classifiers: accuracy (share of predictions equal to the label);
- generative tasks: the mean of every stored per-instance score (exact match, F1, ROUGE-L, an
  lm-eval task metric such as acc, ...) over the instances that have it;
- against the root of the model's tree (the root itself reads 0 / 100%): flip rate (share of
  instances whose prediction / output text differs from the root's), mean KL (classifiers: mean
  over instances of KL(root ‖ model) of the output distributions; generative: mean over all
  reference tokens of the per-token KL against the KL reference, which precompute takes to be the
  root), same top token % (generative: share of reference tokens whose unique most likely token is
  the root's, ties never count) and the change of the primary score (accuracy, else F1, else the
  first score) in points.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from cnc.experiment.forest import Metric

SUFFIX = " (computed)"
DIGITS = 5  # significant digits kept: every number is shipped to the browser, 5,000 models x each metric
DERIVED_NOTE = "Derived: computed by Compress and Compare from its own evaluation of the model, not logged."
SCORE_NAMES = {"exact_match": "Exact match", "f1": "F1", "rouge_l": "ROUGE-L", "chrf": "chrF"}
UNIT_SCORES = ("exact_match", "f1", "rouge_l", "chrf", "acc", "acc_norm")


def _metric(name: str, fmt: str, higher_is_better: bool, what: str, lo: float | None = None,
            hi: float | None = None) -> Metric:
    return Metric(name=name + SUFFIX, format=fmt, higher_is_better=higher_is_better, min=lo, max=hi,
                  description=f"{what} {DERIVED_NOTE}")


FLIP = _metric("Flip rate vs root", ".1%", False, "Share of instances whose prediction (or output text) differs "
               "from the root model's.", 0.0, 1.0)
KL = _metric("Mean KL vs root", ".3g", False, "Mean KL(root ‖ model): per instance of the output "
             "distributions (classifiers), per reference token (generative tasks).", 0.0)
SAME_TOP = _metric("Same top token vs root", ".1%", True, "Share of reference tokens whose one most likely token "
                   "is the root's (a tie never counts).", 0.0, 1.0)
ACCURACY = _metric("Accuracy", ".1%", True, "Share of correct predictions on the evaluation set.", 0.0, 1.0)


def score_metric(name: str) -> Metric:
    """The derived metric of a generative per-instance score."""
    unit = name in UNIT_SCORES
    return _metric(SCORE_NAMES.get(name, name), ".1%" if unit else ".3g", name != "length",
                   f"Mean {SCORE_NAMES.get(name, name)} over the evaluation set.", 0.0 if unit else None,
                   1.0 if unit else None)


def change_metric(primary: str) -> Metric:
    label = "Accuracy" if primary == "accuracy" else SCORE_NAMES.get(primary, primary)
    unit = primary == "accuracy" or primary in UNIT_SCORES
    return _metric(f"{label} change vs root", "+.1%" if unit else "+.3g", True,
                   f"{label} of the model minus the root model's.")


def _mean(values) -> float | None:
    if values is None:
        return None
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def flip_rate(out: Mapping, base: Mapping, field: str) -> float | None:
    """Share of instances whose `field` ("preds" of a classifier, "texts" of a generative model)
    differs from the base's; None when the two do not cover the same instances."""
    mine, theirs = out.get(field), base.get(field)
    if mine is None or theirs is None or len(mine) != len(theirs) or not len(mine):
        return None
    if field == "texts":
        return float(np.mean([a != b for a, b in zip(mine, theirs)]))
    return float(np.mean(np.asarray(mine) != np.asarray(theirs)))


def token_kl_mean(out: Mapping, reference: str | None) -> float | None:
    """Mean per-token KL of a generative model against `reference`, when its stored per-token KL is
    against that model (precompute measures it against the tree's root); None otherwise."""
    if reference is None or out.get("kl") is None or out.get("kl_reference") != reference:
        return None
    return _mean(out["kl"])


def classifier_fidelity(out: Mapping, root: Mapping | None, labels: np.ndarray,
                        kl: np.ndarray | None) -> dict[str, float]:
    """Derived values of a classifier (`kl`: per-instance KL(root ‖ model), when known)."""
    preds = np.asarray(out["preds"])
    values = {ACCURACY.name: float(np.mean(preds == labels)) if preds.size else None}
    if root is not None and np.shape(root["preds"]) == preds.shape:
        values[FLIP.name] = flip_rate(out, root, "preds")
        values[change_metric("accuracy").name] = values[ACCURACY.name] - float(np.mean(np.asarray(root["preds"]) == labels))
        if kl is not None and np.shape(kl) == preds.shape:
            values[KL.name] = _mean(kl)
    return rounded(values)


def rounded(values: dict[str, float | None]) -> dict[str, float]:
    """The known values to `DIGITS` significant digits (far below what any view or filter shows)."""
    return {k: float(f"{v:.{DIGITS}g}") for k, v in values.items() if v is not None}


def primary_score(scores: Mapping) -> str | None:
    return "f1" if "f1" in scores else next(iter(scores), None)


def generative_fidelity(out: Mapping, root: Mapping | None, root_id: str | None) -> dict[str, float]:
    """Derived values of a generative model: its score means and, against its root, flips, KL,
    same top token and the primary score's change."""
    scores = out.get("scores") or {}
    values = {score_metric(name).name: _mean(v) for name, v in scores.items()}
    if root is not None:
        values[FLIP.name] = flip_rate(out, root, "texts")
        primary = primary_score(scores)
        mine, theirs = _mean(scores.get(primary)), _mean((root.get("scores") or {}).get(primary))
        if primary is not None and mine is not None and theirs is not None:
            values[change_metric(primary).name] = mine - theirs
    if (kl := token_kl_mean(out, root_id)) is not None:
        values[KL.name] = kl
        top1 = out.get("top1")
        values[SAME_TOP.name] = float(np.mean(top1)) if top1 is not None and np.size(top1) else None
    return rounded(values)


def derived_metric_defs(values: Mapping[str, Mapping[str, float]], scores: list[str] = ()) -> list[Metric]:
    """The derived metrics any model has a value of, in a fixed order."""
    present = {name for v in values.values() for name in v}
    order = [ACCURACY, *(score_metric(s) for s in scores), FLIP, KL, SAME_TOP,
             change_metric("accuracy"), *(change_metric(s) for s in scores)]
    seen: set[str] = set()
    defs = []
    for m in order:
        if m.name in present and m.name not in seen:
            seen.add(m.name)
            defs.append(m)
    return defs
