"""Selection Details' explanation of a selection with few variables (docs/comparability.md)."""
from __future__ import annotations

import random

import pytest

from cnc.analysis import comparability, explain_search
from cnc.analysis.comparability import Explanation, Variable, explain_selection, refine
from cnc.experiment.forest import Experiment, parse_experiment


def forest(*models: tuple) -> Experiment:
    """Models as (id, base, operation name or None, parameters)."""
    return parse_experiment({"models": [
        {"id": mid, "base": base, "operation": {"name": op, "parameters": params} if op else None}
        for mid, base, op, params in models
    ]})


def table(expl: Explanation) -> list[tuple]:
    """(label, kind, values) per variable, values as they read (parameters: as they are)."""
    return [(v.label, v.kind, v.values if v.kind == "parameter" else v.texts) for v in expl.variables]


def texts(expl: Explanation, model: str) -> tuple:
    """How a model's values read."""
    return tuple(v.text(x) for v, x in zip(expl.variables, expl.rows[model]))


def assert_distinct_recipes_distinct_rows(expl: Explanation) -> None:
    """Two models with different recipes must never look alike."""
    seen: dict[tuple, str] = {}
    for mid, row in expl.rows.items():
        other = seen.setdefault(row, mid)
        assert other == mid or expl.recipe(other) == expl.recipe(mid), (other, mid, row)


# ---------------------------------------------------------------- hand-built trees

SUCCESSIVE = forest(
    ("base", None, None, {}),
    ("p", "base", "prune", {"amount": 0.5}),
    ("f", "p", "fine-tune", {"epochs": 3}),
    ("q", "f", "quantize", {"bits": 8}),
)


def test_descendants_of_one_model_are_successive_presences():
    expl = explain_selection(SUCCESSIVE, ["p", "f", "q"])
    assert table(expl) == [
        ("fine-tune", "presence", ("no", "yes")),
        ("quantize", "presence", ("no", "yes")),
    ]
    assert expl.rows == {"p": ("none", "none"), "f": ("fine-tune", "none"), "q": ("fine-tune", "quantize")}
    assert not expl.needs_refinement


def test_three_successive_presences_merge_into_one_cumulative_chain():
    expl = explain_selection(SUCCESSIVE, ["base", "p", "f", "q"])
    chain = "prune 0.5 → fine-tune 3 → quantize 8"
    assert table(expl) == [
        ("prune → fine-tune → quantize", "sequence", ("none", "prune 0.5", "prune 0.5 → fine-tune 3", chain)),
    ]
    assert {m: texts(expl, m) for m in expl.rows} == {
        "base": ("none",), "p": ("prune 0.5",), "f": ("prune 0.5 → fine-tune 3",), "q": (chain,)}
    assert expl.recipe("q") == chain
    assert expl.recipe("base") == "none"


AMOUNTS = (0.1, 0.5, 0.9, 0.99)
SWEEP = forest(
    ("base", None, None, {}),
    *[(f"p{a}", "base", "magnitude prune", {"amount": a}) for a in AMOUNTS],
    *[(f"f{a}", f"p{a}", "fine-tune", {"epochs": 3}) for a in AMOUNTS],
)


def test_same_follow_up_on_several_parents_gives_parameter_by_follow_up():
    ids = [f"{k}{a}" for a in AMOUNTS for k in ("p", "f")]
    expl = explain_selection(SWEEP, ids)
    assert table(expl) == [
        ("amount", "parameter", AMOUNTS),
        ("fine-tune", "presence", ("no", "yes")),
    ]
    assert expl.rows["p0.5"] == (0.5, "none")
    assert expl.rows["f0.5"] == (0.5, "fine-tune")
    assert list(expl.rows) == ids  # selection order is kept
    assert not expl.needs_refinement


def test_interior_model_gets_none_and_redundant_presence_is_dropped():
    # The base stops before the prune: "amount = none" already says "not pruned".
    expl = explain_selection(SWEEP, ["base", "p0.1", "f0.1", "p0.9", "f0.9"])
    assert table(expl) == [
        ("amount", "parameter", ("none", 0.1, 0.9)),
        ("fine-tune", "presence", ("no", "yes")),
    ]
    assert expl.rows["base"] == ("none", "none")
    assert expl.rows["f0.9"] == (0.9, "fine-tune")


def test_optional_intermediate_step_is_a_presence():
    exp = forest(
        ("base", None, None, {}),
        ("p", "base", "prune", {}),
        ("q", "p", "quantize", {}),
        ("c", "p", "calibrate", {}),
        ("cq", "c", "quantize", {}),
    )
    expl = explain_selection(exp, ["q", "cq"])
    assert table(expl) == [("calibrate", "presence", ("no", "yes"))]
    assert expl.rows == {"q": ("none",), "cq": ("calibrate",)}


