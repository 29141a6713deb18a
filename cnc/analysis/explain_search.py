"""The search behind Selection Details: the cheapest variables that tell a selection apart.

See docs/comparability.md ("Search") for the variables, their costs and why this finds the same
optimum as an exhaustive recursion. `Tree` indexes the ancestor closure of the selection for
bitmask search; `Search` is a memoized DP over pending sets with branch-and-bound.

Pure Python, no Dash imports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from cnc.analysis.recipe_text import STEP_JOIN, model_name, operation_name, ordinal_name, step_text
from cnc.experiment.forest import Experiment

NONE = "none"  # the value of a variable for a model that lacks the operation / parameter
COST = {"parameter": 1, "presence": 2, "operation": 5, "sequence": 6}
MAX_PRESENCE_GROUPS = 3  # per-operation presence branches only when this few distinct operations
EXPANSION_BUDGET = 4000  # pending sets explored with all branches before falling back

def freeze(value: Any) -> Any:
    """Parameter values become hashable (YAML lists/dicts) and missing ones become NONE."""
    if value is None:
        return NONE
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value


def bits(mask: int) -> Iterator[int]:
    """Indexes of the set bits of `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class Tree:
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
        """Per node: the operation's internal name (the k-th application of an operation on a path is
        its own operation, "name #k" — never shown), how it reads ("second magnitude prune"), its
        plain name, depth and frozen parameters; a bitmask per internal name."""
        self.name: list[str] = []
        self.plain: list[str] = []  # the operation's own name (the model's name for a top node)
        self.depth: list[int] = []
        self.params: list[dict[str, Any]] = []
        self.name_mask: dict[str, int] = {}
        self.readable: dict[str, str] = {}
        for i, mid in enumerate(self.ids):
            model = experiment.models[mid]
            op = model.operation
            par = self.parent[i]
            self.depth.append(0 if par < 0 else self.depth[par] + 1)
            if par < 0:  # in the table from the start: its operation never matters
                self.name.append("")
                self.plain.append(model_name(model))
                self.params.append({})
                continue
            plain = op.name if op else "unknown"
            k = _occurrence(experiment, mid, plain)
            name = plain if k <= 1 else f"{plain} #{k}"
            self.readable[name] = ordinal_name(operation_name(plain), k)
            self.name.append(name)
            self.plain.append(plain)
            self.params.append({str(k): freeze(v) for k, v in op.parameters.items()} if op else {})
            self.name_mask[name] = self.name_mask.get(name, 0) | (1 << i)
        self.name_rank = {name: r for r, name in enumerate(self.name_mask)}

    def recipes(self, experiment: Experiment, selected: list[str]) -> dict[str, str]:
        """Each selected model's readable recipe from the search start (with the root model's label
        first when several roots), "none" for the start itself. Parents come first in node order,
        so each recipe extends its parent's."""
        texts: list[str] = []
        for i, mid in enumerate(self.ids):
            par = self.parent[i]
            if par < 0:
                texts.append(self.plain[i] if self.virtual_root else "")
                continue
            op = experiment.models[mid].operation
            step = step_text(op.name, op.parameters) if op else "unknown"
            texts.append(f"{texts[par]}{STEP_JOIN}{step}" if texts[par] else step)
        return {m: texts[self.index[m]] or NONE for m in selected}


def _common_prefix_length(paths: list[list[str]]) -> int:
    first = paths[0]
    n = len(first)
    for p in paths[1:]:
        k = 0
        while k < n and k < len(p) and p[k] == first[k]:
            k += 1
        n = k
    return n


def _occurrence(experiment: Experiment, model_id: str, name: str) -> int:
    """How many times `name` was applied on the path from the root down to the model."""
    k = 0
    cur: str | None = model_id
    while cur is not None:
        m = experiment.models[cur]
        if (m.operation.name if m.operation else "unknown") == name and m.base is not None:
            k += 1
        cur = m.base
    return k


# ---------------------------------------------------------------- the search

@dataclass(frozen=True)
class _Group:
    """What advancing the pending models of one operation would add (cached per bitmask: a group
    the last step did not touch keeps its mask, so most lookups hit)."""

    children: int  # their children in the closure
    selected: int  # selected models at or below them
    params: tuple[str, ...]  # parameters with > 1 value across the group (absent counts)


@dataclass(frozen=True)
class Step:
    """One search move: a presence (one operation) or an operation-type variable."""

    kind: str  # "presence" | "operation"
    advanced: int  # bitmask of the pending models it advances
    params: tuple[str, ...]  # parameter variables that come with it
    cost: int
    n_vars: int  # variables that will not be constant over the selection
    after: int  # the pending set afterwards


class Search:
    """Memoized DP over pending sets with branch-and-bound.

    Which models are already "in the table" is fully determined by the pending set (they are the
    closure minus the pending subtrees), so the remaining cost depends on the pending set alone.
    An expansion budget degrades to the always-available operation-type step on pathological
    inputs. Costs are exact over the selection: a variable that will be constant over the selected
    models (a presence every selected model shares) costs nothing.
    """

    def __init__(self, tree: Tree, presence_branches: bool = True) -> None:
        self.tree = tree
        self.presence_branches = presence_branches  # False: operation-type steps only
        self.groups: dict[int, _Group] = {}
        self.best: dict[int, tuple[int, int, Step | None]] = {}  # exact optimum per pending set
        self.bound: dict[int, int] = {}  # proven lower bounds for pending sets cut off early
        self.expanded = 0

    def solve(self) -> int:
        """The optimal total cost (also kept in the memo for `plan`)."""
        return self._cost(self.tree.start, 1 << 60)[0] if self.tree.start else 0

    def plan(self) -> list[Step]:
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
        forced: list[tuple[int, Step]] = []
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
        best: tuple[int, int, Step | None] = (1 << 60, 0, None)
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

    def _steps(self, pending: int) -> list[Step]:
        parts = [pending & m for m in self.tree.name_mask.values() if pending & m]
        if len(parts) == 1:
            return [self._presence(pending, parts[0])]
        self.expanded += 1
        steps = [self._operation(pending, parts)]
        if self.presence_branches and len(parts) <= MAX_PRESENCE_GROUPS and self.expanded <= EXPANSION_BUDGET:
            steps.extend(self._presence(pending, part) for part in parts)
        return steps

    def _presence(self, pending: int, part: int) -> Step:
        """Presence of one operation (free when every selected model has it) plus its varying
        parameters; advances only that operation's pending models."""
        group = self._group(part)
        presence = 0 if group.selected == self.tree.total_selected else 1
        cost = COST["presence"] * presence + COST["parameter"] * len(group.params)
        after = (pending & ~part) | group.children
        return Step("presence", part, group.params, cost, presence + len(group.params), after)

    def _operation(self, pending: int, parts: list[int]) -> Step:
        """Operation type plus the parameters that vary within one operation; advances all."""
        children, params = 0, {}
        for part in parts:
            group = self._group(part)
            children |= group.children
            params.update(dict.fromkeys(group.params))
        cost = COST["operation"] + COST["parameter"] * len(params)
        return Step("operation", pending, tuple(params), cost, 1 + len(params), children)

    def _group(self, mask: int) -> _Group:
        hit = self.groups.get(mask)
        if hit is not None:
            return hit
        tree = self.tree
        children = selected = 0
        param_values: dict[str, set] = {}
        members = list(bits(mask))
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

