"""Model Map layout: both modes, several roots, deep chains, wide fans, never overlapping."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnc.analysis.map_positions import forest_layout, operation_keys
from cnc.experiment.forest import parse_experiment
from cnc.experiment.synthetic import make_experiment


def forest(edges: list[tuple[str, str | None, str | None]]):
    """[(id, base, operation)] -> Experiment."""
    models = [{"id": mid, "base": base, "operation": {"name": op} if op else None, "metrics": {"a": 1.0}}
              for mid, base, op in edges]
    return parse_experiment({"metrics": ["a"], "models": models})


def check_invariants(exp, lay) -> None:
    positions = list(lay.positions.values())
    assert len(set(positions)) == len(positions), "two nodes share a position"
    for m in exp.models.values():
        if m.base is not None:
            assert lay.positions[m.id][0] > lay.positions[m.base][0], "child not right of its parent"
    for root in exp.roots:  # each subtree occupies a contiguous band of rows of its own
        rows = {lay.positions[m][1] for m in exp.subtree(root)}
        others = {lay.positions[m][1] for m in exp.models if m not in set(exp.subtree(root))}
        assert not any(min(rows) <= r <= max(rows) for r in others)
    for mid in exp.models:
        kids = exp.children[mid]
        if kids:
            assert lay.positions[mid][1] == lay.positions[kids[0]][1]


@pytest.mark.parametrize("mode", ["step", "op"])
def test_synthetic_forest_invariants(mode):
    exp = make_experiment(300, seed=3, n_roots=3)
    lay = forest_layout(exp, mode)
    check_invariants(exp, lay)
    assert all(lay.positions[r][0] == 0 for r in exp.roots)


def test_step_mode_columns_are_depths():
    exp = make_experiment(120, seed=1)
    lay = forest_layout(exp, "step")
    assert all(lay.positions[m][0] == exp.depth(m) for m in exp.models)
    assert lay.columns[0] == "base" and lay.columns[1] == "step 1"


def test_operation_mode_lines_up_operations():
    exp = forest([
        ("r", None, None), ("p1", "r", "prune"), ("q1", "p1", "quantize"),
        ("f1", "p1", "finetune"), ("q2", "f1", "quantize"), ("q3", "r", "quantize"),
        ("r2", None, None), ("p2", "r2", "prune"), ("q4", "p2", "quantize"),
    ])
    lay = forest_layout(exp, "op")
    col = {m: lay.positions[m][0] for m in exp.models}
    assert col["p1"] == col["p2"]
    assert col["q1"] == col["q2"] == col["q3"] == col["q4"]
    assert col["p1"] < col["f1"] < col["q1"]  # pipeline order: prune, finetune, quantize
    assert lay.columns[col["q1"]] == "quantize"
    check_invariants(exp, lay)


def test_recurring_operation_gets_its_own_column():
    exp = forest([("r", None, None), ("a", "r", "prune"), ("b", "a", "finetune"), ("c", "b", "prune")])
    keys = operation_keys(exp)
    assert keys["a"] == ("prune", 0) and keys["c"] == ("prune", 1)
    lay = forest_layout(exp, "op")
    assert lay.columns[lay.positions["c"][0]] == "prune #2"


def test_conflicting_operation_order_keeps_children_right():
    exp = forest([("r", None, None), ("p", "r", "prune"), ("pq", "p", "quantize"),
                  ("q", "r", "quantize"), ("qp", "q", "prune")])
    check_invariants(exp, forest_layout(exp, "op"))


@pytest.mark.parametrize("mode", ["step", "op"])
def test_deep_chain_does_not_recurse(mode):
    n = 3000
    exp = forest([("m0", None, None)] + [(f"m{i}", f"m{i - 1}", "op" if i % 2 else "ft") for i in range(1, n)])
    lay = forest_layout(exp, mode)
    assert lay.positions[f"m{n - 1}"][0] == n - 1
    assert {p[1] for p in lay.positions.values()} == {0.0}
    check_invariants(exp, lay)


@pytest.mark.parametrize("mode", ["step", "op"])
def test_wide_fan(mode):
    exp = forest([("root", None, None)] + [(f"c{i}", "root", f"op{i % 7}") for i in range(500)])
    lay = forest_layout(exp, mode)
    check_invariants(exp, lay)
    assert lay.n_rows == 500


def test_single_model_and_memoized():
    exp = forest([("only", None, None)])
    lay = forest_layout(exp, "op")
    assert lay.positions == {"only": (0, 0.0)} and lay.columns == ["base"]
    assert forest_layout(exp, "op") is lay


def test_unknown_mode():
    with pytest.raises(ValueError):
        forest_layout(forest([("a", None, None)]), "radial")


@st.composite
def random_forests(draw):
    n = draw(st.integers(1, 40))
    edges = []
    for i in range(n):
        base = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        op = draw(st.sampled_from(["prune", "quantize", "ft", "distill"])) if base is not None else None
        edges.append((f"m{i}", None if base is None else f"m{base}", op))
    return forest(edges)


@settings(max_examples=60, deadline=None)
@given(random_forests(), st.sampled_from(["step", "op"]))
def test_random_forests_never_overlap(exp, mode):
    check_invariants(exp, forest_layout(exp, mode))
