"""Labels that tell side-by-side models apart (cnc/analysis/short_labels.py), on real experiment
files: the original system's reference files, the two demos' trees, a user-style file whose
operations have parameters."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from cnc.analysis.pareto import pareto_front
from cnc.analysis.recipe_text import model_name, node_label
from cnc.analysis.short_labels import distinct_labels, sibling_labels
from cnc.experiment.config import load_experiment
from cnc.ui import model_map, scatter

FIXTURES = Path(__file__).parent / "fixtures"
FILES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".json", ".yaml"))
WIDTH = model_map.MAX_LABEL


def _cut(text: str, width: int) -> str:
    """What the view would show of a label after truncation to `width` characters."""
    return text if len(text) <= width else text[: width - 1] + "…"


def test_the_files_are_the_ones_the_issue_names():
    assert {"original_model_info.json", "t5_recipes_models.json", "digits_demo_models.yaml",
            "text_demo_models.yaml", "user_parametrised.yaml"} <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_no_two_siblings_read_the_same_on_the_map(name):
    exp = load_experiment(FIXTURES / name)
    labels = sibling_labels(exp, WIDTH)
    siblings = defaultdict(list)
    for mid, model in exp.models.items():
        siblings[model.base].append(mid)
    for base, ids in siblings.items():
        fulls = {node_label(exp.models[m]) for m in ids}
        shown = [_cut(labels[m], WIDTH) for m in ids]
        assert all(len(s) <= WIDTH and "→ →" not in s and not s.endswith("→") for s in shown)
        if len(fulls) == len(ids):  # distinct recipes: distinct labels
            assert len(set(shown)) == len(shown), (base, shown)
    assert model_map._identity(exp)["data"]["label"] == list(labels.values())


def test_the_old_cut_did_collide_where_the_new_labels_do_not():
    """The issue's case, so the test above is not vacuous: cutting at the end made siblings equal."""
    for name in ("user_parametrised.yaml", "digits_demo_models.yaml", "t5_recipes_models.json"):
        exp = load_experiment(FIXTURES / name)
        groups = defaultdict(list)
        for m in exp.models.values():
            groups[m.base].append(_cut(node_label(m), WIDTH))
        assert any(len(set(g)) < len(g) for g in groups.values()), name


def test_the_part_that_differs_is_kept_and_shared_words_shortened():
    exp = load_experiment(FIXTURES / "user_parametrised.yaml")
    labels = sibling_labels(exp, WIDTH)
    assert labels["g10"] == "global mag. prune 0.1" and labels["g30"] == "global mag. prune 0.3"
    assert labels["l10"] == "layer mag. prune 0.1"
    assert labels["g30-ft-q4"] == "bits 4, gs 128" and labels["g30-ft-q4g32"] == "bits 4, gs 32"
    assert labels["base"] == "ResNet-18 baseline"  # short labels stay as they are
    demo = sibling_labels(load_experiment(FIXTURES / "digits_demo_models.yaml"), WIDTH)
    assert demo["mag50-ft-int8s"] == "…→ int8 static" and demo["mag50-ft-int8d"] == "…→ int8 dynamic"
    assert demo["mag50"] == "Magnitude 50%"


def test_equal_full_labels_fall_back_to_where_ids_differ():
    labels = distinct_labels({"resnet50-magnitude-pruned-0.5-a": "same tag", "resnet50-magnitude-pruned-0.5-b": "same tag",
                              "other": "another"}, 12)
    assert labels["other"] == "another"
    assert len({labels["resnet50-magnitude-pruned-0.5-a"], labels["resnet50-magnitude-pruned-0.5-b"]}) == 2
    assert all(len(v) <= 12 for v in labels.values())


@pytest.mark.parametrize("name", FILES)
def test_pareto_chips_of_every_metric_pair_are_distinct(name):
    exp = load_experiment(FIXTURES / name)
    metrics = list(exp.metrics)
    checked = 0
    for x in metrics:
        for y in metrics:
            if x == y:
                continue
            points = [(mid, m.metrics.get(x), m.metrics.get(y)) for mid, m in exp.models.items()]
            front = pareto_front(points, exp.metrics[x].higher_is_better, exp.metrics[y].higher_is_better)
            if len(front) < 2:
                continue
            chips = scatter.front_list(exp, front)[1:]
            shown = [c.children for c in chips]
            assert all(len(s) <= scatter.CHIP_WIDTH and "→ →" not in s and not s.endswith("→") for s in shown)
            assert len(set(shown)) == len(shown), shown
            assert all(c.title.startswith(model_name(exp.models[m])) for c, m in zip(chips, front))
            checked += 1
    if len(exp.models) > 10 and len(metrics) > 1:
        assert checked
