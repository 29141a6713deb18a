"""The Selection Details grouped bar chart: a metric over the variables that explain a selection.

Pure: builds a plain plotly figure dict (no Dash, no validation cost) from an `Explanation`
(cnc.analysis.comparability). x = the first variable, colour = the second; one bar per model,
labelled with its formatted value; a missing metric value or a missing combination of values
leaves an empty slot, never a zero bar. Every user-provided string (ids, tags, operation names,
parameter values) is HTML-escaped, since plotly renders a subset of HTML in labels.
"""
from __future__ import annotations

import re
import textwrap
from html import escape
from typing import Any

from cnc.analysis.comparability import NONE, RECIPE_LABEL, Explanation, Variable
from cnc.experiment.forest import Metric, is_missing
from cnc.experiment.formatting import MISSING, format_metric

QUALITATIVE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
               "#ff9da7", "#9c755f", "#bab0ac"]
PRESENCE = {"no": "#a0aab8", "yes": "#2f5d8a"}
SINGLE = "#2f5d8a"
_BLUES = ((0xc6, 0xdb, 0xef), (0x08, 0x30, 0x6b))  # light -> dark for ordered numeric values
_WRAP_AT = 22
_UPRIGHT_UP_TO = 10  # categories whose (wrapped) tick labels stay horizontal
_D3 = re.compile(r"^,?(\.\d+)?[%fdegs]?$")
_SEPARATORS = (" → ", ", ")


def value_text(variable: Variable, value: Any) -> str:
    """How a variable's value reads on an axis or in a legend (unescaped).

    The explanation says how its values read (docs/comparability.md, "Reading a value");
    hand-built variables fall back to: presence "no"/"yes" (the legend title names the
    operation), numbers in their shortest form ("0.5", not "0.500000").
    """
    if variable.label == RECIPE_LABEL and value == NONE:
        return "start model (no operation)"  # the selection's common ancestor itself
    known = variable.text(value)
    if known is not None:
        return known
    if variable.kind == "presence":
        return "no" if value == NONE else "yes"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list | frozenset | set):
        return ", ".join(value_text(variable, v) for v in value)
    return str(value)


def wrap(text: str, width: int = _WRAP_AT) -> str:
    """Escape, then break long labels into lines: at their separators ("a → b"), and before a
    parameter list ("magnitude prune<br>(amount=0.5)") when one step is still too long."""
    if len(text) <= width:
        return escape(text)
    pieces = [text]
    for sep in _SEPARATORS:
        if sep in text:
            parts = text.split(sep)
            pieces = [p + sep.rstrip() for p in parts[:-1]] + [parts[-1]]
            break
    tokens: list[str] = []
    for piece in pieces:
        cut = piece.find("(")
        if len(piece) > width and cut > 0:
            tokens += [piece[:cut].rstrip(), piece[cut:]]
        else:
            tokens.append(piece)
    lines, line = [], ""
    for token in tokens:
        if line and len(line) + 1 + len(token) > width:
            lines.append(line)
            line = token
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return "<br>".join(escape(x) for x in lines)


