"""The Pareto front of models on two metrics, honouring each metric's direction."""
from __future__ import annotations

from itertools import groupby
from typing import Iterable

from cnc.experiment.forest import is_missing

Point = tuple[str, "float | None", "float | None"]


def pareto_front(points: Iterable[Point], x_higher_is_better: bool, y_higher_is_better: bool) -> list[str]:
    """Ids of the non-dominated points, ordered by x ascending.

    A point is dominated when another is at least as good on both axes and strictly better on one;
    identical points are all kept. Points missing x or y take no part.
    """
    sx = 1.0 if x_higher_is_better else -1.0
    sy = 1.0 if y_higher_is_better else -1.0
    pts = [(sx * x, sy * y, mid, x) for mid, x, y in points if not (is_missing(x) or is_missing(y))]
    pts.sort(key=lambda p: -p[0])  # best x first
    front: list[tuple[float, str]] = []
    best_y = float("-inf")
    for _, group in groupby(pts, key=lambda p: p[0]):
        group = list(group)
        top = max(p[1] for p in group)
        if top > best_y:
            front.extend((p[3], p[2]) for p in group if p[1] == top)
            best_y = top
    front.sort(key=lambda f: f[0])
    return [mid for _, mid in front]


def step_shape(x_higher_is_better: bool) -> str:
    """Plotly line shape tracing the attainable boundary between front points sorted by x:
    with lower-is-better x the best y for a budget holds until the next point ('hv')."""
    return "vh" if x_higher_is_better else "hv"
