"""Names of Selection Details' variables, as a person would title a chart legend.

Why: a variable's name is the axis title, the legend title and the Refine Comparison entry. It
should be a short phrase ("pruning", "first step", "base model and first step"), never a
concatenation of internal parts ("magnitude prune amount and base", "operation at step 2"). See
docs/comparability.md, "Naming a variable".

- Variables whose values are all steps of one family of operations ("magnitude prune" and
  "gradient prune", "Pruning" and "Selective Pruning") are named by its activity: "pruning".
- Steps at one position are named by it, counted from the selection's common start: "first
  step", "second step"; root models (several roots) are the "base model".
- Otherwise the base model and at most two activities ("base model and pruning"), else the
  positions ("first three steps").

Pure Python, no Dash imports.
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable

from cnc.analysis.recipe_text import operation_name

if TYPE_CHECKING:
    from cnc.analysis.explain_search import Tree
    from cnc.analysis.explain_variable import Column

BASE_LABEL = "base model"
_ORDINALS = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
_COUNTS = ("", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def gerund(word: str) -> str:
    """'prune' -> 'pruning', 'train' -> 'training', 'pruning' stays: the activity a family names."""
    if word.endswith("ing"):
        return word
    if word.endswith("e") and not word.endswith("ee"):
        return word[:-1] + "ing"
    return word + "ing"


def ordinal(k: int) -> str:
    return _ORDINALS[k] if 0 < k < len(_ORDINALS) else f"{k}th"


def position_name(depths: set[int]) -> str:
    """Where a variable's steps are, counted from the common start (depth 0 = a root model)."""
    steps = sorted(d for d in depths if d > 0)
    if 0 in depths:
        return BASE_LABEL if not steps else f"{BASE_LABEL} and {position_name(set(steps))}"
    if not steps:
        return "step"
    lo, hi = steps[0], steps[-1]
    if lo == hi:
        return f"{ordinal(lo)} step"
    if steps != list(range(lo, hi + 1)):
        return "steps " + ", ".join(map(str, steps[:-1])) + f" and {hi}"
    if lo == 1 and hi < len(_COUNTS):
        return f"first {_COUNTS[hi]} steps"
    if hi - lo == 1:
        return f"{ordinal(lo)} and {ordinal(hi)} steps"
    return f"steps {lo}–{hi}"


def steps_name(tree: Tree, nodes: Iterable[int]) -> str:
    """The name of a variable whose values are the steps at these tree nodes: one family of
    operations reads as its activity ("pruning"); steps at one position as that position ("second
    step"); else the base model and at most two activities in applied order ("base model and
    pruning", "restoring and retraining"); else their positions ("first three steps")."""
    nodes = set(nodes)
    depths = {tree.depth[i] for i in nodes}
    at: dict[str, list[int]] = {}  # activity -> depths of its steps
    for i in sorted(nodes):
        if tree.depth[i] > 0:
            at.setdefault(_activity(tree.plain[i]), []).append(tree.depth[i])
    activities = sorted(at, key=lambda a: sum(at[a]) / len(at[a]))  # in applied order, on average
    if 0 not in depths and len(activities) == 1 and activities[0]:
        return activities[0]
    if len(depths) == 1:
        return position_name(depths)
    parts = ([BASE_LABEL] if 0 in depths else []) + activities
    if len(parts) <= 2 and all(parts):
        return " and ".join(parts)
    return position_name(depths)


@lru_cache(maxsize=1024)
def _activity(operation: str) -> str:
    """What an operation does, by its last word: "magnitude prune" -> "pruning"; "" when that
    word is not a plain word."""
    words = operation_name(operation).split()
    word = words[-1].lower() if words else ""
    return gerund(word) if word.replace("-", "").isalpha() else ""


def column_nodes(col: Column) -> set[int]:
    return {i for n in col.nodes.values() for i in n}


def qualify_labels(columns: list[Column]) -> None:
    """Labels that collide get their operation ("magnitude prune amount"), then the step they
    describe ("calibrate at step 2", "P at steps 2–3"), then, failing all, a number in parentheses."""
    counts = Counter(c.label for c in columns)
    for c in columns:
        if counts[c.label] > 1 and c.kind == "parameter" and c.op and c.tree is not None:
            c.label = f"{c.tree.readable[c.op]} {c.param}"
    counts = Counter(c.label for c in columns)
    for c in columns:
        if counts[c.label] > 1 and c.tree is not None and c.nodes:
            c.label = f"{c.label} {_where(c)}"
    number_duplicates(columns)


def number_duplicates(columns: list[Column]) -> None:
    """The second and later columns with one label get "(2)", "(3)"."""
    counts = Counter(c.label for c in columns)
    seen: Counter = Counter()
    for c in columns:
        if counts[c.label] > 1:
            seen[c.label] += 1
            if seen[c.label] > 1:
                c.label = f"{c.label} ({seen[c.label]})"


def _where(col: Column) -> str:
    """Where the column's steps are: "at step 2", or "at steps 2–3" when its models differ."""
    assert col.tree is not None
    depths = {col.tree.depth[i] for i in column_nodes(col)}
    lo, hi = min(depths), max(depths)
    return f"at step {lo}" if lo == hi else f"at steps {lo}–{hi}"