def colors_for(variable: Variable | None, labels: list[str]) -> list[str]:
    """Grey/blue for presence, a light-to-dark ramp for numbers, a qualitative palette otherwise."""
    if variable is None:
        return [SINGLE] * len(labels)
    if variable.kind == "presence":
        return [PRESENCE.get(label, SINGLE) for label in labels]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in variable.values if v != NONE)
    if numeric and len(labels) > 1:
        lo, hi = _BLUES
        out = []
        for i in range(len(labels)):
            t = 0.25 + 0.75 * i / (len(labels) - 1)
            out.append("#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi)))
        return out
    return [QUALITATIVE[i % len(QUALITATIVE)] for i in range(len(labels))]


def _categories(variable: Variable) -> tuple[dict[Any, str], list[str]]:
    """Unique display label per value, in the variable's order."""
    names: dict[Any, str] = {}
    seen: set[str] = set()
    for v in variable.values:
        text = value_text(variable, v)
        while text in seen:
            text += " "  # two values that read the same still get two categories
        seen.add(text)
        names[v] = text
    return names, list(names.values())


def _best_first(order: list[str], x_of: dict[str, str], values: dict[str, float | None],
                metric: Metric | None) -> list[str]:
    """One bar per model reads as a ranking: best value of the current metric first (highest, or
    lowest when lower is better), models without a value last, ties in the explanation's order."""
    value_of = {x_of[m]: values.get(m) for m in x_of}
    sign = -1 if metric is None or metric.higher_is_better else 1

    def key(x: str) -> tuple:
        v = value_of.get(x)
        return (1, 0.0) if is_missing(v) else (0, sign * float(v))

    return sorted(order, key=key)


def tick_format(metric: Metric | None) -> str:
    """The metric's d3 format for axis ticks, trimming insignificant zeros ("80%", not "80.0%")."""
    fmt = (metric.format or "").strip() if metric else ""
    if not _D3.match(fmt):
        return ""
    return fmt if "~" in fmt or not fmt else re.sub(r"([a-z%])$", r"~\1", fmt)


def _axis_title(metric: Metric | None, name: str) -> str:
    if metric is None:
        return escape(name)
    unit = f" ({metric.unit})" if metric.unit else ""
    arrow = "higher is better" if metric.higher_is_better else "lower is better"
    return escape(f"{metric.name}{unit} — {arrow}")


def bar_figure(
    explanation: Explanation,
    values: dict[str, float | None],
    metric: Metric | None,
    labels: dict[str, str] | None = None,
    metric_name: str = "",
    hover: dict[str, str] | None = None,
) -> dict:
    """The grouped bar chart of `values` (model id -> metric value) over the explanation.

    Zero variables and several models: one bar per model (x = model label). One bar per model by
    recipe: best value first. Models sharing a cell (the same values of both variables) get their
    own bars side by side in that cell. `hover`: a line more per model id (plain text, e.g. its test).
    """
    labels = labels or {}
    models = list(explanation.rows)
    variables = explanation.variables[:2]
    x_var = variables[0] if variables else None
    c_var = variables[1] if len(variables) > 1 else None
    if x_var is None:
        x_names = {m: labels.get(m, m) for m in models}
        x_of = {m: x_names[m] for m in models}
        x_order = list(dict.fromkeys(x_names.values()))
    else:
        x_names, x_order = _categories(x_var)
        x_of = {m: x_names[explanation.rows[m][0]] for m in models}
        if x_var.label == RECIPE_LABEL and c_var is None:
            x_order = _best_first(x_order, x_of, values, metric)
    if c_var is None:
        c_order = [""]
        c_of = {m: "" for m in models}
    else:
        c_names, c_order = _categories(c_var)
        c_of = {m: c_names[explanation.rows[m][1]] for m in models}
    palette = dict(zip(c_order, colors_for(c_var, c_order)))

    # (colour, slot) -> list of models; slot k holds the k-th model of each cell
    slots: dict[tuple[str, int], list[str]] = {}
    filled: dict[tuple[str, str], int] = {}
    for m in models:
        cell = (x_of[m], c_of[m])
        k = filled.get(cell, 0)
        filled[cell] = k + 1
        slots.setdefault((c_of[m], k), []).append(m)
    order = {c: i for i, c in enumerate(c_order)}
    traces = []
    for (color, k), members in sorted(slots.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        traces.append(_trace(explanation, members, values, metric, labels, x_of, color, k,
                             palette[color], show_legend=c_var is not None and k == 0, hover=hover or {}))

    # recipe bars need no axis title (their labels are recipes, the summary says so), and a title
    # under multi-line recipe labels would overlap them
    x_title = "" if x_var is not None and x_var.label == RECIPE_LABEL else escape(x_var.label) if x_var else "model"
    if c_var is None and len(x_order) > _UPRIGHT_UP_TO:
        return _horizontal(traces, x_order, x_of, x_title, metric, metric_name)
    return {
        "data": traces,
        "layout": {
            "barmode": "group",
            "bargap": 0.25,
            "bargroupgap": 0.06,
            "margin": {"l": 64, "r": 16, "t": 36, "b": 10},
            "height": 380,
            "font": {"size": 12},
            "paper_bgcolor": "#ffffff",
            "plot_bgcolor": "#ffffff",
            "uniformtext": {"mode": "hide", "minsize": 9},
            "xaxis": {"type": "category", "categoryorder": "array",
                      "categoryarray": [wrap(x) for x in x_order],
                      "title": {"text": x_title}, "automargin": True, "tickfont": {"size": 11},
                      "tickangle": 0 if len(x_order) <= _UPRIGHT_UP_TO else None},
            "yaxis": {"title": {"text": _axis_title(metric, metric_name)}, "zeroline": True,
                      "tickformat": tick_format(metric),
                      "gridcolor": "#eef0f3", "automargin": True, "rangemode": "tozero"},
            "showlegend": c_var is not None,
            "legend": {"title": {"text": escape(c_var.label) + "  " if c_var else "", "side": "left"},
                       "orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
            "hoverlabel": {"align": "left"},
        },
    }


def _horizontal(traces: list[dict], order: list[str], x_of: dict[str, str], title: str,
                metric: Metric | None, metric_name: str) -> dict:
    """Many single-colour bars (e.g. one per recipe): horizontal, so long labels read as lines
    instead of overlapping rotated ticks."""
    for t in traces:
        t["x"], t["y"] = t["y"], [wrap(x_of[m], 90) for m in t["customdata"]]
        t["orientation"] = "h"
    return {
        "data": traces,
        "layout": {
            "barmode": "group", "bargap": 0.25, "height": max(380, 28 * len(order) + 90),
            "margin": {"l": 10, "r": 48, "t": 20, "b": 40}, "font": {"size": 12},
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
            "uniformtext": {"mode": "hide", "minsize": 9},
            "yaxis": {"type": "category", "categoryorder": "array", "autorange": "reversed",
                      "categoryarray": [wrap(x, 90) for x in order], "title": {"text": title},
                      "automargin": True, "tickfont": {"size": 11}},
            "xaxis": {"title": {"text": _axis_title(metric, metric_name)}, "zeroline": True,
                      "tickformat": tick_format(metric), "gridcolor": "#eef0f3", "automargin": True,
                      "rangemode": "tozero"},
            "showlegend": False,
            "hoverlabel": {"align": "left"},
        },
    }


def _trace(explanation: Explanation, members: list[str], values: dict[str, float | None],
           metric: Metric | None, labels: dict[str, str], x_of: dict[str, str], color: str,
           slot: int, fill: str, show_legend: bool, hover: dict[str, str]) -> dict:
    ys, texts, hovers = [], [], []
    for m in members:
        v = values.get(m)
        missing = is_missing(v)
        ys.append(None if missing else v)
        shown = MISSING if missing else (format_metric(metric, v, with_unit=False) if metric else f"{v:.4g}")
        texts.append("" if missing else shown)
        label = labels.get(m, m)
        head = label if label == m else f"{label} ({m})"
        lines = [f"<b>{escape(head)}</b>", wrap(explanation.recipe(m), 60),
                 escape(f"{metric.name if metric else 'value'}: {shown}")]
        if m in hover:
            lines += [escape(line) for line in textwrap.wrap(hover[m], 60)]
        hovers.append("<br>".join(lines))
    name = color if slot == 0 else f"{color} ({slot + 1})"
    return {
        "type": "bar",
        "name": escape(name) or "models",
        "legendgroup": escape(color),
        "showlegend": show_legend,
        "x": [wrap(x_of[m]) for m in members],
        "y": ys,
        "customdata": members,
        "text": texts,
        "textposition": "outside",
        "cliponaxis": False,
        "hovertext": hovers,
        "hovertemplate": "%{hovertext}<extra></extra>",
        "marker": {"color": fill, "line": {"width": 0}},
    }
