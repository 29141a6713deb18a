"""Layer comparison on tiny hand-built torch models (summaries made by cnc.evaluation.inspection)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from cnc.analysis import layers as L
from cnc.evaluation import inspection


class Tiny(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, x):
        return self.head(self.features(x))


def make_base() -> Tiny:
    torch.manual_seed(0)
    model = Tiny()
    with torch.no_grad():  # non-trivial batch-norm parameters
        model.features[1].weight.uniform_(0.5, 1.5)
        model.features[1].bias.uniform_(-0.2, 0.2)
    return model


def summaries(models: list[nn.Module]) -> list[dict]:
    """Params summaries as precompute makes them: the first model sets the shared edges."""
    edges: dict = {}
    return [inspection.summarize_all(inspection.module_parameters(m), edges) for m in models]


def table_for(models: list[nn.Module], base: int = 0) -> L.LayerTable:
    packs = [L.pack(s) for s in summaries(models)]
    comps = [L.compare(p, packs[base]) for p in packs]
    return L.build_table([f"m{i}" for i in range(len(models))], base, packs, comps)


def row(table: L.LayerTable, name: str) -> int:
    return table.tree.names.index(name)


def test_tree_from_dotted_names():
    tree = L.build_tree([["features.0", "features.1", "head.1", "head.3"], ["head.5"]])
    assert tree.names == ["features", "features.0", "features.1", "head", "head.1", "head.3", "head.5"]
    assert tree.parent.tolist() == [-1, 0, 0, -1, 3, 3, 3]
    assert tree.aggregate(np.eye(7))[0].tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_copy_of_base_shows_no_change():
    base = make_base()
    t = table_for([base, copy.deepcopy(base)])
    for name in ("features.0", "features.1", "head.1", "head.3"):
        r = row(t, name)
        assert t.agg_change[r, 1] == 0.0
        assert t.agg_fractions[r, 1, L.UNCHANGED] == pytest.approx(1.0)
        mix = t.mix(r, 1)
        assert mix[:, L.UNCHANGED].sum() == pytest.approx(t.counts[r, 1])
        assert mix[:, [L.SMALL, L.LARGE, L.ZEROED, L.UNKNOWN]].sum() == 0


def test_shared_bins_and_counts():
    base = make_base()
    other = copy.deepcopy(base)
    with torch.no_grad():
        other.head[1].weight.mul_(3.0)  # values beyond the base's range land in the end bins
    s0, s1 = summaries([base, other])
    for name in s0:
        np.testing.assert_array_equal(s0[name]["edges"], s1[name]["edges"])
        assert s1[name]["hist"].sum() == s1[name]["count"]
    t = table_for([base, other])
    r = row(t, "head.1")
    assert t.mix(r, 1).sum() == pytest.approx(t.counts[r, 1])  # the mix accounts for every weight
    assert t.agg_fractions[r, 1, L.LARGE] > 0.5
    assert t.agg_change[r, 1] > 1.0


def test_sparsity_and_zeroed_weights():
    base = make_base()
    pruned = copy.deepcopy(base)
    with torch.no_grad():
        w = pruned.head[1].weight
        w[:, : w.shape[1] // 2] = 0.0  # half the weights of head.1
        pruned.features[1].weight.zero_()  # a flattened batch norm (weights only)
    t = table_for([base, pruned])
    r = row(t, "head.1")
    n_w = 8 * 64
    assert t.counts[r, 1] == n_w + 8
    assert t.agg_sparsity[r, 1] == pytest.approx((n_w // 2) / (n_w + 8))
    assert t.agg_fractions[r, 1, L.ZEROED] == pytest.approx((n_w // 2) / (n_w + 8))
    zero_bin = t.mix(r, 1)[:, L.ZEROED].argmax()
    edges = summaries([base])[0]["head.1"]["edges"]
    assert edges[zero_bin] <= 0 < edges[zero_bin + 1]
    bn = row(t, "features.1")
    assert t.agg_fractions[bn, 1, L.ZEROED] == pytest.approx(0.5)  # 4 weights of 8 parameters
    assert t.agg_fractions[bn, 1, L.UNCHANGED] == pytest.approx(0.5)
    # sorting by change puts the flattened batch norm on top
    order = L.visible_rows(t, "change", None)
    assert t.tree.names[order[0]] == "features.1"
    assert t.tree.names[L.visible_rows(t, "sparsity", None)[0]] == "features.1"


def test_small_changes_and_parent_aggregation():
    base = make_base()
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        tuned.features[0].weight.add_(1e-3)  # tiny shift: small, never unchanged
        tuned.head[3].weight.zero_()
    t = table_for([base, tuned])
    conv = row(t, "features.0")
    assert t.agg_fractions[conv, 1, L.SMALL] > 0.5
    parent = row(t, "head")
    kids = [row(t, "head.1"), row(t, "head.3")]
    counts = t.counts[kids, 1]
    assert t.agg_count[parent, 1] == counts.sum()
    zeros = sum(t.agg_sparsity[k, 1] * t.counts[k, 1] for k in kids)
    assert t.agg_sparsity[parent, 1] == pytest.approx(zeros / counts.sum())
    expected = (t.agg_change[kids, 1] * counts).sum() / counts.sum()
    assert t.agg_change[parent, 1] == pytest.approx(expected)
    assert t.agg_fractions[parent, 1].sum() == pytest.approx(1.0)
    assert t.types[row(t, "features.1")] == "BatchNorm2d" and t.types[parent] == ""


def test_missing_and_reshaped_modules_are_not_errors():
    base = make_base()
    narrow = Tiny(hidden=4)  # head.1 and head.3 change shape
    wider = copy.deepcopy(base)
    wider.extra = nn.Linear(2, 2)  # a module the base does not have
    del wider.features[1]  # and one it lacks (Sequential keeps the other names)
    t = table_for([base, narrow, wider])
    h1 = row(t, "head.1")
    assert t.present[h1].tolist() == [True, True, True]
    assert np.isnan(t.agg_change[h1, 1]) and t.agg_fractions[h1, 1, L.UNKNOWN] == 1.0
    assert t.mix(h1, 1)[:, L.UNKNOWN].sum() == t.counts[h1, 1]
    assert not t.present[row(t, "features.1"), 2]
    assert t.mix(row(t, "features.1"), 2) is None
    ex = row(t, "extra")
    assert t.present[ex].tolist() == [False, False, True] and np.isnan(t.agg_change[ex, 2])


def test_activation_summaries_compare_too():
    base = make_base()
    pruned = copy.deepcopy(base)
    with torch.no_grad():
        pruned.features[1].weight.zero_()
        pruned.features[1].bias.zero_()
    x = torch.randn(5, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    edges: dict = {}
    acts = [inspection.summarize_all(inspection.module_activations(m, x), edges) for m in (base, pruned)]
    packs = [L.pack(a) for a in acts]
    t = L.build_table(["a", "b"], 0, packs, [L.compare(p, packs[0]) for p in packs])
    assert "features.2" in t.tree.names  # leaf modules without parameters have activations
    assert t.agg_change[row(t, "features.0"), 1] == 0.0
    bn = row(t, "features.1")
    assert t.agg_fractions[bn, 1, L.ZEROED] > 0.9 and t.agg_sparsity[bn, 1] == 1.0


def test_visible_rows_and_default_open():
    t = table_for([make_base()])
    assert L.visible_rows(t, "tree", None) == list(range(len(t.tree.names)))
    assert [t.tree.names[i] for i in L.visible_rows(t, "tree", {"head"})] == ["features", "head", "head.1", "head.3"]
    assert L.default_open(t.tree) is None
    assert L.default_open(t.tree, max_rows=2) == {"features", "head"}


def test_canonical_names():
    assert L.canonical_name("module.features.0") == "features.0"
    assert L.canonical_name("fc._packed_params") == "fc"
    assert L.canonical_name("module") == "module"


def test_spread_and_per_model_sorting():
    base = make_base()
    global_prune = copy.deepcopy(base)
    layerwise = copy.deepcopy(base)
    with torch.no_grad():
        for model in (global_prune, layerwise):  # both rewrite the big linear layer
            w = model.head[1].weight
            w[w.abs() < w.abs().median()] = 0
        global_prune.features[1].weight[:2] = 0  # only one touches the batch norm
    t = table_for([base, global_prune, layerwise])
    spread = L.row_scores(t, "spread")
    assert spread[row(t, "features.1")] == pytest.approx(1.0)
    assert spread[row(t, "head.1")] < 0.01
    assert np.isnan(spread[row(t, "head.3")])  # unchanged everywhere: no score, sorted last
    assert t.tree.names[L.visible_rows(t, "spread", None)[0]] == "features.1"
    by_layerwise = L.visible_rows(t, "change", None, model=2)
    assert t.tree.names[by_layerwise[0]] == "head.1"
    assert L.row_scores(t, "change", model=2)[row(t, "features.1")] == 0.0
