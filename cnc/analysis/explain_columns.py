"""Variables as columns over the selected models: built from the search's plan, then simplified.

See docs/comparability.md ("Simplification" and "Reading a value"). A column keeps, per model,
the tree nodes that realize its value, so every value can be read as the steps it stands for, in
the order they were applied.

Pure Python, no Dash imports.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from cnc.analysis.explain_search import NONE, Step, Tree, bits
from cnc.analysis.explain_variable import Column
from cnc.analysis.recipe_text import STEP_JOIN, operation_name, step_text
from cnc.analysis.variable_names import BASE_LABEL, column_nodes, steps_name

OPERATION_LABEL = "step"  # an operation-type variable is named by its steps' family or position
MAX_JOINT_VALUES = 6  # neighbouring variables merge when their joint values are this few

# ---------------------------------------------------------------- columns

def _value_key(value: Any, name_rank: dict[str, int]) -> tuple:
    """'none' first, then numbers ascending, then names in pipeline order, then the rest."""
    if value == NONE:
        return (0,)
    if isinstance(value, bool | int | float):
        return (1, float(value), "")
    if isinstance(value, str):
        return (2, name_rank.get(value, len(name_rank)), value)
    return (3, 0, repr(value))


def columns_from_search(tree: Tree, plan: list[Step], selected: list[str]) -> list[Column]:
    """Replay the plan: each step's variables get their values on the models it advances, and
    every model inherits its ancestors' values ("none" where nothing was set)."""
    specs: list[tuple[str, str | None, str | None, str | None]] = []  # (kind, op, param, owner)
    own: dict[int, dict[int, Any]] = {}
    if tree.virtual_root:
        specs.append(("base", None, None, None))
        for t in tree.table0:
            own[t] = {0: tree.ids[t]}
    for step in plan:
        members = list(bits(step.advanced))
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
    values: list[dict[str, Any]] = [dict.fromkeys(selected, NONE) for _ in specs]
    nodes: list[dict[str, tuple[int, ...]]] = [{} for _ in specs]
    parent, index = tree.parent, tree.index
    for m in selected:
        i = index[m]
        while i >= 0:
            mine = own.get(i)
            if mine:
                for k, v in mine.items():
                    values[k][m] = v
                    if v != NONE:
                        nodes[k][m] = (i,)
            i = parent[i]
    columns: list[Column] = []
    for (kind, op, param, owner), full, where in zip(specs, values, nodes):
        keys = {v: _value_key(v, tree.name_rank) for v in set(full.values())}
        if kind == "base":
            keys = {tree.ids[t]: (2, r, tree.ids[t]) for r, t in enumerate(tree.table0)}
            col = Column("operation", BASE_LABEL, full, keys, nodes=where, tree=tree)
        elif kind == "operation":
            label = steps_name(tree, {i for n in where.values() for i in n}) if where else OPERATION_LABEL
            col = Column("operation", label, full, keys, nodes=where, tree=tree)
        else:
            label = param if kind == "parameter" else tree.readable[op]
            col = Column(kind, label, full, keys, op, param, owner, where, tree)
        if col.kind == "operation":
            col.texts = _operation_texts(col, tree)
        columns.append(col)
    return _merge_same_identity(columns)


def _constant_parameters(tree: Tree, groups: dict[Any, list[int]]) -> dict[Any, set[str]]:
    """Per group of nodes: the parameters every node has, with one value across the group."""
    out = {}
    for key, members in groups.items():
        first = tree.params[members[0]]
        out[key] = {p for p, v in first.items()
                    if all(p in tree.params[i] and tree.params[i][p] == v for i in members[1:])}
    return out


