"""Outputs that cannot be right: a model whose probabilities are NaN or infinite (a checkpoint with
garbled bytes loads fine and computes garbage), or whose evaluated accuracy is far from the one its
experiment file states. Such a model is flagged "suspect" instead of showing a KL of 16 as if real."""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np

ROWS = 1 << 14  # rows checked at a time (no [N, C] boolean temporary for a big matrix)
SLACK = 1e-2  # float16 rounding of probabilities
DISAGREEMENT = 0.25  # |evaluated - stated| accuracy beyond which the two cannot describe one model
AGREEMENT = 0.05  # ... when the root's evaluation is within this of its own file's
_ACCURACY = re.compile(r"^(top[-_ ]?1[-_ ]?)?acc(uracy)?([-_ ]?top[-_ ]?1)?$", re.IGNORECASE)


def probability_problem(probs: np.ndarray) -> str | None:
    """Why these [N, C] probabilities cannot be a model's (None when they can)."""
    n = len(probs)
    bad = outside = 0
    for s in range(0, n, ROWS):
        nonfinite, out = _bad_values(np.asarray(probs[s:s + ROWS]))
        bad += int(nonfinite.any(axis=1).sum())
        outside += int((out & ~nonfinite).any(axis=1).sum())
    if bad:
        return (f"non-finite outputs ({bad} of {n} instances have NaN or infinite probabilities; "
                "the checkpoint may be damaged)")
    if outside:
        return f"impossible outputs ({outside} of {n} instances have probabilities outside [0, 1])"
    return None


_ONE = int(np.float16(1 + SLACK).view(np.uint16))
_TINY = int(np.float16(SLACK).view(np.uint16))


def _bad_values(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(non-finite, outside [0, 1]) masks. float16 (what precompute stores) is read through its
    bits: numpy's float16 arithmetic is emulated and 20x slower than these integer comparisons."""
    if block.dtype != np.float16:
        block = np.asarray(block, np.float32)
        return ~np.isfinite(block), (block < -SLACK) | (block > 1 + SLACK)
    bits = block.view(np.uint16)
    magnitude = bits & np.uint16(0x7FFF)
    negative = bits >= np.uint16(0x8000)
    return magnitude >= np.uint16(0x7C00), np.where(negative, magnitude > _TINY, magnitude > _ONE)


def stated_accuracy(metrics: Mapping[str, float | None]) -> tuple[str, float] | None:
    """The accuracy a model's file states (name, fraction), if one metric is named like one."""
    for name, value in metrics.items():
        if value is None or not _ACCURACY.match(name.strip()) or not np.isfinite(value):
            continue
        if 0 <= value <= 1:
            return name, float(value)
        if 1 < value <= 100:  # given in percent
            return name, float(value) / 100
    return None


def accuracy_offset(evaluated: float | None, metrics: Mapping[str, float | None]) -> tuple[str, float, float] | None:
    """(metric name, evaluated accuracy, stated accuracy) of a model, when its file states one."""
    stated = stated_accuracy(metrics)
    if stated is None or evaluated is None:
        return None
    return stated[0], float(evaluated), stated[1]


def accuracy_problem(model: tuple[str, float, float] | None, root: tuple[str, float, float] | None) -> str | None:
    """Why a model's evaluated accuracy contradicts its file's, judged against its root's: only
    when the root's evaluation agrees with its file (same data, same metric) does a model far off
    its own file mean damage; otherwise the file's metric was measured on other data."""
    if model is None or root is None or abs(root[1] - root[2]) > AGREEMENT:
        return None
    name, evaluated, stated = model
    if abs(evaluated - stated) <= DISAGREEMENT:
        return None
    return (f"evaluated accuracy {evaluated:.1%} disagrees with the file's {name} {stated:.1%} while its base "
            f"agrees with its own (a damaged checkpoint, or the wrong file)")
