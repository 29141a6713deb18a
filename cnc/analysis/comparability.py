"""Explain how a selection of models differs with a few chartable variables.

Why: Selection Details charts a metric as a grouped bar chart (x = first variable, colour = second),
so it needs the cheapest set of "variables" — parameter values (cost 1), presence of an operation
(2), the type of operation (5), a merged sequence (6) — whose values tell the selected models apart
the way a practitioner thinks of them (prune → quantize vs prune → calibrate → quantize differ by
"calibrate: no / yes"). The specification, with a worked example, is docs/comparability.md.

How: `explain_search` finds the cheapest plan, `explain_columns` turns it into variables over the
selected models and simplifies them; this module picks between the cheapest plan and a plain
operation-type plan, applies the small-selection rule (one bar per model when no structured chart
groups anything) and narrows explanations as the user asks in Refine Comparison (`refine`).

Pure Python, no Dash imports.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

from cnc.analysis.explain_columns import (
    OPERATION_LABEL,
    Column,
    columns_from_search,
    combined_text,
    drop_constant,
    restrict,
    simplify,
)
from cnc.analysis.explain_search import COST, NONE, Search, Tree
from cnc.analysis.recipe_text import STEP_JOIN, recipe_text
from cnc.analysis.variable_names import BASE_LABEL, qualify_labels
from cnc.experiment.forest import Experiment

__all__ = ["BASE_LABEL", "COST", "NONE", "OPERATION_LABEL", "RECIPE_LABEL", "Explanation", "Variable",
           "explain_selection", "refine"]

RECIPE_LABEL = "recipe"
_PLAIN_PLAN_UP_TO = 4  # beyond this many variables the chart needs refinement whichever plan wins
MAX_RECIPE_BARS = 6  # the small-selection rule's "handful of models"


@dataclass(frozen=True)
class Variable:
    """One axis of difference among the selected models."""

    kind: str  # "parameter" | "presence" | "operation" | "sequence"
    label: str  # e.g. "amount", "fine-tune", "operation", "base", "fine-tune → magnitude prune", "recipe"
    values: tuple  # distinct values over the selection: "none" first, numbers ascending, chains by length
    texts: tuple[str, ...] = ()  # how each value reads, parallel to `values` (empty: hand-built)

    @property
    def cost(self) -> int:
        return COST[self.kind]

    def text(self, value: Any) -> str | None:
        """How `value` reads, when the explanation says so."""
        return self._texts.get(value) if self.texts else None

    @cached_property
    def _texts(self) -> dict[Any, str]:
        return dict(zip(self.values, self.texts))


@dataclass
class Explanation:
    """The variables that explain a selection, and each selected model's value for each one."""

    variables: list[Variable]  # ordered; first = x axis, second = colour; constant ones dropped
    rows: dict[str, tuple]  # model id -> one value per variable
    needs_refinement: bool  # True when more than two variables remain after simplification
    recipes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # The unsimplified, non-constant columns, so refine(keep_models=...) can simplify afresh.
    raw: list[Column] = field(default_factory=list, repr=False, compare=False)
    cost: int = 0  # total cost of the cheapest plan the search found (docs/comparability.md)
    start: str = ""  # the recipe every selected model shares (their closest common ancestor's)
    by_recipe: bool = False  # the small-selection rule chose one bar per model

    def nbytes(self) -> int:
        """Memory estimate for the memo's byte budget (cnc/memo.py), fitted to tracemalloc at 10-1,000
        models: walking the rows and columns cost more than building a 1,000-model explanation."""
        tree = self.raw[0].tree if self.raw else None
        return (2048 + len(self.rows) * (200 + 16 * len(self.variables) + 90 * len(self.raw))
                + 300 * (len(tree.ids) if tree is not None else 0))

    def recipe(self, model_id: str) -> str:
        """The model's readable recipe from the search start (the selection's closest common
        ancestor, or its root model first when several roots), e.g. "magnitude prune 0.5 →
        fine-tune 3"; "none" for the common ancestor itself."""
        if model_id in self.recipes:
            return self.recipes[model_id]
        if model_id not in self.rows:
            raise KeyError(model_id)
        return combined_text(_columns_of(self), model_id)