def test_optional_intermediate_step_with_a_parameter_sweep():
    exp = forest(
        ("base", None, None, {}),
        ("p", "base", "prune", {}),
        ("q4", "p", "quantize", {"bits": 4}),
        ("q8", "p", "quantize", {"bits": 8}),
        ("c", "p", "calibrate", {}),
        ("cq4", "c", "quantize", {"bits": 4}),
        ("cq8", "c", "quantize", {"bits": 8}),
    )
    expl = explain_selection(exp, ["q4", "q8", "cq4", "cq8"])
    assert table(expl) == [
        ("calibrate", "presence", ("no", "yes")),
        ("bits", "parameter", (4, 8)),
    ]
    assert expl.rows["cq8"] == ("calibrate", 8)
    assert expl.rows["q4"] == ("none", 4)


TWO_ROOTS = forest(
    ("r1", None, None, {}),
    ("r2", None, None, {}),
    ("a", "r1", "prune", {"amount": 0.5}),
    ("b", "r1", "prune", {"amount": 0.7}),
    ("c", "r2", "prune", {"amount": 0.5}),
    ("d", "r2", "prune", {"amount": 0.7}),
)


def test_two_root_models_give_a_base_variable():
    expl = explain_selection(TWO_ROOTS, ["a", "b", "c", "d"])
    assert table(expl) == [
        ("base model", "operation", ("r1", "r2")),
        ("amount", "parameter", (0.5, 0.7)),
    ]
    assert expl.rows == {"a": ("r1", 0.5), "b": ("r1", 0.7), "c": ("r2", 0.5), "d": ("r2", 0.7)}
    assert expl.recipe("d") == "r2 → prune 0.7"


def test_roots_themselves_selected():
    expl = explain_selection(TWO_ROOTS, ["r1", "r2", "a", "d"])
    assert table(expl) == [
        ("base model", "operation", ("r1", "r2")),
        ("amount", "parameter", ("none", 0.5, 0.7)),
    ]
    assert expl.rows["r2"] == ("r2", "none")


def test_repeated_operation_on_a_path_is_its_own_operation():
    exp = forest(
        ("base", None, None, {}),
        ("p", "base", "prune", {"amount": 0.5}),
        ("f", "p", "fine-tune", {}),
        ("p2", "f", "prune", {"amount": 0.5}),
        ("f2", "p2", "fine-tune", {}),
    )
    expl = explain_selection(exp, ["p", "f", "p2", "f2"])
    # Values are the steps in applied order: no "#2", and the prune's amount is shown.
    chain = "fine-tune → prune 0.5 → fine-tune"
    assert table(expl) == [
        ("fine-tune → prune → fine-tune", "sequence", ("none", "fine-tune", "fine-tune → prune 0.5", chain)),
    ]
    assert texts(expl, "p2") == ("fine-tune → prune 0.5",)


def test_repeated_operation_parameters_stay_apart():
    exp = forest(
        ("base", None, None, {}),
        ("a", "base", "prune", {"amount": 0.5}),
        ("a2", "a", "prune", {"amount": 0.5}),
        ("b", "base", "prune", {"amount": 0.7}),
        ("b2", "b", "prune", {"amount": 0.7}),
    )
    expl = explain_selection(exp, ["a", "a2", "b", "b2"])
    assert table(expl) == [
        ("prune amount", "parameter", (0.5, 0.7)),
        ("second prune amount", "parameter", ("none", 0.5, 0.7)),
    ]
    assert expl.rows["a2"] == (0.5, 0.5)
    assert expl.rows["b"] == (0.7, "none")


def test_operation_by_shared_parameter():
    exp = forest(
        ("base", None, None, {}),
        ("m5", "base", "magnitude prune", {"amount": 0.5}),
        ("m7", "base", "magnitude prune", {"amount": 0.75}),
        ("g5", "base", "gradient prune", {"amount": 0.5}),
        ("g7", "base", "gradient prune", {"amount": 0.75}),
    )
    expl = explain_selection(exp, ["m5", "m7", "g5", "g7"])
    assert table(expl) == [
        ("pruning", "operation", ("magnitude prune", "gradient prune")),
        ("amount", "parameter", (0.5, 0.75)),
    ]
    assert expl.rows["g7"] == ("gradient prune", 0.75)
    assert expl.variables[0].cost + expl.variables[1].cost == 6


