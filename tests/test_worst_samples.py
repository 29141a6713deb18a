"""Worst samples of one model (issue 31): the ranking (cnc.analysis.worst_samples) and the Behaviors
control that chooses it ("Worst samples of" / "Ranked by", URL keys bworst / bworstby), called directly
on synthetic stored outputs of a generative task and of a classifier."""
from __future__ import annotations

import numpy as np
import pytest

from cnc.analysis.worst_samples import Damage, right_to_wrong, worst_order
from cnc.bench.behaviors import SyntheticOutputs
from cnc.bench.generative_behaviors import SyntheticGenerative
from cnc.ui import behaviors as ui
from tests.test_behaviors_callbacks import by_id
from tests.test_generative_behaviors_callbacks import values

MODELS = ["root0", "m2", "m3"]
SELECTION = {"models": MODELS, "base": "root0"}
NAN = np.nan


def test_right_to_wrong_and_unknowns():
    assert np.array_equal(right_to_wrong([1, 1, 0, NAN], [0, 1, 0, 0]), [1, 0, 0, NAN], equal_nan=True)
    assert np.array_equal(right_to_wrong(np.array([True, True]), np.array([False, True])), [1, 0])


def test_order_by_each_damage_with_ties_and_unknowns_last():
    damage = Damage(right_to_wrong=np.array([0, 1, 1, 0, NAN, 0]), drop=np.array([0.5, 0.1, 0.3, NAN, 0.9, 0.5]),
                    kl=np.array([0.2, 0.1, 0.0, 3.0, 1.0, 0.4]))
    order = np.arange(6)
    # right -> wrong first (2 has the larger drop), then by drop (5 and 0 tie: KL), unknown drop, then
    # unknown right -> wrong last
    assert worst_order(order, damage, "r2w").tolist() == [2, 1, 5, 0, 3, 4]
    assert worst_order(order, damage, "drop").tolist() == [4, 5, 0, 2, 1, 3]
    assert worst_order(order, damage, "kl").tolist() == [3, 4, 5, 0, 1, 2]
    assert worst_order(np.array([5, 0, 1]), damage, "kl").tolist() == [5, 0, 1]  # only the rows kept
    with pytest.raises(ValueError, match="r2w, drop, kl"):
        worst_order(order, damage, "loss")


@pytest.fixture
def gen_ctx(synthetic_ctx):
    SyntheticGenerative(MODELS, n=200).attach(synthetic_ctx)
    return synthetic_ctx


def _order(ctx, state_dict):
    table = ui.table_for(ctx, MODELS)
    return table, ui.view_for(ctx, table, ui.state_from_dict(state_dict)[0]).order


def test_generative_worst_samples_of_one_model_from_the_url(gen_ctx):
    notices = []
    tree = ui.layout(gen_ctx, {"models": ",".join(MODELS), "bworst": "m2"}, notices)
    state = by_id(tree, ui.STATE).data
    assert not notices and state["worst"] == "m2" and state["worst_by"] == "r2w"
    assert by_id(tree, ui.CONTROL["worst"]).value == "m2" and by_id(tree, ui.WRAP["worst"]).style is None
    assert [o["value"] for o in by_id(tree, ui.CONTROL["worst"]).options] == ["m2", "m3"]  # not the base
    assert by_id(tree, ui.WRAP["worstby"]).style is None and by_id(tree, ui.WRAP["rank"]).style == {"display": "none"}
    labels = [o["label"] for o in by_id(tree, ui.CONTROL["worstby"]).options]
    assert labels == ["Right → wrong first (exact match)", "Largest F1 drop first",
                      "Largest KL divergence first (per token, vs its root)"]
    table, order = _order(gen_ctx, state)
    em, f1 = table.scores["exact_match"], table.scores["f1"]
    broke = (em[0] >= 0.5) & (em[1] < 0.5)
    n_broke = int(broke[order].sum())
    assert n_broke > 0 and broke[order[:n_broke]].all() and not broke[order[n_broke:]].any()
    drops = (f1[0] - f1[1])[order[:n_broke]]
    assert np.all(np.diff(drops) <= 1e-12)  # within right -> wrong: the larger F1 drop first

    tree = ui.layout(gen_ctx, {"models": ",".join(MODELS), "brows": "instances", "bworst": "m3", "bworstby": "kl"}, [])
    state = by_id(tree, ui.STATE).data
    table, order = _order(gen_ctx, state)
    kl = table.per_token["kl"][2]
    assert order.size == table.n and np.array_equal(kl[order][:20], np.sort(kl)[::-1][:20])
    assert by_id(tree, ui.url_part("behaviors")).data["bworstby"] == "kl"