def explain_selection(experiment: Experiment, model_ids: Iterable[str]) -> Explanation:
    """Find the cheapest few variables that tell the selected models apart.

    Unknown ids are ignored (stale URL selections are reported by the UI, not here); duplicates
    count once. Fewer than two models give no variables.
    """
    selected = list(dict.fromkeys(m for m in model_ids if m in experiment.models))
    if len(selected) < 2:
        return Explanation([], {m: () for m in selected}, False, recipes={m: NONE for m in selected})
    tree = Tree(experiment, selected)
    search = Search(tree)
    cost = search.solve()
    final, columns = _columns_for(tree, search.plan(), selected)
    if any(c.kind == "sequence" for c in final) and len(final) <= _PLAIN_PLAN_UP_TO:
        # Plain operation-type variables read better than merged sequences: take them when they
        # need no more variables (docs/comparability.md, "Choosing between plans").
        plain = Search(tree, presence_branches=False)
        plain.solve()
        alt_final, alt_columns = _columns_for(tree, plain.plan(), selected)
        if len(alt_final) <= len(final) and _sequences(alt_final) < _sequences(final):
            final, columns = alt_final, alt_columns
    start = "" if tree.virtual_root else recipe_text(experiment, tree.ids[0])
    expl = _explanation(final, selected, tree.recipes(experiment, selected), columns, cost=cost, start=start)
    if reads_better_as_recipes(expl):
        expl = _flattened(expl, selected)
        expl.by_recipe = True
    return expl


def reads_better_as_recipes(explanation: Explanation) -> bool:
    """The small-selection rule (docs/comparability.md, "Small selections"): one bar per model,
    labelled by its recipe, is one sequence variable (cost 6). It wins over a structured chart of
    two or more variables that costs more and groups nothing:

    - it needs as many variables as it takes to tell every bar apart one by one (n - 1 for n
      models), whatever the size; or
    - a handful of models (at most MAX_RECIPE_BARS) need more variables than a chart can show
      (the structured chart would hide models behind Refine Comparison), or two variables that
      group nothing a person cares about: most bars stand alone on the x axis (their x value is
      no other model's), or every bar has a colour of its own.
    """
    n = len(explanation.rows)
    variables = explanation.variables
    if n < 2 or len(variables) < 2 or sum(v.cost for v in variables) <= COST["sequence"]:
        return False  # cheap charts, e.g. two presences for two siblings, stay structured
    if len(variables) >= n - 1:
        return True
    if n > MAX_RECIPE_BARS:
        return False
    return len(variables) > 2 or 2 * _alone(explanation, 0) > n or _alone(explanation, 1) == n


def _alone(explanation: Explanation, k: int) -> int:
    """Models whose value of the k-th variable (0: x axis, 1: colour) no other selected model has."""
    counts = Counter(row[k] for row in explanation.rows.values())
    return sum(1 for row in explanation.rows.values() if counts[row[k]] == 1)


def _columns_for(tree: Tree, plan, selected: list[str]) -> tuple[list[Column], list[Column]]:
    """(simplified, unsimplified) non-constant columns of a plan."""
    columns = drop_constant(columns_from_search(tree, plan, selected))
    qualify_labels(columns)
    return simplify(columns), columns


def _sequences(columns: list[Column]) -> int:
    return sum(c.kind == "sequence" for c in columns)


def refine(
    explanation: Explanation,
    keep_variables: list[int] | None = None,
    keep_models: list[str] | None = None,
    flatten: bool = False,
) -> Explanation:
    """Narrow an explanation to something chartable, as the user picks in Refine Comparison.

    - `keep_models`: only these models; variables constant over them drop and the rest is
      simplified afresh (a subset often needs fewer variables).
    - `keep_variables`: indexes into `explanation.variables`; the other variables are held fixed
      at their most common combination of values (ties: the earliest values, so "none" wins), and
      only the models with that combination remain.
    - `flatten`: one "recipe" variable (kind "sequence"), one value per model: its recipe. Takes
      precedence over `keep_variables`.
    """
    models = list(explanation.rows)
    if keep_models is not None:
        wanted = set(keep_models)
        models = [m for m in models if m in wanted]
    if flatten:
        return _flattened(explanation, models)
    if keep_variables is not None:
        columns = restrict(_columns_of(explanation), models)
        columns, models = _fix_others(columns, keep_variables, models)
        columns = drop_constant(restrict(columns, models))
        return _explanation(columns, models, explanation.recipes, columns, start=explanation.start)
    if keep_models is not None:
        raw = explanation.raw or _columns_of(explanation)
        columns = drop_constant(restrict(raw, models))
        return _explanation(simplify(columns), models, explanation.recipes, columns, start=explanation.start)
    return _explanation(_columns_of(explanation), models, explanation.recipes, explanation.raw,
                        start=explanation.start)


