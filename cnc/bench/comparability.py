"""comparability.*: explaining a selection with few variables (Selection Details, docs/comparability.md).

Two kinds of selection: random models from the shared synthetic forest (six operations compete at
every step, so the search is shallow and the cost is in building and simplifying columns), and
random models from a recipe-search forest (prune → fine-tune → calibrate → quantize with optional
steps and repeats, where few operations compete, so the search branches the most).
`comparability.shapes` explains 100 seeded random picks of 3-6 models per realistic fixture and
counts how they chart (cnc/bench/chart_shapes.py; docs/comparability.md, "Small selections").
"""
from __future__ import annotations

import random

from cnc.analysis.comparability import explain_selection, refine
from cnc.bench import chart_shapes, median_ms
from cnc.experiment.forest import Experiment, parse_experiment
from cnc.experiment.synthetic import make_experiment

_STAGES = (
    ("magnitude prune", {"amount": [0.1, 0.3, 0.5, 0.7, 0.9]}),
    ("gradient prune", {"amount": [0.3, 0.5, 0.7]}),
    ("fine-tune", {"epochs": [1, 3]}),
    ("calibrate", {}),
    ("quantize", {"bits": [4, 8]}),
)


def recipe_search_experiment(n_models: int, seed: int = 0) -> Experiment:
    """A forest of pipeline recipes: stages in order, some skipped, pruning sometimes repeated."""
    rng = random.Random(seed)
    models: list[dict] = [{"id": "root", "base": None}]
    stage = {"root": -1}
    while len(models) < n_models:
        parent = rng.choice(models)["id"]
        s = stage[parent]
        later = [k for k in range(len(_STAGES)) if k > s or (k < 2 and s < 3 and rng.random() < 0.2)]
        if not later:
            continue
        k = min(later) if rng.random() < 0.5 else rng.choice(later)
        op, grid = _STAGES[k]
        mid = f"m{len(models)}"
        stage[mid] = k
        params = {p: rng.choice(v) for p, v in grid.items()}
        models.append({"id": mid, "base": parent, "operation": {"name": op, "parameters": params}})
    return parse_experiment({"models": models}, where=f"<recipe search {n_models}>")


def _selection(experiment: Experiment, k: int, seed: int) -> list[str]:
    return random.Random(seed).sample(list(experiment.models), k)


def scenarios(quick: bool) -> list[dict]:
    out = []
    for k in (10,) if quick else (10, 50, 200, 1000):
        forest = make_experiment(2 * k, seed=k)
        selected = _selection(forest, k, seed=k)
        out.append({"scenario": "comparability.explain", "models": k,
                    "ms": median_ms(lambda: explain_selection(forest, selected))})
        recipes = recipe_search_experiment(2 * k, seed=k)
        chosen = _selection(recipes, k, seed=k)
        out.append({"scenario": "comparability.explain_recipes", "models": k,
                    "ms": median_ms(lambda: explain_selection(recipes, chosen))})
        expl = explain_selection(recipes, chosen)
        half = chosen[: k // 2]
        out.append({"scenario": "comparability.refine", "models": k,
                    "ms": median_ms(lambda: (refine(expl, keep_models=half), refine(expl, flatten=True)))})
    if chart_shapes.fixture_paths():
        out.append({"scenario": "comparability.shapes", **chart_shapes.totals()})
    return out
