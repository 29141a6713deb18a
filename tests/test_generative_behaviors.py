"""Generative Behaviors (cnc.analysis.generative_behaviors, output_diff) against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cnc.analysis import behavior_cells, behavior_groups, behavior_metrics, behavior_view
from cnc.analysis import generative_behaviors as G
from cnc.analysis.output_diff import changed_share, word_diff

TASK = {
    "kind": "generative",
    "prompts": ["Who won? ...", "Capital of France?", "Sky colour?", "6 x 7?"],
    "references": [["Super Bowl LII"], ["Paris"], ["blue"], ["42", "forty-two"]],
    "attributes": {"qtype": ["what", "where", "what", "how many"], "task": ["sports", "geo", "sci", "sci"]},
    "score_names": ["exact_match", "f1"],
}
NTOK = np.array([3, 1, 1, 1], np.int32)
OUTPUTS = {
    "base": {"kind": "generative", "texts": ["Super Bowl LII", "Paris", "red", "42"],
             "scores": {"exact_match": np.array([1, 1, 0, 1], np.float32), "f1": np.array([1, 1, 0, 1], np.float32)},
             "nll": np.array([0.3, 0.1, 2.0, 0.2], np.float32), "ntokens": NTOK,
             "repetition": np.zeros(4, np.float32), "kl": np.zeros(6, np.float16), "top1": np.ones(6, bool),
             "kl_reference": "base"},
    "a": {"kind": "generative", "texts": ["Super Bowl LII LII LII", "Paris", "blue", "a a a"],
          "scores": {"exact_match": np.array([0, 1, 1, 0], np.float32),
                     "f1": np.array([0.75, 1, 1, 0], np.float32)},
          "nll": np.array([0.9, 0.1, 1.0, 3.0], np.float32), "ntokens": NTOK,
          "repetition": np.array([0.5, 0, 0, 0.5], np.float32),
          "kl": np.array([0.1, 0.2, 0.3, 0.5, 1.0, 2.0], np.float16),
          "top1": np.array([True, True, False, True, False, False]), "kl_reference": "base"},
    # an outputs-only model (lm-eval): no NLL, no KL, no F1
    "lm": {"kind": "generative", "texts": ["Super Bowl LII", "Lyon", "red", "42"],
           "scores": {"exact_match": np.array([1, 0, 0, 1], np.float32)}, "nll": None, "ntokens": None,
           "repetition": np.zeros(4, np.float32), "kl": None, "top1": None, "kl_reference": None},
    "short": {"kind": "generative", "texts": ["x"]},  # wrong length
}


def table(models=("base", "a")):
    return G.build_generative_table(TASK, list(models), OUTPUTS.get, status=lambda m: "pending")


def shown(metric, mode="instances", rel=False, models=("base", "a"), attribute=None, **kw):
    t = table(models)
    state = behavior_view.ViewState(mode=mode, attribute=attribute, metric=metric, rel=rel, **kw)
    return behavior_view.build_view(t, state, t.specs(), [], TASK["attributes"])


def test_word_diff_marks_inserted_deleted_and_same_words():
    assert word_diff("Super Bowl LII", "Super Bowl LII LII LII") == [("same", "Super Bowl LII"), ("ins", "LII LII")]
    assert word_diff("red", "blue") == [("del", "red"), ("ins", "blue")]
    assert word_diff("the old ship", "the ship") == [("same", "the"), ("del", "old"), ("same", "ship")]
    assert word_diff("a  b\nc", "a b c") == [("same", "a b c")]  # whitespace runs are one separator
    assert word_diff("", "") == [] and word_diff("", "new") == [("ins", "new")]
    assert changed_share("Super Bowl LII", "Super Bowl LII LII LII") == pytest.approx(1 - 2 * 3 / 8)
    assert changed_share("x", "x") == 0.0 and changed_share("", "") == 0.0 and changed_share("a", "b") == 1.0


def test_score_means_and_change():
    v = shown("sc:f1", mode="subgroups", attribute="qtype")
    rows = dict(zip(v.names, v.shown.T.tolist()))
    assert rows["what"] == pytest.approx([0.5, 0.875]) and rows["how many"] == pytest.approx([1.0, 0.0])
    inst = shown("sc:f1", rel=True).shown
    assert inst[1].tolist() == pytest.approx([-0.25, 0, 1, -1]) and not inst[0].any()
    assert shown("scabs:f1").shown[1].tolist() == pytest.approx([0.25, 0, 1, 1])


def test_exact_match_flips_right_to_wrong_and_wrong_to_right():
    assert shown("r2w").shown[1].tolist() == [1, 0, 0, 1]
    assert shown("w2r").shown[1].tolist() == [0, 0, 1, 0]
    t = table()
    g = behavior_metrics.grouping(t, "instances", [], {}, None)
    all_rows = behavior_metrics.Grouping(["all"], np.zeros(4, np.int64), np.array([4]))
    assert t.values("r2w", all_rows)[:, 0].tolist() == [0.0, 0.5]
    assert t.values("w2r", all_rows)[:, 0].tolist() == [0.0, 0.25]
    assert t.values("flip", g)[1].tolist() == [1, 0, 1, 1] and t.flips.tolist() == [1, 0, 1, 1]
    # the classifier instance filters read exact match
    assert shown("flip", filt="newerr").order.tolist() == [0, 3]
    assert shown("flip", filt="fixed").order.tolist() == [2]


def test_kl_top1_nll_are_token_weighted():
    t = table()
    all_rows = behavior_metrics.Grouping(["all"], np.zeros(4, np.int64), np.array([4]))
    assert t.values("kl", all_rows)[:, 0] == pytest.approx([0.0, 4.1 / 6], rel=1e-3)  # float16 storage
    assert t.values("top1", all_rows)[:, 0] == pytest.approx([1.0, 0.5])
    assert t.values("nll", all_rows)[:, 0] == pytest.approx([2.6 / 6, 5.0 / 6], rel=1e-6)
    assert t.values("ppl", all_rows)[:, 0] == pytest.approx(np.exp([2.6 / 6, 5.0 / 6]), rel=1e-6)
    inst = shown("kl").shown[1]
    assert inst == pytest.approx([0.6 / 3, 0.5, 1.0, 2.0], rel=1e-3)
    v = shown("kl", mode="subgroups", attribute="qtype")
    assert dict(zip(v.names, v.shown[1]))["what"] == pytest.approx((0.6 + 1.0) / 4, rel=1e-3)
    assert shown("rep").shown[1].tolist() == [0.5, 0, 0, 0.5]


def test_flat_token_arrays_of_the_wrong_length_are_unknown_not_an_error():
    bad = dict(OUTPUTS["a"], kl=np.ones(5, np.float16))  # 6 reference tokens in all
    t = G.build_generative_table(TASK, ["base", "bad"], {"base": OUTPUTS["base"], "bad": bad}.get)
    assert np.isnan(t.klsum[1]).all() and t.top1sum[1].tolist() == [2, 1, 0, 0]


def test_task_rows_group_by_the_task_attribute_and_drill_down():
    v = shown("sc:exact_match", mode="tasks")
    assert dict(zip(v.names, v.shown[1].tolist())) == {"geo": 1.0, "sci": 0.5, "sports": 0.0}
    group = behavior_groups.group_for_row("tasks", None, v.names.index("sci"), v.names)
    assert group.key == "attr:task:sci"
    assert shown("flip", group=group.key).order.tolist() == [2, 3]


def test_top_changes_rank_what_compression_broke_first():
    v = shown("flip", mode="exemplars")
    assert v.order.tolist() == [3, 0, 2]  # base right, "a" wrong (F1 drop 1 before 0.25); 1 did not change
    assert shown("flip", mode="exemplars", rank="fixed").order.tolist() == [2, 3, 0]  # ties: KL


def test_outputs_only_models_and_missing_ones():
    t = table(("base", "a", "lm", "short", "pending"))
    assert t.models == ["base", "a", "lm"]
    assert "20" not in t.missing["short"] and "4 generated texts" in t.missing["short"]
    assert "pending" in t.missing["pending"]
    inst = shown("kl", models=("base", "a", "lm")).shown
    assert np.isnan(inst[2]).all()
    assert np.isnan(shown("sc:f1", models=("base", "lm")).shown[1]).all()
    assert shown("r2w", models=("base", "lm")).shown[1].tolist() == [0, 1, 0, 0]
    # without any KL the KL metrics are not offered
    lm_first = G.build_generative_table(TASK, ["lm", "base"], OUTPUTS.get)
    assert "kl" in lm_first.specs() and lm_first.reference == "base"
    only = G.build_generative_table(TASK, ["lm"], OUTPUTS.get)
    assert "kl" not in only.specs() and "nll" not in only.specs() and "sc:f1" in only.specs()
    assert G.build_generative_table(TASK, ["pending", "a"], OUTPUTS.get) is None


def test_kl_labels_name_the_reference_not_the_base():
    t = table(("a", "base"))  # the chosen base is not the KL reference
    assert t.specs()["kl"].label == "KL divergence vs base (per token)"
    other = dict(OUTPUTS["a"], kl_reference="root2")
    t2 = G.build_generative_table(TASK, ["base", "a2"], {"base": OUTPUTS["base"], "a2": other}.get)
    assert "each model's root" in t2.specs()["kl"].label
    rel = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", metric="kl", rel=True), t.specs(), [], {})
    # relative to the chosen base "a": the KL reference itself reads as less divergent
    assert rel.shown[0].tolist() == [0, 0, 0, 0] and rel.shown[1] == pytest.approx([-0.2, -0.5, -1, -2], rel=1e-3)


def test_page_rows_and_csv_records_carry_texts():
    t = table()
    v = shown("sc:exact_match", rel=True)
    rows = behavior_cells.page_rows(v, t, 0, 4, [])
    assert rows[0]["ref"] == "Super Bowl LII" and rows[0]["base_out"] == "Super Bowl LII" and rows[0]["flips"] == 1
    assert [r["c1"] for r in rows] == ["right → wrong", "same", "wrong → right", "right → wrong"]
    header, records = behavior_cells.view_records(v, t, [])
    assert header[:4] == ["instance", "reference", "base output", "models whose output changed"]
    assert records[3][:4] == [3, "42", "42", 1] and records[3][5] == -1.0
    long = dict(OUTPUTS["base"], texts=["word " * 100, "Paris", "red", "42"])
    t3 = G.build_generative_table(TASK, ["base"], {"base": long}.get)
    assert len(t3.instance_cells(0)["base_out"]) == G.SHORT and t3.instance_cells(0, full=True)["base_out"] == "word " * 100


def test_instance_detail_diffs_each_output_against_the_base():
    rows = table(("base", "a", "lm")).instance_detail(0)
    assert [r["model"] for r in rows] == ["base", "a", "lm"]
    assert rows[0]["segments"] == [("same", "Super Bowl LII")] and not rows[0]["changed"]
    assert rows[1]["segments"] == [("same", "Super Bowl LII"), ("ins", "LII LII")] and rows[1]["changed"]
    assert rows[1]["scores"]["f1"] == 0.75 and rows[1]["kl"] == pytest.approx(0.2, rel=1e-3)
    assert rows[1]["top1"] == pytest.approx(2 / 3) and math.isnan(rows[2]["kl"])


def test_helpers():
    assert G.is_generative(TASK) and not G.is_generative({"labels": [0]}) and not G.is_generative(None)
    assert table().default_metric() == "sc:f1"
