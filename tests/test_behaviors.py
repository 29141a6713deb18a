"""Behaviour comparison metrics against hand-computed values (cnc.analysis.behaviors)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cnc.analysis import behavior_cells, behavior_groups, behavior_metrics, behavior_table, behavior_view

CLASSES = ["zero", "one", "two"]
LABELS = np.array([0, 0, 1, 2])  # class "two" has a single instance
BASE = np.array([[0.7, 0.2, 0.1], [0.6, 0.4, 0.0], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]], np.float32)
A = np.array([[0.4, 0.6, 0.0], [0.6, 0.4, 0.0], [0.2, 0.8, 0.0], [0.0, 0.6, 0.4]], np.float32)
OUTPUTS = {
    "base": {"probs": BASE, "preds": np.array([0, 0, 0, 2]),
             "scalars": {"loss": np.array([1.0, 2.0, 3.0, 4.0], np.float32)}},
    "a": {"probs": A, "preds": np.array([1, 0, 1, 1]),
          "scalars": {"loss": np.array([2.0, 2.0, 1.5, 8.0], np.float32)}},
    "same": None,  # filled below: identical to the base
    "pending": None,
}
OUTPUTS["same"] = dict(OUTPUTS["base"])
ATTRS = {"ink": ["light", "dark", "dark", "light"]}


def table(models=("base", "a", "same")):
    return behavior_table.build_table(LABELS, list(models), OUTPUTS.get, status=lambda m: "pending")


def values(metric, mode="classes", rel=False, models=("base", "a", "same")):
    t = table(models)
    specs = behavior_metrics.metric_specs(t.scalars)
    state = behavior_view.ViewState(mode=mode, attribute="ink" if mode == "subgroups" else None, metric=metric, rel=rel)
    view = behavior_view.build_view(t, state, specs, CLASSES, ATTRS)
    return view.shown


def test_error_rate_and_change_per_class():
    abs_ = values("error")
    np.testing.assert_allclose(abs_[0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(abs_[1], [0.5, 0.0, 1.0])
    rel = values("error", rel=True)
    np.testing.assert_allclose(rel[1], [0.5, -1.0, 1.0])
    assert np.all(rel[0] == 0) and np.all(rel[2] == 0)  # identical model: exactly zero change


def test_percent_more_errors_marks_new_errors_where_base_has_none():
    # per class: base errors 0, 1/1, 0; "a" errors 1/2, 0, 1/1; "same" copies the base
    more = values("moreerr")
    assert more[1].tolist() == [math.inf, -1.0, math.inf]  # classes 0 and 2: errors the base never made
    assert more[2].tolist() == [0.0, 0.0, 0.0]  # no errors in base or model: +0%, not "—"
    assert more[0].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_array_equal(values("moreerr", rel=True), more)  # relative to the base's 0: the same


def test_more_errors_hand_computed():
    err = np.array([[0.0, 0.5, 0.2, 0.0, np.nan],
                    [0.1, 1.0, 0.1, 0.0, 0.3]])
    out = behavior_metrics.more_errors(err)
    assert out[0, :4].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert out[1, :4].tolist() == [math.inf, 1.0, -0.5, 0.0]  # new errors, +100%, −50%, +0%
    assert np.isnan(out[:, 4]).all()  # an empty group stays undefined


def test_new_errors_sort_first_pass_thresholds_and_read_as_words():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    view = lambda **kw: behavior_view.build_view(t, behavior_view.ViewState(metric="moreerr", **kw), specs, CLASSES, ATTRS)  # noqa: E731
    assert view(sort="a").order.tolist() == [0, 2, 1]  # both "new errors" classes above −100%
    assert view(sort="a", desc=False).order.tolist() == [1, 0, 2]
    assert view(threshold=1.0).order.tolist() == [0, 2]  # +inf passes any "≥" threshold
    assert view(threshold=1e9).order.tolist() == [0, 2]
    assert view(threshold=0.0, direction="le").order.tolist() == [0, 1, 2]  # "same" is +0% everywhere
    v = view()
    rows = behavior_cells.page_rows(v, t, 0, 3, CLASSES)
    assert [r["c1"] for r in rows] == ["new errors", "-100%", "new errors"]
    assert [r["c2"] for r in rows] == ["+0%", "+0%", "+0%"]
    assert rows[0]["c1_b"] == 1.0 and rows[0]["c1_h"] == 1  # a full red bar
    assert rows[1]["c1_b"] == -1.0 and rows[1]["c1_h"] == -1
    assert v.scale == 1.0 and v.hists[1].sum() == 3  # inf counted in the top bin, not in the scale
    assert v.hists[1][-1] == 2
    inst = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", metric="moreerr"), specs, CLASSES, ATTRS)
    assert [r["c1"] for r in behavior_cells.page_rows(inst, t, 0, 4, CLASSES)] == ["new errors", "+0%", "-100%", "new errors"]


def test_threshold_direction_keeps_drops():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    build = lambda **kw: behavior_view.build_view(t, behavior_view.ViewState(metric="conf", rel=True, **kw), specs, CLASSES, ATTRS)  # noqa: E731
    # "a" vs base, per class: −0.15, +0.4, −0.4; "same" is 0 everywhere
    assert build(threshold=-0.3, direction="le").order.tolist() == [2]
    assert build(threshold=-0.3).order.tolist() == [0, 1, 2]
    assert build(threshold=0.3).order.tolist() == [1]
    assert behavior_view.ViewState(direction="le").key() != behavior_view.ViewState().key()


def test_threshold_steps_fit_the_metric():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    step = lambda metric, rel=False: behavior_view.threshold_step(  # noqa: E731
        behavior_view.build_view(t, behavior_view.ViewState(metric=metric, rel=rel), specs, CLASSES, ATTRS))
    for metric in ("error", "flip", "conf", "confabs", "confratio"):
        assert step(metric) == 0.01 and step(metric, rel=True) == 0.01, metric
    assert step("moreerr") == 0.1  # finite values up to 100%; "new errors" ignored
    kl = behavior_view.build_view(t, behavior_view.ViewState(metric="kl"), specs, CLASSES, ATTRS)
    assert behavior_view.threshold_step(kl) == 10.0 ** (math.floor(math.log10(kl.scale)) - 1)
    mse = behavior_view.build_view(t, behavior_view.ViewState(metric="mse"), specs, CLASSES, ATTRS)
    assert 0.01 * mse.scale < behavior_view.threshold_step(mse) <= 0.1 * mse.scale
    flat = behavior_view.build_view(table(("base", "same")), behavior_view.ViewState(metric="kl"), specs, CLASSES, ATTRS)
    assert behavior_view.threshold_step(flat) == 0.01  # all zeros: a small default


@pytest.mark.parametrize("value, step, up, expected", [
    (0.5, 0.01, True, 0.51), (0.5, 0.01, False, 0.49),  # the QA case: not 1.5 / 2
    (None, 0.01, True, 0.01), (None, 0.1, False, -0.1),
    (0.015, 0.01, True, 0.02), (0.015, 0.01, False, 0.01),  # off-grid values snap to it
    (0.3, 0.1, True, 0.4), (0.01, 0.01, False, 0.0), (-0.2, 0.1, False, -0.3),
    (3e-4, 1e-4, True, 4e-4), (0.7, 1.0, True, 1.0), (float("nan"), 0.01, True, 0.01),
])
def test_step_threshold(value, step, up, expected):
    assert behavior_view.step_threshold(value, step, up) == pytest.approx(expected, abs=1e-15)


def test_flip_rate():
    flip = values("flip")
    np.testing.assert_allclose(flip[1], [0.5, 1.0, 1.0])
    assert np.all(flip[0] == 0) and np.all(flip[2] == 0)


def test_confidence_difference_absolute_difference_and_ratio():
    conf = values("conf")
    np.testing.assert_allclose(conf[0], [0.65, 0.4, 0.8], rtol=1e-6)
    np.testing.assert_allclose(values("conf", rel=True)[1], [-0.15, 0.4, -0.4], rtol=1e-5)
    np.testing.assert_allclose(values("confabs")[1], [0.15, 0.4, 0.4], rtol=1e-5)
    np.testing.assert_allclose(values("confratio")[1], [0.5 / 0.65, 2.0, 0.5], rtol=1e-5)
    np.testing.assert_allclose(values("confratio", rel=True)[1], [0.5 / 0.65 - 1, 1.0, -0.5], rtol=1e-5)
    assert np.all(values("confratio")[2] == 1.0)


def test_mse_and_kl_with_zero_probabilities_per_instance():
    t = table()
    assert t.mse[1, 0] == pytest.approx((0.09 + 0.16 + 0.01) / 3, rel=1e-5)
    # model gives 0 where the base gives 0.1: clipped at EPS, large but finite
    kl0 = 0.7 * math.log(0.7 / 0.4) + 0.2 * math.log(0.2 / 0.6) + 0.1 * math.log(0.1 / behavior_metrics.EPS)
    assert t.kl[1, 0] == pytest.approx(kl0, rel=1e-5)
    # both give 0 to class two: that class contributes nothing
    assert t.kl[1, 2] == pytest.approx(0.6 * math.log(3) + 0.4 * math.log(0.5), rel=1e-5)
    assert t.kl[1, 1] == 0.0
    assert np.all(t.kl[2] == 0) and np.all(t.mse[2] == 0) and np.all(np.isfinite(t.kl))


def test_single_instance_class_equals_instance_values():
    t = table()
    assert values("kl")[1, 2] == pytest.approx(float(t.kl[1, 3]))
    assert values("mse")[1, 2] == pytest.approx(float(t.mse[1, 3]))


def test_scalars_difference_absolute_difference_ratio():
    assert values("sc:loss", rel=True)[1, 0] == pytest.approx(0.5)  # mean(2,2) - mean(1,2)
    assert values("scabs:loss")[1, 1] == pytest.approx(1.5)
    assert values("scratio:loss")[1, 2] == pytest.approx(2.0)
    assert np.all(values("sc:loss", rel=True)[2] == 0)


def test_subgroups_rows():
    err = values("error", mode="subgroups")
    np.testing.assert_allclose(err[1], [0.0, 1.0])  # rows "dark" (i1, i2), "light" (i0, i3)
    np.testing.assert_allclose(err[0], [0.5, 0.0])


def test_missing_models_are_reported_not_fatal():
    t = table(("base", "pending", "a"))
    assert t.models == ["base", "a"]
    assert "pending" in t.missing["pending"]
    assert behavior_table.build_table(LABELS, ["pending"], OUTPUTS.get) is None


def test_instance_filters_sort_and_exemplars():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    newerr = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", filt="newerr"), specs, CLASSES, ATTRS)
    assert sorted(newerr.order.tolist()) == [0, 3]  # base right, "a" wrong
    fixed = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", filt="fixed"), specs, CLASSES, ATTRS)
    assert fixed.order.tolist() == [2]
    ex = behavior_view.build_view(t, behavior_view.ViewState(mode="exemplars"), specs, CLASSES, ATTRS)
    assert ex.order.tolist() == [3, 0, 2]  # one flip each; ties by mean KL (i3 > i0 > i2)
    by_kl = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", metric="kl", sort="a", desc=True), specs, CLASSES, ATTRS)
    assert by_kl.order.tolist()[:2] == [3, 0]
    flips = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", sort="flips"), specs, CLASSES, ATTRS)
    assert flips.order.tolist()[-1] == 1


def test_threshold_filter_on_any_model():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    view = behavior_view.build_view(t, behavior_view.ViewState(metric="flip", threshold=0.75), specs, CLASSES, ATTRS)
    assert view.order.tolist() == [1, 2]


def test_page_rows_and_bars():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    view = behavior_view.build_view(t, behavior_view.ViewState(metric="error", rel=True), specs, CLASSES, ATTRS)
    rows = behavior_cells.page_rows(view, t, 0, 10, CLASSES)
    assert [r["row"] for r in rows] == CLASSES
    assert rows[0]["c1"] == "+50.0 pp" and rows[0]["c1_b"] == 0.5 and rows[0]["c2"] == "+0.0 pp"
    # two instances cannot tell +50 pp from noise: muted, no ▼ (harm 0), the test on hover
    assert rows[0]["c1_ns"] == 1 and rows[0]["c1_h"] == 0 and rows[0]["c1_s"].startswith("No significant change")
    assert "1 right → wrong, 0 wrong → right" in rows[0]["c1_s"] and "c0_s" not in rows[0]
    assert behavior_cells.harm(0.5, specs["error"], True) == 1 and behavior_cells.harm(-1.0, specs["error"], True) == -1
    inst = behavior_view.build_view(t, behavior_view.ViewState(mode="instances"), specs, CLASSES, ATTRS)
    row = behavior_cells.page_rows(inst, t, 3, 4, CLASSES)[0]
    assert row["i"] == 3 and row["label"] == "two" and row["flips"] == 1


def test_format_and_sparkline():
    assert behavior_cells.format_number(float("nan"), ".1%") == "—"
    assert behavior_cells.format_number(-0.0, "+.3f") == "+0.000"
    svg = behavior_cells.sparkline_svg(np.array([0, 3, 1]))
    assert svg.startswith("<svg") and svg.count("<rect") == 3


def test_instance_detail_top_probabilities():
    rows = behavior_cells.instance_detail(0, 0, CLASSES, ["base", "a"], [OUTPUTS["base"], OUTPUTS["a"]], top_k=2)
    assert rows[0]["pred"] == "zero" and rows[0]["correct"] is True
    assert rows[1]["top"][0] == ("one", pytest.approx(0.6))


def test_instance_rows_use_words_for_binary_metrics():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    view = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", metric="error", rel=True), specs, CLASSES, ATTRS)
    rows = behavior_cells.page_rows(view, t, 0, 4, CLASSES)
    assert [r["c1"] for r in rows] == ["new error", "same", "fixed", "new error"]


@pytest.mark.parametrize("seed", range(5))
def test_random_outputs_base_is_zero_relative_and_groups_average_instances(seed):
    rng = np.random.default_rng(seed)
    n, c = 50, 4
    labels = rng.integers(0, c, n)
    outs = {}
    for k, mid in enumerate(("b", "x", "y")):
        p = rng.dirichlet(np.full(c, 0.3), n).astype(np.float32)
        p[rng.random((n, c)) < 0.2] = 0.0  # exact zeros
        p[p.sum(1) == 0, 0] = 1.0
        p /= p.sum(1, keepdims=True)
        outs[mid] = {"probs": p, "preds": p.argmax(1), "scalars": {}}
    t = behavior_table.build_table(labels, ["b", "x", "y"], outs.get)
    specs = behavior_metrics.metric_specs()
    names = [str(i) for i in range(c)]
    for metric in ("error", "flip", "conf", "confabs", "mse", "kl"):
        for rel in (False, True):
            groups = behavior_view.build_view(t, behavior_view.ViewState(metric=metric, rel=rel), specs, names, {}).shown
            inst = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", metric=metric, rel=rel), specs, names, {}).shown
            assert np.all(np.isfinite(inst))
            if rel or specs[metric].base_value == 0.0:
                assert np.all(groups[0][np.isfinite(groups[0])] == 0)
            for k in range(c):
                if (labels == k).any():
                    np.testing.assert_allclose(groups[:, k], inst[:, labels == k].mean(axis=1), rtol=1e-5, atol=1e-7)


def test_values_rounding_to_zero_lose_their_minus_sign():
    assert behavior_cells.format_number(-0.0001, "+.3f") == "+0.000"
    assert behavior_cells.format_number(-0.0001, ".1%") == "0.0%"
    assert behavior_cells.format_number(-0.002, "+.3f") == "-0.002"
    assert behavior_cells.format_number(-2e-9, ".2e") == "-2.00e-09"


# ----------------------------------------------------------------------------- drill-down to a group

def test_group_instances_of_a_class_and_a_subgroup():
    t = table()
    assert behavior_groups.group_instances(t, behavior_groups.Group("class", "0"), ATTRS).tolist() == [0, 1]
    assert behavior_groups.group_instances(t, behavior_groups.Group("class", "2"), ATTRS).tolist() == [3]
    assert behavior_groups.group_instances(t, behavior_groups.Group("attr", "dark", "ink"), ATTRS).tolist() == [1, 2]
    assert behavior_groups.group_instances(t, behavior_groups.Group("attr", "light", "ink"), ATTRS).tolist() == [0, 3]
    assert behavior_groups.group_instances(t, behavior_groups.Group("attr", "nope", "ink"), ATTRS).size == 0


def test_group_keys_round_trip_and_unknown_values_are_refused():
    t = table()
    for key in ("class:2", "attr:ink:dark"):
        assert behavior_groups.parse_group(key, CLASSES, ATTRS, t).key == key
        assert behavior_groups.parse_group(key, CLASSES, ATTRS).key == key  # without a table: the raw attribute values
    assert behavior_groups.parse_group("class:two", CLASSES, ATTRS).key == "class:2"  # a hand-written class name
    assert behavior_groups.parse_group("class:007", CLASSES, ATTRS, n_classes=8).key == "class:7"
    for bad in ("class:3", "class:-1", "class:", "attr:ink:grey", "attr:size:big", "attr:ink", "8", "", None,
                "class:" + "9" * 40):
        assert behavior_groups.parse_group(bad, CLASSES, ATTRS, t) is None, bad


def test_attribute_names_and_values_with_colons():
    attrs = {"a": ["x:y", "z"], "a:b": ["c", "x:y"]}
    assert behavior_groups.Group.from_key("attr:a:b:c", attrs) == behavior_groups.Group("attr", "c", "a:b")  # the longest name wins
    assert behavior_groups.parse_group("attr:a:x:y", [], attrs) == behavior_groups.Group("attr", "x:y", "a")
    assert behavior_groups.parse_group("attr:a:b:x:y", [], attrs) == behavior_groups.Group("attr", "x:y", "a:b")


def test_group_labels_and_rows():
    assert behavior_groups.Group("class", "8").label([str(d) for d in range(10)]) == "class 8"
    assert behavior_groups.Group("class", "1").label(["class 0", "class 1"]) == "class 1"
    assert behavior_groups.Group("attr", "high", "ink density").label([]) == "ink density = high"
    assert behavior_groups.group_for_row("classes", None, 1, CLASSES) == behavior_groups.Group("class", "1")
    assert behavior_groups.group_for_row("subgroups", "ink", 0, ["dark", "light"]) == behavior_groups.Group("attr", "dark", "ink")
    assert behavior_groups.group_for_row("classes", None, 5, CLASSES) is None
    assert behavior_groups.group_for_row("instances", None, 0, CLASSES) is None


def test_instance_views_restricted_to_a_group_keep_filters_and_sort():
    t = table()
    specs = behavior_metrics.metric_specs(t.scalars)
    view = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", group="class:0"), specs, CLASSES, ATTRS)
    assert view.order.tolist() == [0, 1] and view.group_size == 2 and view.group == behavior_groups.Group("class", "0")
    assert view.hists.sum(axis=1).tolist() == [2, 2, 2]  # distributions over the group's instances only
    newerr = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", filt="newerr", group="attr:ink:light"), specs,
                          CLASSES, ATTRS)
    assert newerr.order.tolist() == [0, 3] and newerr.group_size == 2
    by_kl = behavior_view.build_view(t, behavior_view.ViewState(mode="instances", metric="kl", sort="a", group="attr:ink:light"), specs,
                         CLASSES, ATTRS)
    assert by_kl.order.tolist() == [3, 0]
    ex = behavior_view.build_view(t, behavior_view.ViewState(mode="exemplars", group="attr:ink:dark"), specs, CLASSES, ATTRS)
    assert ex.order.tolist() == [2]
    # a group key means nothing for group rows: ignored there
    classes = behavior_view.build_view(t, behavior_view.ViewState(mode="classes", group="class:0"), specs, CLASSES, ATTRS)
    assert classes.order.tolist() == [0, 1, 2] and classes.group is None
