"""Issue 25: a handful of models from different branches chart as a person would draw them.

Fixtures in the original model-info format (tests/fixtures): `imagenet_branches` (ResNet-50 and
MobileNetV2, magnitude / gradient pruning, a repeated prune, calibrate / retrain, quantize with the
original files' `{amount: int8, method: quantize}` and `Train (epochs: 90)` tags) and `t5_recipes`
(pruning sweeps, restore / retrain layers, selective pruning after restoring layer norms).
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from cnc.analysis.comparability import explain_selection
from cnc.analysis.encoding import tooltip
from cnc.analysis.recipe_text import model_name, node_label, operation_name, step_text
from cnc.bench import chart_shapes
from cnc.experiment.config import load_experiment
from cnc.experiment.forest import Experiment
from cnc.ui import model_map, model_picker, scatter
from cnc.ui import selection_details as sd
from cnc.ui.selection_chart import value_text
from cnc.ui.selection_table import table_data

FIXTURES = Path(__file__).parent / "fixtures"
R50 = "resnet50trained"
MIXED_BRANCHES = [f"{R50}-magnitudepruning50_compressed-retrained", f"{R50}-magnitudepruning50-magnitudepruning50_compressed",
                  f"{R50}-magnitudepruning50-magnitudepruning50_compressed_quantizeint8",
                  f"{R50}-magnitudepruning90_compressed_quantizeint8", f"{R50}-gradientpruning75_compressed_quantizeint8"]
TWO_ARCHITECTURES = [f"{R50}-gradientpruning90_compressed_quantizeint8", f"{R50}-magnitudepruning90_compressed_quantizeint8",
                     "mobilenetv2trained-magnitudepruning25_compressed-recalibrated_quantizeint8",
                     f"{R50}-magnitudepruning50_compressed-recalibrated_quantizeint8"]
T5_RECIPES = ["pruning0.5", "pruning0.9_restorelayernorms", "pruning0.1_restorelayernorms_pruning0.4-feedforward",
              "pruning0.9_retrain", "pruning0.7_restorelayernorms_retrain"]
CASES = {  # name -> (fixture, selection, recipes as they read)
    "mixed-branches": ("imagenet_branches", MIXED_BRANCHES, [
        "magnitude prune 0.5 → train 30", "magnitude prune 0.5 → magnitude prune 0.5",
        "magnitude prune 0.5 → magnitude prune 0.5 → quantize int8", "magnitude prune 0.9 → quantize int8",
        "gradient prune 0.75 → quantize int8"]),
    "two-architectures": ("imagenet_branches", TWO_ARCHITECTURES, [
        f"{R50} → gradient prune 0.9 → quantize int8", f"{R50} → magnitude prune 0.9 → quantize int8",
        "mobilenetv2trained → magnitude prune 0.25 → calibrate train batch → quantize int8",
        f"{R50} → magnitude prune 0.5 → calibrate train batch → quantize int8"]),
    "t5-restore-retrain": ("t5_recipes", T5_RECIPES, [
        "pruning 0.5", "pruning 0.9 → restore layernorms",
        "pruning 0.1 → restore layernorms → selective pruning sparsity 0.4, feedforward",
        "pruning 0.9 → retrain layernorms", "pruning 0.7 → restore layernorms → retrain layernorms"]),
}


def load(name: str) -> Experiment:
    return load_experiment(FIXTURES / f"{name}_models.json")


def ctx_for(exp: Experiment, color: str = "Top-1 Accuracy") -> SimpleNamespace:
    return SimpleNamespace(experiment=exp, version=id(exp), config=SimpleNamespace(defaults=SimpleNamespace(color=color)))


# ---------------------------------------------------------------- the small-selection rule

@pytest.mark.parametrize("case", sorted(CASES))
def test_issue_cases_chart_one_bar_per_model_labelled_by_recipe(case):
    fixture, selection, recipes = CASES[case]
    expl = explain_selection(load(fixture), selection)
    assert expl.by_recipe and [v.label for v in expl.variables] == ["recipe"]
    assert [expl.rows[m][0] for m in selection] == recipes
    assert [expl.variables[0].text(expl.rows[m][0]) for m in selection] == recipes


def test_mixed_branches_start_after_the_shared_training():
    expl = explain_selection(load("imagenet_branches"), MIXED_BRANCHES)
    assert expl.start == "train 90"


@pytest.mark.parametrize("metric, best_first", [("Top-1 Accuracy", max), ("Latency", min)])
def test_recipe_bars_are_ordered_by_the_current_metric(metric, best_first):
    exp = load("imagenet_branches")
    content = sd.panel_content(ctx_for(exp), MIXED_BRANCHES, metric)
    layout = content.figure["layout"]
    axis = layout["yaxis"] if "yaxis" in layout and layout["yaxis"].get("categoryarray") else layout["xaxis"]
    order = [x.replace("<br>", " ") for x in axis["categoryarray"]]
    by_recipe = {content.chart.recipe(m): exp.models[m].metrics[metric] for m in MIXED_BRANCHES}
    values = [by_recipe[" ".join(x.split())] for x in order]
    assert values == sorted(values, reverse=best_first is max)
    assert "one bar per model, by recipe, best first" in sd.summary_text(content)


def test_missing_metric_values_go_last():
    exp = load("imagenet_branches")
    exp.models[MIXED_BRANCHES[0]].metrics["Top-1 Accuracy"] = None
    fig = sd.panel_content(ctx_for(exp), MIXED_BRANCHES, "Top-1 Accuracy").figure
    assert fig["layout"]["xaxis"]["categoryarray"][-1].replace("<br>", " ") == "magnitude prune 0.5 → train 30"


@pytest.mark.parametrize("fixture, selection, labels", [
    # a sibling set: calibrate, train and quantize after one prune
    ("imagenet_branches", [f"{R50}-magnitudepruning50_compressed{s}" for s in ("_quantizeint8", "-recalibrated", "-retrained")],
     ["first step"]),
    # a sweep: the same quantization after four prunes
    ("imagenet_branches", [f"{R50}-magnitudepruning{a}_compressed_quantizeint8" for a in (25, 50, 75, 90)], ["amount"]),
    # a 2 x 2 grid: prune amount x quantized or not
    ("imagenet_branches", [f"{R50}-magnitudepruning{a}_compressed{q}" for a in (50, 90) for q in ("", "_quantizeint8")],
     ["amount", "quantize"]),
    # a sibling set of restores
    ("t5_recipes", [f"pruning0.3_restore{x}" for x in ("layernorms", "query", "decoder")], ["layers"]),
    # a small subtree: prune -> restore -> retrain
    ("t5_recipes", ["pruning0.9", "pruning0.9_restorelayernorms", "pruning0.9_restorelayernorms_retrain"],
     ["restore", "retrain"]),
])
def test_selections_that_group_keep_the_structured_chart(fixture, selection, labels):
    expl = explain_selection(load(fixture), selection)
    assert not expl.by_recipe and [v.label for v in expl.variables] == labels


def test_random_small_picks_chart_as_recipes_or_with_two_variables_at_most():
    """The figures of docs/comparability.md ("Small selections"): 205 / 161 / 134 of 500 random
    picks charted as recipe bars / 1-2 variables / 3+ variables before issue 25."""
    totals = chart_shapes.totals()
    assert totals["picks"] == 500 and totals["3+_variables"] == 0
    assert totals["recipe_bars"] >= 400 and totals["groups_as_recipes"].startswith("0/")


# ---------------------------------------------------------------- one formatter

def test_step_text_drops_values_that_repeat_the_operation_name():
    assert step_text("quantize", {"amount": "int8", "method": "quantize"}) == "quantize int8"
    assert step_text("Train", {"epochs": 90}) == "train 90"
    assert step_text("quantize", {"amount": "int8", "method": "static"}) == "quantize int8, static"
    assert step_text("Selective Pruning", {"sparsity": 0.4, "layers": "feedforward"}) == \
        "selective pruning sparsity 0.4, feedforward"
    assert step_text("fine-tune", {"epochs": 3, "lr": 0.001}) == "fine-tune epochs 3, lr 0.001"
    assert step_text("magnitude prune", {"amount": 0.5, "criterion": "magnitude"}) == "magnitude prune 0.5"
    assert operation_name("GPTQ Quantize") == "GPTQ quantize" and operation_name("Fine-Tune") == "fine-tune"


def test_auto_generated_tags_read_as_the_id():
    exp = load("imagenet_branches")
    assert model_name(exp.models[R50]) == R50  # tag "Train (epochs: 90)"
    assert model_name(exp.models[MIXED_BRANCHES[3]]) == MIXED_BRANCHES[3]  # "Quantize (amount: int8, ...)"
    assert model_name(load("cifar_prune_cycles").models["resnet20"]) == "ResNet-20"  # a real name stays
    assert node_label(exp.models[MIXED_BRANCHES[3]]) == "quantize int8" and node_label(exp.models[R50]) == R50


_OTHER_FORMAT = re.compile(r"\w \([\w ]+: |amount int8|method quantize|Train \(|Quantize \(")


def test_every_place_a_person_reads_a_step_uses_one_format():
    """Table, chart axis / legend / hover, Refine Comparison, map tooltip and node labels, Pareto
    chips, compare picker: "quantize int8" and "train 30", never "Name (key: value)"."""
    exp = load("imagenet_branches")
    ctx = ctx_for(exp)
    shown: list[str] = []
    for selection in (MIXED_BRANCHES, TWO_ARCHITECTURES, exp.subtree(f"{R50}-magnitudepruning50_compressed")):
        content = sd.panel_content(ctx, selection, None)
        data = table_data(exp, content)
        shown += [str(c) for row in data["rows"] for c in row[:1] + row[3:]] + [c[0] for c in data["columns"]]
        fig = content.figure
        shown += [x for t in fig["data"] for x in t["x"] + t["hovertext"] + [t["name"]]]
        shown += [fig["layout"]["legend"]["title"]["text"], fig["layout"]["xaxis"]["title"]["text"]]
        props = sd._refine_controls(content.explanation, sd.Refinement(), selection, exp)
        shown += [o["label"] for o in props["vars_options"] + props["xmod_options"]]
        shown += [value_text(v, x) for v in content.explanation.variables for x in v.values]
    for mid in MIXED_BRANCHES + TWO_ARCHITECTURES:
        shown += tooltip(exp, mid)
    shown += [o[k] for o in model_picker.options(exp, None, "quantize") for k in ("label", "title")]
    shown += model_map._identity(exp)["data"]["label"]  # map node labels
    shown += [c.children for c in scatter.front_list(exp, MIXED_BRANCHES)[1:]]  # Pareto front chips
    text = "\n".join(shown)
    assert "quantize int8" in text and "train 30" in text
    assert not _OTHER_FORMAT.search(text), _OTHER_FORMAT.search(text)


def test_variable_names_are_short_phrases():
    """Never internal parts glued together ("magnitude prune amount and base", "operation")."""
    glued = re.compile(r"^(operation|base)$|\b(amount|sparsity|layers|epochs|data|method) and |\band base\b| at step")
    for fixture in ("imagenet_branches", "t5_recipes"):
        exp = load(fixture)
        for sel in chart_shapes.random_picks(exp) + chart_shapes.groups(exp):
            for var in explain_selection(exp, sel).variables:
                assert not glued.search(var.label), (fixture, sel, var.label)


def test_first_step_and_pruning_name_operation_variables():
    exp = load("imagenet_branches")
    prunes = [f"{R50}-{k}pruning{a}_compressed" for k in ("magnitude", "gradient") for a in (50, 90)]
    assert [v.label for v in explain_selection(exp, prunes).variables] == ["pruning", "amount"]
    after = [f"{R50}-magnitudepruning50_compressed{s}" for s in ("_quantizeint8", "-recalibrated", "-retrained")]
    assert [v.label for v in explain_selection(exp, after).variables] == ["first step"]