def test_bad_or_base_model_in_the_link_gets_a_notice(gen_ctx):
    for bad in ("root0", "nope", "../x"):
        notices = []
        tree = ui.layout(gen_ctx, {"models": ",".join(MODELS), "bworst": bad}, notices)
        assert by_id(tree, ui.STATE).data["worst"] is None and len(notices) == 1 and "bworst" in notices[0]
    notices = []
    tree = ui.layout(gen_ctx, {"models": ",".join(MODELS), "bworst": "m2", "bworstby": "mse"}, notices)
    assert by_id(tree, ui.STATE).data["worst_by"] == "r2w" and "bworstby" in notices[0]
    tree = ui.layout(gen_ctx, {"models": ",".join(MODELS), "brows": "subgroups", "bworst": "m2"}, [])
    assert by_id(tree, ui.WRAP["worst"]).style == {"display": "none"}  # group rows have no samples to rank
    tree = ui.layout(gen_ctx, {"models": "root0", "brows": "instances"}, [])
    assert by_id(tree, ui.WRAP["worst"]).style == {"display": "none"}  # the base alone: no model to choose


def test_choosing_a_model_in_the_control_ranks_and_writes_the_url(gen_ctx):
    sorted_state = ui.state_to_dict(ui.state_from_dict({"mode": "instances", "sort": "m3", "desc": True})[0], None)
    state, inst, *_ = ui.on_controls(gen_ctx, SELECTION, values(worst="m3", worstby="drop"), sorted_state, "v1")
    assert state.worst == "m3" and state.worst_by == "drop" and state.sort is None  # the ranking replaces the sort
    url = ui.url_params(state, inst, ("exemplars", "sc:f1"))
    assert url["bworst"] == "m3" and url["bworstby"] == "drop"
    table, order = _order(gen_ctx, ui.state_to_dict(state, None))
    drop = table.scores["f1"][0] - table.scores["f1"][2]
    assert np.array_equal(drop[order][:10], np.sort(drop)[::-1][:10])
    response, _ = ui.on_rows(gen_ctx, {"startRow": 0, "endRow": 5}, SELECTION, ui.state_to_dict(state, None))
    assert [r["id"] for r in response["rowData"]] == [f"i{i}" for i in order[:5]]

    # a click on a column header sorts by it; the ranking stays chosen and comes back without a sort
    response, changed = ui.on_rows(gen_ctx, {"startRow": 0, "endRow": 5, "sortModel": [{"colId": "c1", "sort": "asc"}]},
                                   SELECTION, ui.state_to_dict(state, None))
    assert changed["sort"] == "m2" and changed["worst"] == "m3"
    state, *_ = ui.on_controls(gen_ctx, SELECTION, values(worst=None), changed, "v2")
    assert state.worst is None and ui.url_params(state, None, ("exemplars", "sc:f1"))["bworst"] is None


def test_classifier_worst_samples_by_confidence_drop_and_kl(synthetic_ctx):
    SyntheticOutputs(MODELS, n=500, classes=10).attach(synthetic_ctx)
    tree = ui.layout(synthetic_ctx, {"models": ",".join(MODELS), "brows": "instances", "bworst": "m2"}, [])
    by = {o["value"]: o["label"] for o in by_id(tree, ui.CONTROL["worstby"]).options}
    assert by["drop"] == "Largest drop in true-class probability first"
    table, order = _order(synthetic_ctx, by_id(tree, ui.STATE).data)
    broke = table.correct[0] & ~table.correct[1]
    n = int(broke.sum())
    assert n > 0 and broke[order[:n]].all()
    for by, values_of in (("drop", lambda t: t.conf[0].astype(float) - t.conf[1]), ("kl", lambda t: t.kl[1])):
        state = ui.state_to_dict(ui.state_from_dict({"mode": "instances", "worst": "m2", "worst_by": by})[0], None)
        table, order = _order(synthetic_ctx, state)
        v = values_of(table)
        assert np.allclose(v[order][:10], np.sort(v)[::-1][:10])
