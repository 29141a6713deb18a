"""Worst samples of one model: instance rows ranked by what compression did to ONE chosen model
against the base, the drill-down that OpenVINO's who-what-benchmark and llm-compressor's KL tool
print as text.

Three kinds of damage per instance, each table computing its own (`damage(k)`):
- right → wrong: the base is right and the model wrong (1, else 0; NaN when either is unknown);
- score drop: the base's score minus the model's (classifiers: the probability of the true class;
  generative tasks: the primary score, e.g. F1);
- KL: the model's divergence from the base (classifiers: KL(base ‖ model) of the output
  probabilities; generative tasks: mean per-token KL against the KL reference).
The chosen one orders first, the others break ties (right → wrong, then score drop, then KL;
score drop, then KL; KL, then score drop). Unknown values sort last.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

WORST_BY = ("r2w", "drop", "kl")


class Damage(NamedTuple):
    """float64 [N] each: one model's damage per instance (see the module docstring)."""

    right_to_wrong: np.ndarray
    drop: np.ndarray
    kl: np.ndarray


def _key(values: np.ndarray) -> np.ndarray:
    """Largest first, unknown last (np.lexsort sorts ascending)."""
    v = np.asarray(values, np.float64)
    return np.where(np.isnan(v), np.inf, -v)


def worst_order(order: np.ndarray, damage: Damage, by: str = "r2w") -> np.ndarray:
    """The instance indices `order` ranked worst first by `by` (one of WORST_BY), ties by the others."""
    if by not in WORST_BY:
        raise ValueError(f"worst samples by {by!r}: expected one of {', '.join(WORST_BY)}")
    order = np.asarray(order, dtype=np.int64)
    r2w, drop, kl = (_key(a[order]) for a in damage)
    keys = {"r2w": (kl, drop, r2w), "drop": (kl, drop), "kl": (drop, kl)}[by]  # lexsort: last key first
    return order[np.lexsort(keys)]


def right_to_wrong(base_right: np.ndarray, model_right: np.ndarray) -> np.ndarray:
    """1.0 where the base is right and the model wrong, 0.0 where not, NaN where either is unknown
    (right / wrong as 1 / 0 or booleans; NaN unknown)."""
    b, m = np.asarray(base_right, np.float64), np.asarray(model_right, np.float64)
    return np.where(np.isfinite(b) & np.isfinite(m), ((b >= 0.5) & (m < 0.5)).astype(np.float64), np.nan)