# ---------------------------------------------------------------- explanations

def _explanation(columns: list[Column], models: list[str], recipes: dict[str, str], raw: list[Column],
                 cost: int = 0, start: str = "") -> Explanation:
    variables = []
    for c in columns:
        values = c.distinct()
        variables.append(Variable(c.kind, c.label, values, tuple(c.text(v) for v in values)))
    per_column = [[c.values[m] for m in models] for c in columns]
    rows = dict(zip(models, zip(*per_column))) if columns else dict.fromkeys(models, ())
    return Explanation(
        variables=variables,
        rows=rows,
        needs_refinement=len(variables) > 2,
        recipes={m: recipes[m] for m in models if m in recipes},
        raw=raw,
        cost=cost,
        start=start,
    )


def _columns_of(explanation: Explanation) -> list[Column]:
    """Columns of the explanation's current variables (works for hand-built explanations too)."""
    if explanation.raw and not explanation.by_recipe:
        by_label = {c.label: c for c in explanation.raw}
    else:
        by_label = {}
    out = []
    for k, var in enumerate(explanation.variables):
        values = {m: row[k] for m, row in explanation.rows.items()}
        keys: dict[Any, tuple] = {v: (r,) for r, v in enumerate(var.values)}
        for v in set(values.values()) - keys.keys():
            keys[v] = (len(keys),)
        texts = dict(zip(var.values, var.texts))
        source = by_label.get(var.label)
        col = Column(var.kind, var.label, values, keys, texts=texts)
        if source is not None:
            col.op, col.param, col.owner, col.tree = source.op, source.param, source.owner, source.tree
        out.append(col)
    return out


def _fix_others(
    columns: list[Column], keep: list[int], models: list[str]
) -> tuple[list[Column], list[str]]:
    """Hold the variables not kept at their most common joint value; keep the models that have it."""
    keep = [k for k in dict.fromkeys(keep) if 0 <= k < len(columns)]
    others = [c for k, c in enumerate(columns) if k not in keep]
    if others and models:
        combos = Counter(tuple(c.values[m] for c in others) for m in models)
        top = max(combos.values())

        def earliest(combo: tuple) -> tuple:
            return tuple(c.keys[v] for c, v in zip(others, combo))

        chosen = min((c for c, n in combos.items() if n == top), key=earliest)
        models = [m for m in models if tuple(c.values[m] for c in others) == chosen]
    return [columns[k] for k in keep], models


def _flattened(explanation: Explanation, models: list[str]) -> Explanation:
    """One "recipe" variable; identical recipes get the model id so each model keeps its own bar.
    Bars are sorted by recipe length, then as the structured variables order them."""
    labels = {m: explanation.recipe(m) for m in models}
    counts = Counter(labels.values())
    values = {m: (v if counts[v] == 1 else f"{v} [{m}]") for m, v in labels.items()}
    current = _columns_of(explanation)

    def key(m: str) -> tuple:
        if values[m] == NONE:
            return (0,)
        return (1, values[m].count(STEP_JOIN), tuple(c.keys[c.values[m]] for c in current), values[m])

    keys = {values[m]: key(m) for m in models}
    column = Column("sequence", RECIPE_LABEL, values, keys)
    columns = drop_constant([column])
    out = _explanation(columns, models, explanation.recipes, explanation.raw, cost=explanation.cost,
                       start=explanation.start)
    out.by_recipe = explanation.by_recipe
    return out
