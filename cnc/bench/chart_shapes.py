"""How Selection Details charts small selections of realistic experiments (issue 25).

Why: the small-selection rule (docs/comparability.md, "Small selections") should chart a handful
of models from different branches as one bar per model, and keep the structured chart wherever it
groups models. This counts, over seeded random picks of 3-6 models from the realistic fixtures in
the original model-info format (tests/fixtures/*_models.json), how many chart as one bar per model,
with one or two grouping variables, and with more (Refine Comparison opens); and, as a guard, how
many subtrees and sibling sets chart as one bar per model.

    python -m cnc.bench.chart_shapes            # a table per fixture
    python -m cnc.bench --only comparability    # the totals as the `comparability.shapes` record
"""
from __future__ import annotations

import random
import sys
import time
from collections import Counter
from pathlib import Path

from cnc.analysis.comparability import Explanation, explain_selection
from cnc.experiment.config import load_experiment
from cnc.experiment.forest import Experiment

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
PICKS = 100  # per fixture
SEED = 25
SHAPES = ("recipe bars", "1-2 variables", "3+ variables", "identical")


def fixture_paths() -> list[Path]:
    """The realistic experiments (empty when the package runs without its tests folder)."""
    return sorted(FIXTURES.glob("*_models.json")) if FIXTURES.is_dir() else []


def random_picks(exp: Experiment, picks: int = PICKS, seed: int = SEED) -> list[list[str]]:
    rng = random.Random(seed)
    ids = list(exp.models)
    return [rng.sample(ids, rng.randint(3, 6)) for _ in range(picks)]


def groups(exp: Experiment) -> list[list[str]]:
    """Subtrees and sibling sets of 2+ models: the selections the structured chart is for."""
    out = [exp.subtree(m) for m in exp.models if len(exp.subtree(m)) >= 2]
    return out + [list(kids) for kids in exp.children.values() if len(kids) >= 2]


def shape(expl: Explanation) -> str:
    if expl.by_recipe:
        return "recipe bars"
    if not expl.variables:
        return "identical"
    return "1-2 variables" if len(expl.variables) <= 2 else "3+ variables"


def count(exp: Experiment) -> tuple[Counter, int, int, float]:
    """(shapes of the random picks, subtrees/sibling sets charted by recipe, how many there are,
    ms spent explaining)."""
    t0 = time.perf_counter()
    shapes = Counter(shape(explain_selection(exp, sel)) for sel in random_picks(exp))
    structured = groups(exp)
    flat = sum(explain_selection(exp, sel).by_recipe for sel in structured)
    return shapes, flat, len(structured), (time.perf_counter() - t0) * 1000


def totals() -> dict:
    """The counts over every fixture, as one bench record's extra fields."""
    out: Counter = Counter()
    flat = n_groups = 0
    ms = 0.0
    for path in fixture_paths():
        shapes, f, g, t = count(load_experiment(path))
        out.update(shapes)
        flat, n_groups, ms = flat + f, n_groups + g, ms + t
    return {"ms": round(ms, 1), "picks": sum(out.values()), **{s.replace(" ", "_"): out[s] for s in SHAPES},
            "groups_as_recipes": f"{flat}/{n_groups}"}


def main() -> int:
    print(f"{'fixture':<22}" + "".join(f"{s:>15}" for s in SHAPES) + f"{'groups as recipes':>20}")
    for path in fixture_paths():
        shapes, flat, n_groups, _ = count(load_experiment(path))
        name = path.name.removesuffix("_models.json")
        print(f"{name:<22}" + "".join(f"{shapes[s]:>15}" for s in SHAPES) + f"{flat:>14}/{n_groups}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