def test_order_of_operations_is_not_lost():
    # P then Q vs Q then P: same set of operations, different recipes.
    exp = forest(
        ("base", None, None, {}),
        ("a", "base", "P", {}),
        ("aq", "a", "Q", {}),
        ("b", "base", "Q", {}),
        ("bp", "b", "P", {}),
    )
    expl = explain_selection(exp, ["aq", "bp"])
    assert expl.rows["aq"] != expl.rows["bp"]
    assert_distinct_recipes_distinct_rows(expl)


def test_single_model_and_empty_selection():
    one = explain_selection(SUCCESSIVE, ["f"])
    assert one.variables == [] and one.rows == {"f": ()} and not one.needs_refinement
    assert explain_selection(SUCCESSIVE, []).rows == {}


def test_unknown_and_duplicate_ids_are_ignored():
    expl = explain_selection(SUCCESSIVE, ["p", "gone", "f", "p"])
    assert list(expl.rows) == ["p", "f"]
    assert table(expl) == [("fine-tune", "presence", ("no", "yes"))]


# ---------------------------------------------------------------- refinement

GRID_AMOUNTS = (0.2, 0.4, 0.6, 0.8)
GRID_BITS = (2, 4, 8, 16)
GRID = forest(
    ("base", None, None, {}),
    *[(f"p{a}", "base", "prune", {"amount": a}) for a in GRID_AMOUNTS],
    *[(f"q{a}-{b}", f"p{a}", "quantize", {"bits": b}) for a in GRID_AMOUNTS for b in GRID_BITS],
    *[(f"f{a}-{b}", f"q{a}-{b}", "fine-tune", {}) for a in GRID_AMOUNTS for b in GRID_BITS],
)
GRID_SELECTION = [f"{k}{a}-{b}" for a in GRID_AMOUNTS for b in GRID_BITS for k in ("q", "f")]


@pytest.fixture
def grid() -> Explanation:
    return explain_selection(GRID, GRID_SELECTION)


def test_three_independent_variables_need_refinement(grid):
    assert grid.needs_refinement
    assert table(grid) == [
        ("amount", "parameter", GRID_AMOUNTS),
        ("bits", "parameter", GRID_BITS),
        ("fine-tune", "presence", ("no", "yes")),
    ]
    assert grid.rows["f0.4-8"] == (0.4, 8, "fine-tune")


def test_refine_to_a_subset_of_variables_fixes_the_others(grid):
    sub = refine(grid, keep_variables=[0, 1])
    assert not sub.needs_refinement
    assert table(sub) == [("amount", "parameter", GRID_AMOUNTS), ("bits", "parameter", GRID_BITS)]
    # fine-tune is held at its most common value; on a tie the earliest ("none") wins
    assert sorted(sub.rows) == sorted(f"q{a}-{b}" for a in GRID_AMOUNTS for b in GRID_BITS)
    assert sub.rows["q0.6-16"] == (0.6, 16)


def test_refine_to_a_subset_of_models_re_explains(grid):
    models = [m for m in GRID_SELECTION if "0.2-" in m]
    sub = refine(grid, keep_models=models)
    assert not sub.needs_refinement
    assert table(sub) == [("bits", "parameter", GRID_BITS), ("fine-tune", "presence", ("no", "yes"))]
    assert sub.rows["f0.2-4"] == (4, "fine-tune")


def test_refine_flatten_gives_one_recipe_per_model(grid):
    flat = refine(grid, flatten=True)
    assert not flat.needs_refinement
    (recipe,) = flat.variables
    assert (recipe.kind, recipe.label) == ("sequence", "recipe")
    assert len(recipe.values) == len(GRID_SELECTION)
    assert flat.rows["f0.2-4"] == ("prune 0.2 → quantize 4 → fine-tune",)
    # shorter recipes first, then in the order of the variables they came from
    assert recipe.values[:3] == ("prune 0.2 → quantize 2", "prune 0.2 → quantize 4", "prune 0.2 → quantize 8")


def test_refine_combines_models_and_variables(grid):
    models = [m for m in GRID_SELECTION if m.startswith("f")]
    sub = refine(grid, keep_variables=[1, 2], keep_models=models)
    # amount is fixed (all tie at 4 models: the smallest wins); fine-tune is constant, so drops
    assert table(sub) == [("bits", "parameter", GRID_BITS)]
    assert sorted(sub.rows) == sorted(f"f0.2-{b}" for b in GRID_BITS)


def test_refine_works_on_a_hand_built_explanation():
    expl = Explanation(
        variables=[Variable("parameter", "amount", (0.5, 0.7)), Variable("presence", "ft", ("none", "ft"))],
        rows={"a": (0.5, "none"), "b": (0.7, "ft")},
        needs_refinement=False,
    )
    flat = refine(expl, flatten=True)
    assert flat.rows == {"a": ("amount 0.5",), "b": ("amount 0.7, ft",)}


