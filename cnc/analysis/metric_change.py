"""A model's metric change against a base model, as a person reads it: "Accuracy −0.8 pt" for
rates (metrics formatted as percentages change in percentage points), "Size −62%" for everything
else (relative to the base's value). Whether the change is better follows the metric's direction."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cnc.experiment.forest import Metric, is_missing

MINUS = "−"  # U+2212, the typographic minus
_ROUNDS_TO_ZERO = re.compile(r"^[+−]0(\.0+)?(?![.\d])")


@dataclass(frozen=True)
class Change:
    amount: float | None  # points for rates, a fraction of the base's value otherwise; None: undefined
    text: str  # "−0.8 pt", "+12%", "±0", "—"
    better: bool | None  # None: no change or undefined


def is_rate(metric: Metric) -> bool:
    return "%" in (metric.format or "")


def change(metric: Metric, value: float | None, base: float | None) -> Change:
    if is_missing(value) or is_missing(base):
        return Change(None, "—", None)
    diff = float(value) - float(base)
    if is_rate(metric):
        amount, text = diff * 100, _signed(diff * 100, 1) + " pt"
    elif base != 0:
        amount = diff / abs(base)
        text = _signed(amount * 100, 0 if abs(amount) >= 0.1 else 1) + "%"
    else:  # a base of 0: only the absolute difference means something
        amount, text = None, _signed(diff, 3)
    if diff == 0 or _ROUNDS_TO_ZERO.match(text):
        return Change(amount, "±0", None)
    better = diff > 0 if metric.higher_is_better else diff < 0
    return Change(amount, text, better)


def _signed(x: float, decimals: int) -> str:
    text = f"{abs(x):.{decimals}f}" if math.isfinite(x) else "∞"
    return ("+" if x > 0 else MINUS) + text
