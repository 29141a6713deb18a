"""Selection Details on realistic experiments in the original model-info format (tests/fixtures):
ImageNet-style prune → calibrate / retrain → quantize chains, T5-style "restore layers" recipes
whose operations declare parameter mappings, and repeated prune / fine-tune cycles with several
pruning methods. Regression guard: how many of a fixed set of selections chart with at most two
variables without refinement (issue 11: 195 of 281 before the readable-recipe rework, 230 after;
issue 25's small-selection rule: 276).
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from cnc.analysis.comparability import explain_selection
from cnc.experiment.config import load_experiment
from cnc.experiment.forest import Experiment
from cnc.ui.selection_chart import value_text

FIXTURES = Path(__file__).parent / "fixtures"
CHARTABLE = {"imagenet_style": (107, 109), "t5_style": (76, 78), "cifar_prune_cycles": (93, 94)}


def load(name: str) -> Experiment:
    return load_experiment(FIXTURES / f"{name}_models.json")


def selections(exp: Experiment) -> list[list[str]]:
    """Every subtree and every sibling set of 2+ models, and 60 seeded hand-picks of 2-6 models."""
    out = [exp.subtree(m) for m in exp.models if len(exp.subtree(m)) >= 2]
    out += [list(kids) for kids in exp.children.values() if len(kids) >= 2]
    rng = random.Random(0)
    ids = list(exp.models)
    out += [rng.sample(ids, rng.randint(2, 6)) for _ in range(60)]
    return out


@pytest.mark.parametrize("name", sorted(CHARTABLE))
def test_selections_chart_with_two_variables_and_read_as_recipes(name):
    exp = load(name)
    chosen = selections(exp)
    chartable = 0
    for sel in chosen:
        expl = explain_selection(exp, sel)
        chartable += not expl.needs_refinement
        for var in expl.variables:
            for text in [var.label] + [value_text(var, v) for v in var.values]:
                assert "#" not in text and " + " not in text and " & " not in text, (sel, var)
    assert (chartable, len(chosen)) >= CHARTABLE[name]


def test_imagenet_calibrate_and_retrain_before_quantize_are_presences():
    exp = load("imagenet_style")
    p = "resnet50trained-magnitudepruning50_compressed"
    expl = explain_selection(exp, [f"{p}_quantizeint8", f"{p}-recalibrated_quantizeint8", f"{p}-retrained_quantizeint8"])
    assert [(v.label, v.texts) for v in expl.variables] == [("calibrate", ("no", "yes")), ("train", ("no", "yes"))]
    assert expl.start == "train 90 → magnitude prune 0.5"


def test_t5_restore_layers_is_one_parameter():
    exp = load("t5_style")
    expl = explain_selection(exp, [f"pruning0.1_restore{x}" for x in ("layernorms", "query", "decoder")])
    assert [(v.label, v.values) for v in expl.variables] == [("layers", ("decoder", "layernorms", "query"))]


def test_prune_cycles_read_in_applied_order_with_values():
    exp = load("cifar_prune_cycles")
    expl = explain_selection(exp, exp.subtree("resnet20-magnitude30"))
    assert not expl.needs_refinement
    assert "fine-tune 10 → magnitude prune 0.3 → fine-tune 5" in expl.variables[0].texts


def test_small_selection_from_different_branches_is_one_bar_per_model():
    exp = load("cifar_prune_cycles")
    expl = explain_selection(exp, ["resnet20-taylor60-ft-q8", "resnet20-magnitude30-ft-magnitude30-ft"])
    assert expl.by_recipe and [v.label for v in expl.variables] == ["recipe"]
    assert set(expl.variables[0].values) == {"taylor prune 0.6 → fine-tune 10 → quantize 8",
                                            "magnitude prune 0.3 → fine-tune 10 → magnitude prune 0.3 → fine-tune 5"}