# ---------------------------------------------------------------- scale and robustness

def test_large_synthetic_selection_finishes():
    from cnc.experiment.synthetic import make_experiment

    exp = make_experiment(1000, seed=3)
    expl = explain_selection(exp, list(exp.models))
    assert len(expl.rows) == 1000
    assert all(len(row) == len(expl.variables) for row in expl.rows.values())
    assert_distinct_recipes_distinct_rows(expl)
    flat = refine(expl, flatten=True)
    assert len(flat.variables) == 1


@pytest.mark.parametrize("seed", range(12))
def test_random_selections_keep_recipes_apart(seed):
    from cnc.experiment.synthetic import make_experiment

    exp = make_experiment(80, seed=seed)
    rng = random.Random(seed)
    selection = rng.sample(list(exp.models), rng.randint(2, 40))
    expl = explain_selection(exp, selection)
    assert_distinct_recipes_distinct_rows(expl)
    for var in expl.variables:
        assert len(var.values) > 1
    half = refine(expl, keep_models=selection[: len(selection) // 2 + 1])
    assert_distinct_recipes_distinct_rows(half)


def test_search_budget_fallback_still_explains(monkeypatch):
    # With no budget for per-operation branches only operation-type steps remain: costlier, but
    # still a faithful explanation.
    monkeypatch.setattr(explain_search, "EXPANSION_BUDGET", 0)
    exp = forest(
        ("base", None, None, {}),
        ("p", "base", "prune", {}),
        ("q", "p", "quantize", {}),
        ("c", "p", "calibrate", {}),
        ("cq", "c", "quantize", {}),
    )
    expl = explain_selection(exp, ["q", "cq"])
    assert expl.cost > comparability.COST["presence"]  # the cheapest is "calibrate: no / yes"
    assert_distinct_recipes_distinct_rows(expl)


def _random_forest(data) -> Experiment:
    """A small forest drawn by hypothesis: few operations, so the search branches a lot."""
    from hypothesis import strategies as st

    n = data.draw(st.integers(2, 25))
    models = [("m0", None, None, {})]
    for i in range(1, n):
        base = data.draw(st.sampled_from([m[0] for m in models] + [None]))
        op = data.draw(st.sampled_from(["P", "Q", "R"])) if base else None
        params = {"x": data.draw(st.sampled_from([1, 2]))} if base and data.draw(st.booleans()) else {}
        models.append((f"m{i}", base, op, params))
    return forest(*models)


def test_invariants_on_random_forests():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.data())
    def check(data):
        exp = _random_forest(data)
        selection = data.draw(st.lists(st.sampled_from(list(exp.models)), min_size=2, unique=True))
        expl = explain_selection(exp, selection)
        assert list(expl.rows) == selection
        for k, var in enumerate(expl.variables):
            assert len(var.values) > 1
            assert set(var.values) == {row[k] for row in expl.rows.values()}
        assert expl.needs_refinement == (len(expl.variables) > 2)
        assert_distinct_recipes_distinct_rows(expl)
        flat = refine(expl, flatten=True)
        assert len(set(flat.rows.values())) == len(selection)

    check()


def test_selection_order_changes_only_row_order():
    forward = explain_selection(TWO_ROOTS, ["a", "b", "c", "d"])
    backward = explain_selection(TWO_ROOTS, ["d", "c", "b", "a"])
    assert backward.variables == forward.variables
    assert backward.rows == forward.rows and list(backward.rows) == ["d", "c", "b", "a"]


def test_merged_parameters_name_their_operation():
    """QA: 'recalibrate BN & mode' with values 'mode static' did not say what 'mode' was."""
    op = lambda name, **p: {"name": name, "parameters": p}  # noqa: E731
    exp = parse_experiment({"models": [
        {"id": "p"},
        {"id": "ft", "base": "p", "operation": op("fine-tune", epochs=3)},
        {"id": "bn", "base": "p", "operation": op("recalibrate BN")},
        {"id": "ft-q8s", "base": "ft", "operation": op("simulated int8", mode="static")},
        {"id": "ft-q8d", "base": "ft", "operation": op("simulated int8", mode="dynamic")},
        {"id": "ft-p2", "base": "ft", "operation": op("prune", amount=0.8)},
        {"id": "ft-p2-ft", "base": "ft-p2", "operation": op("fine-tune", epochs=3)},
    ]})
    expl = explain_selection(exp, list(exp.models))
    texts = [v.label for v in expl.variables] + [str(x) for row in expl.rows.values() for x in row]
    assert all("simulated int8" in t for t in texts if "mode" in t), texts
