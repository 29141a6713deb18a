"""Explain how a selection of models differs with a few chartable variables (DESIGN.md section 4).

Why: Selection Details charts a metric as a grouped bar chart (x = first variable, colour = second),
so it needs the cheapest set of "variables" — parameter values (cost 1), presence of an operation
(2), the type of operation (5), a merged sequence (6) — whose values tell the selected models apart
the way a practitioner thinks of them (Prune→Quantize vs Prune→Calibrate→Quantize differ by
"calibrate = none / calibrate").

How:
1. `_Tree` indexes the ancestor closure of the selection below its search start: the closest
   common ancestor, or a virtual root above several root models (then a "base" variable, kind
   "operation", tells the roots apart by id — choosing a base model is categorical like choosing an
   operation, and it is forced, so it never changes which explanation wins). The k-th recurrence of
   an operation on a path is its own operation ("magnitude prune #2").
2. `_Search` walks down with a frontier of pending models. Which models are already "in the table"
   is fully determined by the pending set (they are the closure minus the pending subtrees), so the
   remaining cost depends on the pending set alone: a memoized DP over pending sets (bitmasks)
   replaces the reference's exhaustive recursion, with branch-and-bound on cost and an expansion
   budget that degrades to the always-available operation-type step on pathological inputs.
   Costs are exact over the selection: a variable that will be constant over the selected models
   (e.g. a presence every selected model shares) costs nothing.
3. Columns are built for the selected models only, constant ones dropped, and simplified:
   redundant variables always (a presence implied by its own parameter, presences that always go
   together); when more than two remain, cumulative presence chains, variables implied by another,
   then neighbours with few joint values. More than two left → `needs_refinement`, see `refine`.

Pure Python, no Dash imports.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from cnc.experiment import Experiment

NONE = "none"  # the value of a variable for a model that lacks the operation / parameter
COST = {"parameter": 1, "presence": 2, "operation": 5, "sequence": 6}
BASE_LABEL = "base"
OPERATION_LABEL = "operation"
RECIPE_LABEL = "recipe"

_MAX_PRESENCE_GROUPS = 3  # per-operation presence branches only when this few distinct operations
_MAX_JOINT_VALUES = 6  # neighbouring variables merge when their joint values are this few
_EXPANSION_BUDGET = 4000  # pending sets explored with all branches before falling back
_CHAIN_JOIN = " + "
_PART_JOIN = " & "
_RECIPE_JOIN = " → "


# ---------------------------------------------------------------- public API

@dataclass(frozen=True)
class Variable:
    """One axis of difference among the selected models."""

    kind: str  # "parameter" | "presence" | "operation" | "sequence"
    label: str  # e.g. "amount", "fine-tune", "operation", "base", "prune + fine-tune", "recipe"
    values: tuple  # distinct values over the selection: "none" first, numbers ascending, chains by length

    @property
    def cost(self) -> int:
        return COST[self.kind]


@dataclass
class Explanation:
    """The variables that explain a selection, and each selected model's value for each one."""

    variables: list[Variable]  # ordered; first = x axis, second = colour; constant ones dropped
    rows: dict[str, tuple]  # model id -> one value per variable
    needs_refinement: bool  # True when more than two variables remain after simplification
    recipes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # The unsimplified, non-constant columns, so refine(keep_models=...) can simplify afresh.
    raw: list[_Column] = field(default_factory=list, repr=False, compare=False)

    def recipe(self, model_id: str) -> str:
        """The model's operation sequence from the search start (the selection's closest common
        ancestor, or its root id first when several roots), e.g. "prune(amount=0.5) → fine-tune";
        "none" for the common ancestor itself."""
        if model_id in self.recipes:
            return self.recipes[model_id]
        if model_id not in self.rows:
            raise KeyError(model_id)
        return _combined_value(_columns_of(self), model_id)


