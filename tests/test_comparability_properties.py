"""Properties of Selection Details' explanations on small random forests (docs/comparability.md).

1. Optimality: an exhaustive recursion over the same moves as the search (written here
   independently, without memo or pruning) finds no cheaper plan than `explain_selection`, and the
   chart never shows more variables than that cheapest plan has.
2. Truth: every value shown for a model describes steps of that model's recipe, in applied order,
   with its parameter values.
"""
from __future__ import annotations

import re
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from cnc.analysis.comparability import BASE_LABEL, COST, NONE, explain_selection
from cnc.analysis.recipe_text import STEP_JOIN, model_name, ordinal_name, step_text
from cnc.experiment.forest import Experiment, parse_experiment
from cnc.ui.selection_chart import value_text

OPS = ["P", "Q", "R"]


@st.composite
def forests(draw) -> Experiment:
    n = draw(st.integers(2, 11))
    models = [{"id": "m0", "base": None}]
    for i in range(1, n):
        base = draw(st.sampled_from([m["id"] for m in models] + [None] * (i < 3)))
        model = {"id": f"m{i}", "base": base}
        if base:
            params = {}
            if draw(st.booleans()):
                params["x"] = draw(st.sampled_from([1, 2]))
            model["operation"] = {"name": draw(st.sampled_from(OPS)), "parameters": params}
        models.append(model)
    return parse_experiment({"models": models})


@st.composite
def selections(draw):
    exp = draw(forests())
    ids = list(exp.models)
    return exp, draw(st.lists(st.sampled_from(ids), min_size=2, max_size=min(7, len(ids)), unique=True))


# ---------------------------------------------------------------- brute force

def _start(exp: Experiment, selected: list[str]) -> tuple[list[str], set[str]]:
    """The search start (tops) and the ancestor closure below it."""
    paths = [exp.path_to_root(m) for m in selected]
    if len({p[0] for p in paths}) > 1:
        tops = [r for r in exp.roots if r in {p[0] for p in paths}]
        return tops, {m for p in paths for m in p}
    k = 0
    while all(len(p) > k and p[k] == paths[0][k] for p in paths):
        k += 1
    return [paths[0][k - 1]], {m for p in paths for m in p[k - 1:]}


def _name(exp: Experiment, mid: str) -> tuple[str, int]:
    """Operation and how many times it was applied on the path so far (the k-th is its own)."""
    op = exp.models[mid].operation.name
    k = sum(1 for a in exp.path_to_root(mid)[1:] if exp.models[a].operation.name == op)
    return op, k


def _varies(values: list) -> bool:
    return len(set(values)) > 1


def _step_cost(exp, selected, members: list[str], kind: str) -> int:
    """True cost of one move: its variables that are not constant over the selection."""
    under = {}
    for m in selected:
        for a in exp.path_to_root(m):
            if a in members:
                under[m] = a
    by_op: dict[tuple, list[str]] = {}  # parameters count when they vary within one operation
    for g in members:
        by_op.setdefault(_name(exp, g), []).append(g)
    varying = {p for group in by_op.values() for g in group for p in exp.models[g].operation.parameters
               if _varies([exp.models[h].operation.parameters.get(p) for h in group])}
    cost = 0
    if kind == "operation":
        cost += COST["operation"] * _varies([_name(exp, under[m]) if m in under else None for m in selected])
    else:
        cost += COST["presence"] * _varies([m in under for m in selected])
    for p in varying:
        vals = [exp.models[under[m]].operation.parameters.get(p) if m in under else None for m in selected]
        cost += COST["parameter"] * _varies(vals)
    return cost


