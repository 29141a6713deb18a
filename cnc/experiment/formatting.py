"""Metric formatting with d3-style format strings (the original format's `format` field)."""
from __future__ import annotations

import re

from cnc.experiment.forest import Metric, is_missing

_D3 = re.compile(r"^(?P<sign>[+-])?(?P<comma>,)?(?:\.(?P<prec>\d+))?(?P<type>[%fdegs])?$")
MISSING = "—"


def format_value(fmt: str | None, value: float | None) -> str:
    """Format like d3-format for the common specs (',d', '.1%', '.3f', '.2s', '.3g', and a leading
    '+' for changes: '+.1%')."""
    if is_missing(value):
        return MISSING
    m = _D3.match((fmt or "").strip().lstrip("~"))
    if not fmt or not m:
        return f"{value:.4g}"
    comma, sign = ("," if m["comma"] else ""), ("+" if m["sign"] == "+" else "")
    prec, kind = m["prec"], m["type"] or "g"
    if kind == "d":
        return f"{round(value):{sign}{comma}d}"
    if kind == "%":
        return f"{value * 100:{sign}{comma}.{prec or 0}f}%"
    if kind == "s":
        return ("+" if sign and value > 0 else "") + _si(value, int(prec or 3))
    if kind in "feg":
        return f"{value:{sign}{comma}.{prec or 6}{kind}}"
    return f"{value:.4g}"


def _si(value: float, digits: int) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def format_metric(metric: Metric, value: float | None, with_unit: bool = True) -> str:
    text = format_value(metric.format, value)
    if with_unit and metric.unit and text != MISSING:
        return f"{text} {metric.unit}"
    return text


def metric_help(metric: Metric) -> str:
    """A metric's tooltip: its description (what it measures, e.g. that a size is modelled) and
    which direction is better."""
    direction = "higher is better" if metric.higher_is_better else "lower is better"
    return f"{metric.description} ({direction})" if metric.description else direction