def explain_selection(experiment: Experiment, model_ids: Iterable[str]) -> Explanation:
    """Find the cheapest few variables that tell the selected models apart.

    Unknown ids are ignored (stale URL selections are reported by the UI, not here); duplicates
    count once. Fewer than two models give no variables.
    """
    selected = list(dict.fromkeys(m for m in model_ids if m in experiment.models))
    if len(selected) < 2:
        return Explanation([], {m: () for m in selected}, False, recipes={m: NONE for m in selected})
    tree = _Tree(experiment, selected)
    search = _Search(tree)
    search.solve()
    columns = _drop_constant(_columns_from_search(tree, search.plan(), selected))
    _qualify_labels(columns)
    final = _simplify(columns)
    return _explanation(final, selected, tree.recipes(experiment, selected), columns)


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
    - `flatten`: one "recipe" variable (kind "sequence"), one value per model: its operation
      sequence. Takes precedence over `keep_variables`.
    """
    models = list(explanation.rows)
    if keep_models is not None:
        wanted = set(keep_models)
        models = [m for m in models if m in wanted]
    if flatten:
        return _flattened(explanation, models)
    if keep_variables is not None:
        columns = _restrict(_columns_of(explanation), models)
        columns, models = _fix_others(columns, keep_variables, models)
        columns = _drop_constant(_restrict(columns, models))
        return _explanation(columns, models, explanation.recipes, columns)
    if keep_models is not None:
        raw = explanation.raw or _columns_of(explanation)
        columns = _drop_constant(_restrict(raw, models))
        return _explanation(_simplify(columns), models, explanation.recipes, columns)
    return _explanation(_columns_of(explanation), models, explanation.recipes, explanation.raw)


# ---------------------------------------------------------------- the ancestor closure

def _freeze(value: Any) -> Any:
    """Parameter values become hashable (YAML lists/dicts) and missing ones become NONE."""
    if value is None:
        return NONE
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(v) for v in value)
    return value


def _bits(mask: int) -> Iterator[int]:
    """Indexes of the set bits of `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _Tree:
    """The ancestor closure of the selection below the search start, indexed for bitmask search.

    Nodes are numbered breadth-first in the experiment's child order, so "first appearance" is a
    fair proxy for pipeline order when ordering operation names.
    """

    def __init__(self, experiment: Experiment, selected: list[str]) -> None:
        paths = [experiment.path_to_root(m) for m in selected]
        used = {p[0] for p in paths}
        roots = [r for r in experiment.roots if r in used]  # file order, whatever the selection order
        self.virtual_root = len(roots) > 1
        if self.virtual_root:
            tops, skip = roots, 0
        else:
            skip = _common_prefix_length(paths) - 1
            tops = [paths[0][skip]]  # the closest common ancestor
        closure = {mid for p in paths for mid in p[skip:]}
        self._number(experiment, tops, closure)
        self.table0 = [self.index[t] for t in tops]  # in the table before the search starts
        self.start = 0  # the first pending set
        for t in self.table0:
            self.start |= self.child_mask[t]
        self._count_selected(selected)
        self._name_operations(experiment)

    def _number(self, experiment: Experiment, tops: list[str], closure: set[str]) -> None:
        """Breadth-first ids, parents and child bitmasks over the closure."""
        self.ids: list[str] = []
        self.parent: list[int] = []
        order = [(t, -1) for t in tops]
        while order:
            nxt = []
            for mid, par in order:
                idx = len(self.ids)
                self.ids.append(mid)
                self.parent.append(par)
                nxt.extend((c, idx) for c in experiment.children[mid] if c in closure)
            order = nxt
        self.index = {mid: i for i, mid in enumerate(self.ids)}
        self.child_mask = [0] * len(self.ids)
        for i, par in enumerate(self.parent):
            if par >= 0:
                self.child_mask[par] |= 1 << i

    def _count_selected(self, selected: list[str]) -> None:
        """Selected models at or below each node: a presence every selected model shares is free."""
        self.total_selected = len(selected)
        self.sel_under = [0] * len(self.ids)
        for m in selected:
            i = self.index[m]
            while i >= 0:
                self.sel_under[i] += 1
                i = self.parent[i]

    def _name_operations(self, experiment: Experiment) -> None:
        """Numbered operation name and frozen parameters per node; a bitmask per name."""
        self.name: list[str] = []
        self.params: list[dict[str, Any]] = []
        self.name_mask: dict[str, int] = {}
        for i, mid in enumerate(self.ids):
            op = experiment.models[mid].operation
            if self.parent[i] < 0:  # in the table from the start: its operation never matters
                self.name.append("")
                self.params.append({})
                continue
            name = _numbered_name(experiment, mid, op.name if op else "unknown")
            self.name.append(name)
            self.params.append({str(k): _freeze(v) for k, v in op.parameters.items()} if op else {})
            self.name_mask[name] = self.name_mask.get(name, 0) | (1 << i)
        self.name_rank = {name: r for r, name in enumerate(self.name_mask)}

    def recipes(self, experiment: Experiment, selected: list[str]) -> dict[str, str]:
        """Each selected model's operation labels from the search start, for `flatten`."""
        steps: list[str] = []
        for i, mid in enumerate(self.ids):  # breadth-first: parents come first
            par = self.parent[i]
            if par < 0:
                steps.append(mid if self.virtual_root else "")
                continue
            op = experiment.models[mid].operation
            label = op.label() if op else "unknown"
            steps.append(f"{steps[par]}{_RECIPE_JOIN}{label}" if steps[par] else label)
        return {m: steps[self.index[m]] or NONE for m in selected}


def _common_prefix_length(paths: list[list[str]]) -> int:
    first = paths[0]
    n = len(first)
    for p in paths[1:]:
        k = 0
        while k < n and k < len(p) and p[k] == first[k]:
            k += 1
        n = k
    return n


def _numbered_name(experiment: Experiment, model_id: str, name: str) -> str:
    """'name' for the first application on the path from the root, 'name #k' for the k-th."""
    k = 0
    cur: str | None = model_id
    while cur is not None:
        m = experiment.models[cur]
        if (m.operation.name if m.operation else "unknown") == name and m.base is not None:
            k += 1
        cur = m.base
    return name if k <= 1 else f"{name} #{k}"


# ---------------------------------------------------------------- the search

@dataclass(frozen=True)
class _Group:
    """What advancing the pending models of one operation would add (cached per bitmask: a group
    the last step did not touch keeps its mask, so most lookups hit)."""

    children: int  # their children in the closure
    selected: int  # selected models at or below them
    params: tuple[str, ...]  # parameters with > 1 value across the group (absent counts)


@dataclass(frozen=True)
class _Step:
    """One search move: a presence (one operation) or an operation-type variable."""

    kind: str  # "presence" | "operation"
    advanced: int  # bitmask of the pending models it advances
    params: tuple[str, ...]  # parameter variables that come with it
    cost: int
    n_vars: int  # variables that will not be constant over the selection
    after: int  # the pending set afterwards


class _Search:
    """Memoized DP over pending sets with branch-and-bound (see the module docstring)."""

    def __init__(self, tree: _Tree) -> None:
        self.tree = tree
        self.groups: dict[int, _Group] = {}
        self.best: dict[int, tuple[int, int, _Step | None]] = {}  # exact optimum per pending set
        self.bound: dict[int, int] = {}  # proven lower bounds for pending sets cut off early
        self.expanded = 0

    def solve(self) -> None:
        self._cost(self.tree.start, 1 << 60)

    def plan(self) -> list[_Step]:
        """The optimal steps from the start, replayed from the memo."""
        steps, pending = [], self.tree.start
        while pending:
            step = self.best[pending][2]
            assert step is not None
            steps.append(step)
            pending = step.after
        return steps

    def _cost(self, pending: int, budget: int) -> tuple[int, int]:
        """Optimal (cost, variables) below `pending`, or a lower bound >= budget if that's worse.

        Runs of forced steps (one operation pending) are walked in a loop, so recursion depth
        follows branching points, not tree depth (iterative pruning can make very deep chains).
        """
        forced: list[tuple[int, _Step]] = []
        spent = 0
        while pending and pending not in self.best and spent < budget:
            if not self._single_operation(pending):
                break
            step = self._presence(pending, pending)
            forced.append((pending, step))
            spent += step.cost
            pending = step.after
        cost, n_vars = self._branch(pending, budget - spent)
        if cost >= budget - spent:
            return spent + cost, 0
        for state, step in reversed(forced):
            cost, n_vars = cost + step.cost, n_vars + step.n_vars
            self.best[state] = (cost, n_vars, step)
        return cost, n_vars

    def _branch(self, pending: int, budget: int) -> tuple[int, int]:
        """Like `_cost` for a pending set where several operations compete (or a memo hit)."""
        if not pending:
            return 0, 0
        hit = self.best.get(pending)
        if hit is not None:
            return hit[0], hit[1]
        known = self.bound.get(pending, 0)
        if known >= budget:
            return known, 0
        best: tuple[int, int, _Step | None] = (1 << 60, 0, None)
        for step in self._steps(pending):
            limit = min(budget, best[0] + 1) - step.cost  # ties on cost still compete on n_vars
            if limit <= 0:
                continue
            sub_cost, sub_vars = self._cost(step.after, limit)
            if sub_cost >= limit:
                continue
            total = (step.cost + sub_cost, step.n_vars + sub_vars)
            if total < best[:2]:
                best = (total[0], total[1], step)
        if best[2] is None:  # every branch costs at least `budget`
            self.bound[pending] = max(known, budget)
            return budget, 0
        self.best[pending] = best
        return best[0], best[1]

    def _single_operation(self, pending: int) -> bool:
        """True when only one operation is pending, so the next step is forced."""
        names = 0
        for mask in self.tree.name_mask.values():
            if pending & mask:
                names += 1
                if names > 1:
                    return False
        return True

    def _steps(self, pending: int) -> list[_Step]:
        parts = [pending & m for m in self.tree.name_mask.values() if pending & m]
        if len(parts) == 1:
            return [self._presence(pending, parts[0])]
        self.expanded += 1
        steps = [self._operation(pending, parts)]
        if len(parts) <= _MAX_PRESENCE_GROUPS and self.expanded <= _EXPANSION_BUDGET:
            steps.extend(self._presence(pending, part) for part in parts)
        return steps

    def _presence(self, pending: int, part: int) -> _Step:
        """Presence of one operation (free when every selected model has it) plus its varying
        parameters; advances only that operation's pending models."""
        group = self._group(part)
        presence = 0 if group.selected == self.tree.total_selected else 1
        cost = COST["presence"] * presence + COST["parameter"] * len(group.params)
        after = (pending & ~part) | group.children
        return _Step("presence", part, group.params, cost, presence + len(group.params), after)

    def _operation(self, pending: int, parts: list[int]) -> _Step:
        """Operation type plus the parameters that vary within one operation; advances all."""
        children, params = 0, {}
        for part in parts:
            group = self._group(part)
            children |= group.children
            params.update(dict.fromkeys(group.params))
        cost = COST["operation"] + COST["parameter"] * len(params)
        return _Step("operation", pending, tuple(params), cost, 1 + len(params), children)

    def _group(self, mask: int) -> _Group:
        hit = self.groups.get(mask)
        if hit is not None:
            return hit
        tree = self.tree
        children = selected = 0
        param_values: dict[str, set] = {}
        members = list(_bits(mask))
        for i in members:
            children |= tree.child_mask[i]
            selected += tree.sel_under[i]
            for p in tree.params[i]:
                param_values.setdefault(p, set())
        for p, seen in param_values.items():
            seen.update(tree.params[i].get(p, NONE) for i in members)
        params = tuple(p for p, seen in param_values.items() if len(seen) > 1)
        group = _Group(children, selected, params)
        self.groups[mask] = group
        return group


# ---------------------------------------------------------------- columns

@dataclass(eq=False)  # compared by identity: columns are looked up in lists
class _Column:
    """A variable while it is being built: values per selected model and a sort key per value."""

    kind: str
    label: str
    values: dict[str, Any]  # model id -> value
    keys: dict[Any, tuple]  # value -> sort key
    op: str | None = None  # the (numbered) operation of a presence / parameter variable
    param: str | None = None
    owner: str | None = None  # display only: the one operation a parameter of an operation-type step belongs to

    def distinct(self) -> tuple:
        return tuple(sorted(set(self.values.values()), key=self.keys.__getitem__))

    def identity(self) -> tuple | None:
        """Same-identity columns (same operation, same parameter) come from disjoint parts of the
        tree and merge into one; operation-type columns at different steps stay apart."""
        if self.op is not None and self.kind in ("presence", "parameter"):
            return (self.kind, self.op, self.param)
        return None


def _value_key(value: Any, name_rank: dict[str, int]) -> tuple:
    """'none' first, then numbers ascending, then names in pipeline order, then the rest."""
    if value == NONE:
        return (0,)
    if isinstance(value, bool | int | float):
        return (1, float(value), "")
    if isinstance(value, str):
        return (2, name_rank.get(value, len(name_rank)), value)
    return (3, 0, repr(value))


def _columns_from_search(tree: _Tree, plan: list[_Step], selected: list[str]) -> list[_Column]:
    """Replay the plan: each step's variables get their values on the models it advances, and
    every model inherits its ancestors' values ("none" where nothing was set)."""
    specs: list[tuple[str, str | None, str | None, str | None]] = []  # (kind, op, param, owner)
    own: dict[int, dict[int, Any]] = {}
    if tree.virtual_root:
        specs.append(("base", None, None, None))
        for t in tree.table0:
            own[t] = {0: tree.ids[t]}
    for step in plan:
        members = list(_bits(step.advanced))
        head = len(specs)
        if step.kind == "presence":
            name = tree.name[members[0]]
            specs.append(("presence", name, None, None))
            specs.extend(("parameter", name, p, None) for p in step.params)
            for i in members:
                own.setdefault(i, {})[head] = name
        else:
            specs.append(("operation", None, None, None))
            for p in step.params:  # no op: never merged
                owners = {tree.name[i] for i in members if p in tree.params[i]}
                specs.append(("parameter", None, p, owners.pop() if len(owners) == 1 else None))
            for i in members:
                own.setdefault(i, {})[head] = tree.name[i]
        for k, p in enumerate(step.params, start=head + 1):
            for i in members:
                own.setdefault(i, {})[k] = tree.params[i].get(p, NONE)
    values: list[dict[str, Any]] = [{} for _ in specs]
    for m in selected:
        i = tree.index[m]
        while i >= 0:
            for k, v in own.get(i, {}).items():
                values[k][m] = v
            i = tree.parent[i]
    columns: list[_Column] = []
    for (kind, op, param, owner), vals in zip(specs, values):
        full = {m: vals.get(m, NONE) for m in selected}
        keys = {v: _value_key(v, tree.name_rank) for v in set(full.values())}
        if kind == "base":
            keys = {tree.ids[t]: (2, r, tree.ids[t]) for r, t in enumerate(tree.table0)}
            columns.append(_Column("operation", BASE_LABEL, full, keys))
        elif kind == "operation":
            columns.append(_Column("operation", OPERATION_LABEL, full, keys))
        else:
            label = param if kind == "parameter" else op
            columns.append(_Column(kind, label, full, keys, op, param, owner))
    return _merge_same_identity(columns)


def _distinct_rows(columns: list[_Column]) -> int:
    return len(set(zip(*(c.values.values() for c in columns))))


def _merge_same_identity(columns: list[_Column]) -> list[_Column]:
    """One "quantize" variable rather than two when the search met quantize in two places —
    unless that would make two different recipes look alike (P→Q vs Q→P)."""
    groups: dict[tuple, list[_Column]] = {}
    for c in columns:
        ident = c.identity()
        if ident is not None:
            groups.setdefault(ident, []).append(c)
    target = _distinct_rows(columns)
    for group in groups.values():
        if len(group) < 2:
            continue
        merged = _Column(group[0].kind, group[0].label, dict(group[0].values), dict(group[0].keys),
                         group[0].op, group[0].param)
        for other in group[1:]:
            _absorb(merged, other)
        trial = [merged if c is group[0] else c for c in columns if not any(c is g for g in group[1:])]
        if _distinct_rows(trial) == target:
            columns = trial
    return columns


def _absorb(into: _Column, other: _Column) -> None:
    """Merge a same-identity column: each model has a value in at most one of them."""
    for m, v in other.values.items():
        if v != NONE:
            into.values[m] = v
    into.keys.update(other.keys)


def _drop_constant(columns: list[_Column]) -> list[_Column]:
    return [c for c in columns if len(set(c.values.values())) > 1]


def _restrict(columns: list[_Column], models: list[str]) -> list[_Column]:
    return [
        _Column(c.kind, c.label, {m: c.values[m] for m in models}, c.keys, c.op, c.param, c.owner)
        for c in columns
    ]


def _qualify_labels(columns: list[_Column]) -> None:
    """Labels that collide get their operation ("magnitude prune amount") or, failing that, a
    counter in parentheses ("operation (2)"; "#k" already means the k-th recurrence on a path)."""
    counts = Counter(c.label for c in columns)
    for c in columns:
        if counts[c.label] > 1 and c.kind == "parameter" and c.op:
            c.label = f"{c.op} {c.param}"
    counts = Counter(c.label for c in columns)
    seen: Counter = Counter()
    for c in columns:
        if counts[c.label] > 1:
            seen[c.label] += 1
            if seen[c.label] > 1:
                c.label = f"{c.label} ({seen[c.label]})"


# ---------------------------------------------------------------- simplification

def _simplify(columns: list[_Column]) -> list[_Column]:
    """Drop pure redundancy always; merge further only while more than two variables remain."""
    columns = _drop_presence_implied_by_parameter(columns)
    columns = _merge_presence_chains(columns, equivalent_only=True)
    if len(columns) > 2:
        columns = _merge_presence_chains(columns, equivalent_only=False)
    if len(columns) > 2:
        columns = _merge_implied(columns)
    if len(columns) > 2:
        columns = _merge_small_neighbours(columns)
    return columns


def _present(col: _Column) -> frozenset[str]:
    return frozenset(m for m, v in col.values.items() if v != NONE)


def _drop_presence_implied_by_parameter(columns: list[_Column]) -> list[_Column]:
    """'prune = none/prune' adds nothing next to 'amount = none/0.5/0.7' of the same prune."""
    params = {(c.op, _present(c)) for c in columns if c.kind == "parameter" and c.op}
    return [c for c in columns if not (c.kind == "presence" and (c.op, _present(c)) in params)]


def _merge_presence_chains(columns: list[_Column], equivalent_only: bool) -> list[_Column]:
    """Presences where each implies the previous (A, A+B, A+B+C) become one ordered variable."""
    presences = [c for c in columns if c.kind == "presence"]
    support = {id(c): _present(c) for c in presences}
    chains: list[list[_Column]] = []
    order = sorted(presences, key=lambda c: (-len(support[id(c)]), columns.index(c)))
    for col in order:
        mine = support[id(col)]
        for chain in chains:
            last = support[id(chain[-1])]
            if mine == last or (not equivalent_only and mine <= last):
                chain.append(col)
                break
        else:
            chains.append([col])
    merged = {id(chain[0]): chain for chain in chains if len(chain) > 1}
    if not merged:
        return columns
    absorbed = {id(c) for chain in merged.values() for c in chain[1:]}
    out = []
    for col in columns:
        if id(col) in merged:
            out.append(_chain_column(merged[id(col)], support))
        elif id(col) not in absorbed:
            out.append(col)
    return out


def _chain_column(chain: list[_Column], support: dict[int, frozenset[str]]) -> _Column:
    labels = [c.label for c in chain]
    values, keys = {}, {NONE: (0,)}
    for m in chain[0].values:
        depth = sum(1 for c in chain if m in support[id(c)])
        value = _chain_label(labels[:depth])
        values[m] = value
        keys[value] = (depth,)
    return _Column("sequence", _chain_label(labels), values, keys)


def _chain_label(labels: list[str]) -> str:
    """'A + B + C'; long chains (iterative pruning) keep their ends: 'A + B + … + Z'."""
    if not labels:
        return NONE
    if len(labels) > 4:
        labels = labels[:2] + ["…", labels[-1]]
    return _CHAIN_JOIN.join(labels)


def _encode(col: _Column) -> np.ndarray:
    """Values as small ints, one per model, for vectorized comparisons of columns."""
    codes: dict[Any, int] = {}
    return np.fromiter((codes.setdefault(v, len(codes)) for v in col.values.values()), dtype=np.int64,
                       count=len(col.values))


def _joint_count(a: np.ndarray, b: np.ndarray) -> int:
    """Distinct (a, b) value pairs of two encoded columns."""
    return int(np.unique(a * (int(b.max()) + 1) + b).size)


def _merge_implied(columns: list[_Column]) -> list[_Column]:
    """Fold a variable into one that determines it (each value of X fixes the value of Y), taking
    the pairs with the fewest resulting values first. Merged variables never merge again, so the
    candidate pairs are computed once."""
    encoded = [_encode(c) for c in columns]
    counts, representative = [], []
    for codes in encoded:  # each model -> the first model with the same value
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        counts.append(first.size)
        representative.append(first[inverse])
    pairs = []
    for i, rep in enumerate(representative):
        for j, codes in enumerate(encoded):
            if i == j or counts[j] > counts[i] or not _mergeable(columns[i], columns[j]):
                continue
            if np.array_equal(codes, codes[rep]):  # Y is constant within every class of X
                pairs.append((counts[i], i, j))
    return _merge_greedily(columns, sorted(pairs))


def _merge_small_neighbours(columns: list[_Column]) -> list[_Column]:
    """Merge adjacent variables whose joint values are few (<= 6), the fewest first."""
    encoded = [_encode(c) for c in columns]
    pairs = []
    for i in range(len(columns) - 1):
        if not _mergeable(columns[i], columns[i + 1]):
            continue
        joint = _joint_count(encoded[i], encoded[i + 1])
        if joint <= _MAX_JOINT_VALUES:
            pairs.append((joint, i, i + 1))
    return _merge_greedily(columns, sorted(pairs))


def _merge_greedily(columns: list[_Column], pairs: list[tuple[int, int, int]]) -> list[_Column]:
    """Apply (count, i, j) merges in order, each column at most once, until two variables remain."""
    used: set[int] = set()
    originals = list(columns)
    for _, i, j in pairs:
        if len(columns) <= 2:
            break
        if i in used or j in used:
            continue
        a, b = originals[i], originals[j]
        columns = _merge_pair(columns, columns.index(a), columns.index(b))
        used.update((i, j))
    return columns


def _mergeable(a: _Column, b: _Column) -> bool:
    """Merged variables are not merged again: their values would stop reading naturally."""
    return a.kind != "sequence" and b.kind != "sequence"


def _part_label(col: _Column) -> str:
    """A parameter inside a merged variable names its operation ("quantize int8 mode"): alone,
    "mode" would not say what it belongs to."""
    op = col.op or col.owner
    if col.kind == "parameter" and op and op not in col.label:
        return f"{op} {col.label}"
    return col.label


def _part(col: _Column, value: Any) -> str:
    """How one variable's value reads inside a merged value ("amount 0.5", "fine-tune")."""
    if value == NONE:
        return ""
    if col.kind == "parameter":
        return f"{_part_label(col)} {_fmt(value)}"
    return _fmt(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _merge_pair(columns: list[_Column], i: int, j: int) -> list[_Column]:
    """Columns i and j become one "sequence" variable at the earlier position."""
    a, b = columns[i], columns[j]
    values, keys = {}, {}
    for m in a.values:
        va, vb = a.values[m], b.values[m]
        part_b = _part(b, vb)
        if vb != NONE and b.kind == "parameter" and va == (b.op or b.owner):  # "quantize int8 & mode static"
            part_b = f"{b.label} {_fmt(vb)}"
        value = _PART_JOIN.join(p for p in (_part(a, va), part_b) if p) or NONE
        values[m] = value
        key = (a.keys[va], b.keys[vb])
        keys[value] = min(keys.get(value, key), key)
    merged = _Column("sequence", f"{_part_label(a)}{_PART_JOIN}{_part_label(b)}", values, keys)
    first, second = min(i, j), max(i, j)
    out = list(columns)
    out[first] = merged
    del out[second]
    return out


def _combined_value(columns: list[_Column], model_id: str) -> str:
    return _PART_JOIN.join(p for c in columns if (p := _part(c, c.values[model_id]))) or NONE


# ---------------------------------------------------------------- explanations

def _explanation(
    columns: list[_Column], models: list[str], recipes: dict[str, str], raw: list[_Column]
) -> Explanation:
    variables = [Variable(c.kind, c.label, c.distinct()) for c in columns]
    rows = {m: tuple(c.values[m] for c in columns) for m in models}
    return Explanation(
        variables=variables,
        rows=rows,
        needs_refinement=len(variables) > 2,
        recipes={m: recipes[m] for m in models if m in recipes},
        raw=raw,
    )


def _columns_of(explanation: Explanation) -> list[_Column]:
    """Columns of the explanation's current variables (works for hand-built explanations too)."""
    out = []
    for k, var in enumerate(explanation.variables):
        values = {m: row[k] for m, row in explanation.rows.items()}
        keys: dict[Any, tuple] = {v: (r,) for r, v in enumerate(var.values)}
        for v in set(values.values()) - keys.keys():
            keys[v] = (len(keys),)
        out.append(_Column(var.kind, var.label, values, keys))
    return out


def _fix_others(
    columns: list[_Column], keep: list[int], models: list[str]
) -> tuple[list[_Column], list[str]]:
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
    """One "recipe" variable; identical recipes get the model id so each model keeps its own bar."""
    labels = {m: explanation.recipe(m) for m in models}
    counts = Counter(labels.values())
    values = {m: (v if counts[v] == 1 else f"{v} [{m}]") for m, v in labels.items()}
    current = _columns_of(explanation)  # shorter recipes first, then as the variables order them

    def key(m: str) -> tuple:
        if values[m] == NONE:
            return (0,)
        return (1, values[m].count(_RECIPE_JOIN), tuple(c.keys[c.values[m]] for c in current), values[m])

    keys = {values[m]: key(m) for m in models}
    column = _Column("sequence", RECIPE_LABEL, values, keys)
    columns = _drop_constant([column])
    return _explanation(columns, models, explanation.recipes, columns)