def brute_force_cost(exp: Experiment, selected: list[str]) -> int:
    tops, closure = _start(exp, selected)

    def children(members) -> frozenset:
        return frozenset(c for g in members for c in exp.children[g] if c in closure)

    def best(pending: frozenset) -> int:
        if not pending:
            return 0
        groups: dict[tuple, list[str]] = {}
        for mid in sorted(pending):
            groups.setdefault(_name(exp, mid), []).append(mid)
        moves = []
        if len(groups) > 1:
            moves.append((list(pending), "operation"))
        moves += [(g, "presence") for g in groups.values()]
        return min(_step_cost(exp, selected, g, kind) + best((pending - set(g)) | children(g))
                   for g, kind in moves)

    return best(children(tops))


@settings(max_examples=150, deadline=None, database=None)
@given(selections())
def test_search_finds_the_cheapest_plan(case):
    exp, selected = case
    expl = explain_selection(exp, selected)
    brute = brute_force_cost(exp, selected)
    assert expl.cost == brute
    # never more variables than the cheapest plan has (its non-constant variables at least one per
    # unit of 6 cost; a plan costing c has at most c variables)
    assert len(expl.variables) <= max(brute, 1) + 1  # + 1: the base variable of several roots


# ---------------------------------------------------------------- truth

def _presence_steps(label: str, path: list[str]) -> tuple[str, list[str]]:
    """A presence label's step name and the steps of `path` it may mean: "P at step 2" or
    "P at steps 2–3" (two presences of one operation) say where it is; a plain "P" may be anywhere."""
    match = re.fullmatch(r"(.*) at steps? (\d+)(?:–(\d+))?", label)
    if match is None:
        return label, path
    lo = int(match[2])
    return match[1], path[lo - 1:int(match[3] or lo)]


def _step_texts(exp: Experiment, mid: str) -> set[str]:
    """Every way the step that made `mid` may read: its name with any subset of its parameters
    (a root model of several reads as its label)."""
    op = exp.models[mid].operation
    if op is None:
        return {model_name(exp.models[mid])}
    keys = list(op.parameters)
    names = {op.name, ordinal_name(op.name, _name(exp, mid)[1])}
    return {step_text(n, op.parameters, shown) for n in names
            for r in range(len(keys) + 1) for shown in combinations(keys, r)}


def _is_ordered_part(exp: Experiment, path: list[str], text: str) -> bool:
    """`text` reads as steps of `path`, in the order they were applied."""
    rest = iter(path)
    return all(any(part in _step_texts(exp, mid) for mid in rest) for part in text.split(STEP_JOIN))


@settings(max_examples=150, deadline=None, database=None)
@given(selections())
def test_every_shown_value_is_true_and_ordered(case):
    exp, selected = case
    expl = explain_selection(exp, selected)
    tops, _ = _start(exp, selected)
    for m in selected:
        full = exp.path_to_root(m)
        top = next(t for t in tops if t in full)
        path = full[full.index(top) + 1:]
        expected = STEP_JOIN.join(step_text(exp.models[a].operation.name, exp.models[a].operation.parameters)
                                  for a in path)
        if len(tops) > 1:
            expected = STEP_JOIN.join(x for x in (model_name(exp.models[top]), expected) if x)
        assert expl.recipe(m) == (expected or NONE)
        for var, value in zip(expl.variables, expl.rows[m]):
            text = value_text(var, value)
            assert "#" not in text and " + " not in text and " & " not in text
            if var.label == "recipe":
                assert text.split(" [")[0] == expected or (text == "start model (no operation)" and not expected)
            elif var.kind == "parameter" and value != NONE:
                assert any(exp.models[a].operation.parameters.get(p) == value
                           for a in path for p in exp.models[a].operation.parameters), (m, var, value)
            elif var.kind == "presence" and value != NONE:
                name, steps = _presence_steps(var.label, path)
                assert any(name in _step_texts(exp, a) for a in steps), (m, var)
            elif var.label == BASE_LABEL:
                assert text == model_name(exp.models[top])
            elif value != NONE and var.kind in ("operation", "sequence"):
                steps = [top] + path if len(tops) > 1 else path
                assert _is_ordered_part(exp, steps, text), (m, var.label, text, [exp.models[a].operation for a in path])
