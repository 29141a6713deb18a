"""Behaviors output: formatted cells for one page of rows, inline bars, harm, sparklines and
one instance's per-model predictions."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from cnc.analysis.behavior_groups import class_name
from cnc.analysis.behavior_metrics import MetricSpec
from cnc.analysis.behavior_significance import cell_text, test_columns
from cnc.analysis.behavior_view import View
from cnc.analysis.generative_behaviors import GenerativeTable

if TYPE_CHECKING:  # type hints only: cnc.analysis.behaviors re-exports this module
    from cnc.analysis.behavior_table import InstanceTable


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


def widest_value(view: View) -> int:
    """Characters of the longest value text a model column of this view can show (its extremes,
    formatted as the cells are), so the grid sizes columns to their content, not one fixed width."""
    fmt = view.spec.rel_fmt if view.state.rel else view.spec.abs_fmt
    texts = ["—", view.spec.inf_text or ""]
    if view.instance_rows:
        texts += list((_INSTANCE_WORDS.get((view.spec.id, view.state.rel)) or {}).values())
    shown = np.asarray(view.shown, dtype=float)
    finite = shown[np.isfinite(shown)]
    if finite.size:
        texts += [format_number(float(v), fmt) for v in (finite.min(), finite.max())]
    return max(len(t) for t in texts)


def page_rows(view: View, table: InstanceTable, start: int, end: int, class_names: list[str]) -> list[dict]:
    """Row dicts for rows [start, end) of a view: value strings and bar fractions per model.

    Keys: "row" (label), "n", "g" (group index), and per model column `c<j>` (text), `c<j>_b` (bar fraction in
    [-1, 1]), `c<j>_h` (harm: 1 bad, -1 good, 0 neutral). Instance rows also carry "i" and the
    table's instance columns (classifiers: "label", "base_pred", "flips").
    """
    idx = view.order[max(0, start):max(0, end)]
    fmt = view.spec.rel_fmt if view.state.rel else view.spec.abs_fmt
    rows = []
    for r in idx.tolist():
        row: dict = {}
        if view.instance_rows:
            row.update(i=r, row=f"#{r}", **instance_cells(table, r, class_names))
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
            if view.tests is not None and j > 0:
                _test_cells(row, view, j, r)
        rows.append(row)
    return rows


def _test_cells(row: dict, view: View, j: int, r: int) -> None:
    """A group row's test of model j: its hover text (`c<j>_s`); a change that is not significant
    reads muted (`c<j>_ns`) and loses its ▼ / ▲ (relative values only: they are the changes)."""
    row[f"c{j}_s"] = cell_text(view.tests, j, r)
    if view.state.rel and not view.tests.significant[j, r]:
        row[f"c{j}_ns"] = 1
        row[f"c{j}_h"] = 0


def instance_cells(table: InstanceTable | GenerativeTable, i: int, class_names: list[str], full: bool = False) -> dict:
    """The values of a table's INSTANCE_COLUMNS for instance i (`full`: texts untruncated, for the CSV)."""
    if isinstance(table, GenerativeTable):
        return table.instance_cells(i, full=full)
    return {"label": class_name(class_names, int(table.labels[i])),
            "base_pred": class_name(class_names, int(table.preds[0, i])), "flips": int(table.flips[i])}


# 0/1 metrics of a single instance read better as words than as 0% / 100%.
_INSTANCE_WORDS = {
    ("error", False): {0: "right", 1: "wrong"},
    ("error", True): {0: "same", 1: "new error", -1: "fixed"},
    ("flip", False): {0: "same", 1: "changed"},
    ("flip", True): {0: "same", 1: "changed"},
    ("r2w", False): {0: "same", 1: "right → wrong"},
    ("r2w", True): {0: "same", 1: "right → wrong"},
    ("w2r", False): {0: "same", 1: "wrong → right"},
    ("w2r", True): {0: "same", 1: "wrong → right"},
    ("sc:exact_match", False): {0: "wrong", 1: "right"},
    ("sc:exact_match", True): {0: "same", -1: "right → wrong", 1: "wrong → right"},
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


def view_records(view: View, table: InstanceTable, class_names: list[str]) -> tuple[list[str], list[list]]:
    """(header, rows) of every row of a view, in its order, with raw shown values per model (the
    Behaviors CSV download; the grid only ever holds one page of these)."""
    which = "relative to base" if view.state.rel else "absolute"
    values = [f"{m} · {view.spec.label} ({which})" for m in view.models]
    if view.instance_rows:
        fields = [c[0] for c in table.INSTANCE_COLUMNS]
        header = ["instance", *(c[3] for c in table.INSTANCE_COLUMNS), *values]
        rows = []
        for r in view.order.tolist():
            cells = instance_cells(table, r, class_names, full=True)
            rows.append([r, *(cells[f] for f in fields), *view.shown[:, r].tolist()])
    else:
        header = [{"classes": "class", "tasks": "task"}.get(view.state.mode, str(view.state.attribute)),
                  "instances", *values]
        rows = [[view.names[r], int(view.counts[r]), *view.shown[:, r].tolist()] for r in view.order.tolist()]
        if view.tests is not None:
            extra, cells = test_columns(view.tests, view.models, view.order)
            header += extra
            rows = [row + more for row, more in zip(rows, cells)]
    return header, rows
