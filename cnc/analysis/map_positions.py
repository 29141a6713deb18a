"""Positions of the Model Map, computed in Python so the map is stable and fast.

Two modes:
- "step": column = number of operations from the root;
- "op": each operation type (its k-th recurrence on a path counts as its own type) gets a column,
  columns ordered as the operations occur along paths, so all "quantize" models line up.

Rows keep each subtree together: a leaf takes the next free row and a parent sits on the row of
its first child. Because columns strictly increase along every edge, two models can share a row
only when one descends from the other, so no two nodes ever overlap. Layouts are memoized per
experiment object (an experiment is immutable once loaded).
"""
from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass
from functools import wraps
from typing import Callable, TypeVar

from cnc.experiment.forest import Experiment

MODES = ("step", "op")
ROOT_COLUMN = "base"
T = TypeVar("T")


def per_experiment(fn: Callable[..., T]) -> Callable[..., T]:
    """Memoize `fn(exp, *args)` for as long as `exp` lives (experiments are not hashable)."""
    caches: dict[int, dict] = {}

    @wraps(fn)
    def wrapper(exp: Experiment, *args):
        key = id(exp)
        cache = caches.get(key)
        if cache is None:
            cache = caches[key] = {}
            weakref.finalize(exp, caches.pop, key, None)
        if args not in cache:
            cache[args] = fn(exp, *args)
        return cache[args]

    wrapper.cache_clear = caches.clear  # type: ignore[attr-defined]
    return wrapper


@dataclass(frozen=True)
class ForestLayout:
    """Grid coordinates (column, row) per model id, and the label of every column."""

    positions: dict[str, tuple[int, float]]
    columns: list[str]
    n_rows: float


@per_experiment
def forest_layout(exp: Experiment, mode: str = "step") -> ForestLayout:
    if mode not in MODES:
        raise ValueError(f"unknown layout mode {mode!r}; use one of {MODES}")
    if mode == "step":
        cols = depths(exp)
        depth = max(cols.values(), default=0)
        labels = [ROOT_COLUMN] + [f"step {i}" for i in range(1, depth + 1)]
    else:
        cols, labels = _operation_columns(exp)
    rows, n_rows = _rows(exp)
    return ForestLayout({mid: (cols[mid], rows[mid]) for mid in exp.models}, labels, n_rows)


@per_experiment
def _preorder(exp: Experiment) -> list[str]:
    """Parents before children, iteratively (deep chains must not hit the recursion limit).
    Memoized: callers must not modify the list."""
    out: list[str] = []
    stack = list(reversed(exp.roots))
    while stack:
        cur = stack.pop()
        out.append(cur)
        stack.extend(reversed(exp.children[cur]))
    return out


@per_experiment
def depths(exp: Experiment) -> dict[str, int]:
    """Operations from the root, per model (one pass, not a walk to the root per model)."""
    out: dict[str, int] = {}
    for mid in _preorder(exp):
        base = exp.models[mid].base
        out[mid] = 0 if base is None else out[base] + 1
    return out


@per_experiment
def _rows(exp: Experiment, gap: float = 0.5) -> tuple[dict[str, float], float]:
    """Rows of every model (the same in every mode). Memoized: callers must not modify them."""
    rows: dict[str, float] = {}
    next_row = 0.0
    for root in exp.roots:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            kids = exp.children[node]
            if not kids:
                rows[node] = next_row
                next_row += 1
            elif expanded:
                rows[node] = rows[kids[0]]
            else:
                stack.append((node, True))
                stack.extend((k, False) for k in reversed(kids))
        next_row += gap
    return rows, max(next_row - gap, 0.0)


def operation_keys(exp: Experiment) -> dict[str, tuple[str, int] | None]:
    """Per model, (operation name, how many times it already occurred above on the path)."""
    keys: dict[str, tuple[str, int] | None] = {}
    seen: dict[str, dict[str, int]] = {}
    for mid in _preorder(exp):
        model = exp.models[mid]
        counts = dict(seen[model.base]) if model.base is not None else {}
        if model.operation is None:
            keys[mid] = None
        else:
            name = model.operation.name
            keys[mid] = (name, counts.get(name, 0))
            counts[name] = counts.get(name, 0) + 1
        seen[mid] = counts
    return keys


def _operation_columns(exp: Experiment) -> tuple[dict[str, int], list[str]]:
    keys = operation_keys(exp)
    order = _order_keys(exp, keys)
    index = {k: i + 1 for i, k in enumerate(order)}
    cols: dict[str, int] = {}
    for mid in _preorder(exp):
        key, base = keys[mid], exp.models[mid].base
        col = 0 if key is None else index[key]
        if base is not None:  # a conflicting order elsewhere must not put a child left of its parent
            col = max(col, cols[base] + 1)
        cols[mid] = col
    labels = [ROOT_COLUMN] + [name if k == 0 else f"{name} #{k + 1}" for name, k in order]
    labels += [""] * (max(cols.values(), default=0) + 1 - len(labels))
    return cols, labels


def _order_keys(exp: Experiment, keys: dict) -> list[tuple[str, int]]:
    """Topological order of the "comes before on some path" relation; ties and cycles are
    broken by mean depth, then first appearance."""
    after: dict[tuple, set] = defaultdict(set)
    indeg: dict[tuple, int] = {}
    depth_sum: dict[tuple, float] = defaultdict(float)
    count: dict[tuple, int] = defaultdict(int)
    first: dict[tuple, int] = {}
    depth = depths(exp)
    for i, mid in enumerate(_preorder(exp)):
        key = keys[mid]
        if key is None:
            continue
        indeg.setdefault(key, 0)
        first.setdefault(key, i)
        depth_sum[key] += depth[mid]
        count[key] += 1
        parent = keys.get(exp.models[mid].base) if exp.models[mid].base is not None else None
        if parent is not None and parent != key and key not in after[parent]:
            after[parent].add(key)
            indeg[key] = indeg.get(key, 0) + 1
    rank = {k: (depth_sum[k] / count[k], first[k]) for k in indeg}
    order: list[tuple[str, int]] = []
    remaining = set(indeg)
    while remaining:
        ready = [k for k in remaining if indeg[k] == 0] or list(remaining)  # cycle: take the shallowest
        key = min(ready, key=rank.__getitem__)
        order.append(key)
        remaining.discard(key)
        for nxt in after[key]:
            indeg[nxt] -= 1
    return order