def _operation_texts(col: Column, tree: Tree) -> dict[Any, str]:
    """An operation-type value reads as its step with the parameter values all its models share;
    the ordinal ("second magnitude prune") only when two values would otherwise read alike."""
    groups: dict[Any, list[int]] = {}
    for m, v in col.values.items():
        groups.setdefault(v, []).extend(col.nodes.get(m, ()))
    groups = {v: g for v, g in groups.items() if g}
    shown = _constant_parameters(tree, groups)
    plain = {v: step_text(tree.plain[g[0]], tree.params[g[0]], shown[v]) for v, g in groups.items()}
    counts = Counter(plain.values())
    out = {}
    for v, g in groups.items():
        if counts[plain[v]] == 1:
            out[v] = plain[v]
        elif tree.depth[g[0]] == 0:  # two root models with the same label
            out[v] = str(v)
        else:
            out[v] = step_text(tree.readable[tree.name[g[0]]], tree.params[g[0]], shown[v])
    return out


def _distinct_rows(columns: list[Column]) -> int:
    return len(set(zip(*(c.values.values() for c in columns))))


def _merge_same_identity(columns: list[Column]) -> list[Column]:
    """One "quantize" variable rather than two when the search met quantize in two places —
    unless that would make two different recipes look alike (P→Q vs Q→P)."""
    groups: dict[tuple, list[Column]] = {}
    for c in columns:
        ident = c.identity()
        if ident is not None:
            groups.setdefault(ident, []).append(c)
    if all(len(g) < 2 for g in groups.values()):
        return columns  # nothing to merge (the common case): skip counting distinct rows
    target = _distinct_rows(columns)
    for group in groups.values():
        if len(group) < 2:
            continue
        head = group[0]
        merged = Column(head.kind, head.label, dict(head.values), dict(head.keys), head.op, head.param,
                        nodes=dict(head.nodes), tree=head.tree)
        for other in group[1:]:
            _absorb(merged, other)
        trial = [merged if c is group[0] else c for c in columns if not any(c is g for g in group[1:])]
        if _distinct_rows(trial) == target:
            columns = trial
    return columns


def _absorb(into: Column, other: Column) -> None:
    """Merge a same-identity column: each model has a value in at most one of them."""
    for m, v in other.values.items():
        if v != NONE:
            into.values[m] = v
            into.nodes[m] = other.nodes.get(m, ())
    into.keys.update(other.keys)


def drop_constant(columns: list[Column]) -> list[Column]:
    return [c for c in columns if len(set(c.values.values())) > 1]


def restrict(columns: list[Column], models: list[str]) -> list[Column]:
    return [c.restricted(models) for c in columns]


# ---------------------------------------------------------------- simplification

def simplify(columns: list[Column]) -> list[Column]:
    """Drop pure redundancy always; merge further only while more than two variables remain."""
    columns = _drop_presence_implied_by_parameter(columns)
    columns = _merge_presence_chains(columns, equivalent_only=True)
    if len(columns) > 2:
        columns = _merge_presence_chains(columns, equivalent_only=False)
    if len(columns) > 2:
        columns = _merge_implied(columns)
    if len(columns) > 2:
        columns = _merge_small_neighbours(columns)
    _number_merged(columns)
    return columns


def _number_merged(columns: list[Column]) -> None:
    """A merged variable whose name another variable has gets "(2)" (merged columns are built here,
    so renaming them never touches the unsimplified columns)."""
    taken = Counter(c.label for c in columns)
    for c in columns:
        if c.kind == "sequence" and taken[c.label] > 1:
            k = 2
            while f"{c.label} ({k})" in taken:
                k += 1
            taken[c.label] -= 1
            c.label = f"{c.label} ({k})"
            taken[c.label] += 1


def _present(col: Column) -> frozenset[str]:
    return frozenset(m for m, v in col.values.items() if v != NONE)


def _drop_presence_implied_by_parameter(columns: list[Column]) -> list[Column]:
    """'prune = none/prune' adds nothing next to 'amount = none/0.5/0.7' of the same prune."""
    params = {(c.op, _present(c)) for c in columns if c.kind == "parameter" and c.op}
    return [c for c in columns if not (c.kind == "presence" and (c.op, _present(c)) in params)]


def _merge_presence_chains(columns: list[Column], equivalent_only: bool) -> list[Column]:
    """Presences where each implies the previous (A, A+B, A+B+C) become one ordered variable."""
    presences = [c for c in columns if c.kind == "presence"]
    support = {id(c): _present(c) for c in presences}
    chains: list[list[Column]] = []
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
    merged = {id(chain[0]): col for chain in chains if len(chain) > 1
              if (col := _chain_column(chain, support)) is not None}
    if not merged:
        return columns
    absorbed = {id(c) for chain in chains if id(chain[0]) in merged for c in chain[1:]}
    out = []
    for col in columns:
        if id(col) in merged:
            out.append(merged[id(col)])
        elif id(col) not in absorbed:
            out.append(col)
    return out


def _chain_column(chain: list[Column], support: dict[int, frozenset[str]]) -> Column | None:
    """A cumulative chain of presences as one variable whose values are the steps each model has,
    in applied order; its label names the operations in the order they are applied."""
    first_depth = {id(c): _first_depth(c) for c in chain}
    names = [_plain_label(c) for c in sorted(chain, key=lambda c: first_depth[id(c)])]
    return _sequence_column(chain, STEP_JOIN.join(_shorten(names)), lambda m: (sum(m in support[id(c)] for c in chain),))


def _shorten(names: list[str]) -> list[str]:
    """Long chains (iterative pruning) keep their ends: 'A → B → … → Z'."""
    return names[:2] + ["…", names[-1]] if len(names) > 4 else names


def _first_depth(col: Column) -> int:
    if col.tree is None:
        return 0
    return min((col.tree.depth[i] for n in col.nodes.values() for i in n), default=0)


def _plain_label(col: Column) -> str:
    if col.kind == "presence" and col.tree is not None and col.op is not None:
        first = next(i for n in col.nodes.values() for i in n)
        return operation_name(col.tree.plain[first])
    return col.label


def _sequence_column(parts: list[Column], label: str, key_of) -> Column | None:
    """Parts become one "sequence" variable. A model's value is the steps its parts stand for, in
    the order they were applied, each with the parameter values a part carries and those every
    model of the variable shares at that step. None when two different combinations of the parts'
    values would read alike (the merge would hide a difference)."""
    values, keys, nodes = {}, {}, {}
    combos: dict[Any, set] = {}
    tree = parts[0].tree
    shared = _shared_parameters(parts) if tree is not None else {}
    cache: dict[tuple, tuple] = {}  # models whose parts stand for the same nodes read alike
    for m in parts[0].values:
        where = tuple(c.nodes.get(m, ()) for c in parts) if tree is not None else tuple(c.values[m] for c in parts)
        hit = cache.get(where)
        if hit is None:
            combo = tuple(c.values[m] for c in parts)
            steps = _steps_of(parts, where, shared) if tree is not None else _readings(parts, m)
            value = STEP_JOIN.join(steps) if steps else NONE
            hit = cache[where] = (value, tuple(sorted({i for n in where for i in n})) if tree is not None else ())
            combos.setdefault(value, set()).add(combo)
            key = key_of(m)
            keys[value] = min(keys.get(value, key), key)
        values[m], nodes[m] = hit
    if any(len(c) > 1 for c in combos.values()):
        return None
    return Column("sequence", label, values, keys, nodes=nodes, tree=tree)


def _readings(parts: list[Column], model: str) -> list[str]:
    """A hand-built explanation has no steps to order, only the parts' readings."""
    return [(_part_label(c) + " " + c.text(c.values[model])) if c.kind == "parameter" else c.label
            for c in parts if c.values[model] != NONE]


def _steps_of(parts: list[Column], where: tuple[tuple[int, ...], ...], shared: dict[str, set[str]]) -> list[str]:
    """Step texts for the nodes each part stands for (see `_sequence_column`)."""
    tree = parts[0].tree
    assert tree is not None
    carried: dict[int, set[str]] = {}
    for c, n in zip(parts, where):
        for i in n:
            carried.setdefault(i, set())
            if c.kind == "parameter" and c.param is not None:
                carried[i].add(c.param)
    return [step_text(tree.plain[i], tree.params[i], carried[i] | shared.get(tree.name[i], set()))
            for i in sorted(carried)]


def _shared_parameters(parts: list[Column]) -> dict[str, set[str]]:
    """Per operation: the parameters with one value over every node the parts stand for."""
    tree = parts[0].tree
    assert tree is not None
    groups: dict[str, list[int]] = {}
    for c in parts:
        for n in c.nodes.values():
            for i in n:
                groups.setdefault(tree.name[i], []).append(i)
    return _constant_parameters(tree, groups)


def _encode(col: Column) -> np.ndarray:
    """Values as small ints, one per model, for vectorized comparisons of columns (kept: simplify
    never changes a column's values, it builds new columns)."""
    if col.codes is None:
        values = list(col.values.values())
        codes = {v: k for k, v in enumerate(dict.fromkeys(values))}
        col.codes = np.array([codes[v] for v in values], dtype=np.int64)
    return col.codes


def _joint_count(a: np.ndarray, b: np.ndarray) -> int:
    """Distinct (a, b) value pairs of two encoded columns."""
    return int(np.unique(a * (int(b.max()) + 1) + b).size)


def _merge_implied(columns: list[Column]) -> list[Column]:
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


def _merge_small_neighbours(columns: list[Column]) -> list[Column]:
    """Merge adjacent variables whose joint values are few (<= 6), the fewest first."""
    encoded = [_encode(c) for c in columns]
    pairs = []
    for i in range(len(columns) - 1):
        if not _mergeable(columns[i], columns[i + 1]):
            continue
        joint = _joint_count(encoded[i], encoded[i + 1])
        if joint <= MAX_JOINT_VALUES:
            pairs.append((joint, i, i + 1))
    return _merge_greedily(columns, sorted(pairs))


def _merge_greedily(columns: list[Column], pairs: list[tuple[int, int, int]]) -> list[Column]:
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


def _mergeable(a: Column, b: Column) -> bool:
    """Merged variables are not merged again: their values would stop reading naturally."""
    return a.kind != "sequence" and b.kind != "sequence"


def _part_label(col: Column) -> str:
    """A parameter inside a merged variable names its operation ("simulated int8 mode"): alone,
    "mode" would not say what it belongs to."""
    op = col.op or col.owner
    if col.kind == "parameter" and op and col.tree is not None:
        op = col.tree.readable[op]
    if col.kind == "parameter" and op and op not in col.label:
        return f"{op} {col.label}"
    return col.label


def _merge_pair(columns: list[Column], i: int, j: int) -> list[Column]:
    """Columns i and j become one "sequence" variable at the earlier position (unchanged when
    that would hide a difference)."""
    a, b = columns[i], columns[j]
    label = steps_name(a.tree, column_nodes(a) | column_nodes(b)) if a.tree is not None else \
        f"{_part_label(a)} and {_part_label(b)}"  # hand-built explanations have no steps
    merged = _sequence_column([a, b], label, lambda m: (a.keys[a.values[m]], b.keys[b.values[m]]))
    if merged is None:
        return columns
    first, second = min(i, j), max(i, j)
    out = list(columns)
    out[first] = merged
    del out[second]
    return out


def combined_text(columns: list[Column], model_id: str) -> str:
    """A model's values read together, for explanations that carry no recipes."""
    parts = [f"{c.label} {c.text(v)}" if c.kind == "parameter" else c.label if c.kind == "presence" else c.text(v)
             for c in columns if (v := c.values[model_id]) != NONE]
    return ", ".join(p for p in parts) or NONE
