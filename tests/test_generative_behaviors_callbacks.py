"""Behaviors tab for generative models: layout from the URL and callback bodies called directly,
on synthetic stored dicts shaped like precompute's (cnc.bench.generative_behaviors)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from dash import html

from cnc.bench.generative_behaviors import SyntheticGenerative
from cnc.ui import behaviors as ui
from cnc.ui import behaviors_export, layers
from cnc.ui.behaviors_data import TABLES
from cnc.ui.behaviors_grid import col_for_sort
from tests.test_behaviors_callbacks import by_id, find

MODELS = ["root0", "m2", "m3"]
SELECTION = {"models": MODELS, "base": "root0"}


@pytest.fixture
def data():
    return SyntheticGenerative(MODELS, n=200)


@pytest.fixture
def ctx(synthetic_ctx, data):
    data.attach(synthetic_ctx)
    return synthetic_ctx


def query(**kw):
    return {"models": ",".join(MODELS), **kw}


def text_of(components) -> str:
    return json.dumps([c.to_plotly_json() if hasattr(c, "to_plotly_json") else c for c in components], default=str)


def values(**kw):
    return {"mode": "instances", "attr": None, "metric": "sc:f1", "rel": "abs", "filt": "all", "min": None,
            "flips": 1, "dir": "ge", **kw}


def all_rows(ctx, state):
    return all_rows_of(ctx, SELECTION, state)


def test_default_view_is_the_top_changes_in_outputs(ctx, data):
    notices = []
    tree = ui.layout(ctx, query(), notices)
    state = by_id(tree, ui.STATE).data
    assert not notices and state["mode"] == "exemplars" and state["metric"] == "sc:f1"
    assert not any(by_id(tree, ui.url_part("behaviors")).data.values())  # defaults stay out of the URL
    modes = [o["value"] for o in by_id(tree, ui.CONTROL["mode"]).options]
    assert modes == ["subgroups", "instances", "exemplars"]  # no class rows; no "task" attribute
    labels = {o["value"]: o["label"] for o in by_id(tree, ui.CONTROL["metric"]).options}
    assert labels["sc:exact_match"] == "Exact match" and labels["kl"] == "KL divergence vs root0 (per token)"
    assert {"r2w", "w2r", "flip", "top1", "nll", "ppl", "rep"} <= set(labels)
    grid = find(tree, lambda c: type(c).__name__ == "AgGrid")[0]
    assert [c["headerName"] for c in grid.columnDefs[:4]] == ["Instance", "Reference", "Base output", "Changed"]
    # the panel shows the top-ranked instance without a click
    panel = by_id(tree, ui.DETAIL).children
    top = ui.view_for(ctx, ui.table_for(ctx, MODELS), ui.state_from_dict(state)[0]).order[0]
    assert panel[0].children == f"Instance #{top} · the top change in outputs"
    assert data.prompts[top] in text_of(panel) and data.texts["m3"][top] in text_of(panel)
    assert "bh-generative" in by_id(tree, ui.BODY).className


def test_classifier_only_url_values_get_a_notice(ctx):
    notices = []
    tree = ui.layout(ctx, query(brows="classes", bmetric="confabs", bi="5000"), notices)
    state = by_id(tree, ui.STATE).data
    assert len(notices) == 3 and state["mode"] == "exemplars" and state["metric"] == "sc:f1"


def test_instance_rows_carry_texts_and_sort_by_score_change(ctx, data):
    state, _ = ui.state_from_query(ctx, {"brows": "instances", "bmetric": "sc:f1", "brel": "1", "bsort": "m3",
                                         "bdir": "asc"}, [], MODELS)
    rows = all_rows(ctx, state)
    assert rows["rowCount"] == 200
    first = rows["rowData"][0]
    i = first["i"]
    assert first["ref"] == data.references[i][0] and first["base_out"] == data.texts["root0"][i]
    assert first["c2_t"] == data.texts["m3"][i] and first["c2"].startswith("-")  # the biggest F1 drop first
    drops = [float(r["c2"].split()[0]) for r in rows["rowData"] if r["c2"] != "—"]
    assert drops == sorted(drops)
    url = ui.url_params(state, None, ui.defaults(ctx, MODELS))
    assert url["brows"] == "instances" and url["bmetric"] is None and url["bsort"] == "m3"


def test_rows_sort_by_kl_and_repetition(ctx):
    for metric in ("kl", "rep"):
        state, _ = ui.state_from_query(ctx, {"brows": "instances", "bmetric": metric, "bsort": "m3"}, [], MODELS)
        resp, _ = ui.on_rows(ctx, {"startRow": 0, "endRow": 100, "sortModel": [{"colId": "c2", "sort": "desc"}]},
                             SELECTION, ui.state_to_dict(state, None))
        table = ui.table_for(ctx, MODELS)
        shown = ui.view_for(ctx, table, state).shown[2]
        assert resp["rowData"][0]["i"] == int(shown.argmax())


def test_exact_match_filters_and_flip_words(ctx, data):
    state, *_ = ui.on_controls(ctx, SELECTION, values(metric="r2w", filt="newerr"), None, version=1)
    rows = all_rows(ctx, state)["rowData"]
    assert rows
    for r in rows:
        i = r["i"]
        assert data.texts["root0"][i] == data.references[i][0]  # the base was right
        assert "right → wrong" in (r["c1"], r["c2"])


def test_subgroup_rows_and_drill_down(ctx, data):
    state, *_ = ui.on_controls(ctx, SELECTION, values(mode="subgroups", attr="question type", metric="r2w"),
                               None, version=2)
    rows = all_rows(ctx, state)["rowData"]
    assert [r["row"] for r in rows] == ["colour", "place"]
    drilled = ui.on_group_click(ctx, {"rowId": "g1", "colId": "row"}, SELECTION, ui.state_to_dict(state, None))
    assert drilled["group"] == "attr:question type:place" and drilled["mode"] == "instances"


def test_task_rows_from_a_task_attribute(synthetic_ctx):
    SyntheticGenerative(MODELS, n=120, tasks=True).attach(synthetic_ctx)
    tree = ui.layout(synthetic_ctx, query(brows="tasks", bmetric="sc:exact_match"), [])
    assert "tasks" in [o["value"] for o in by_id(tree, ui.CONTROL["mode"]).options]
    state, _ = ui.state_from_dict(by_id(tree, ui.STATE).data)
    rows = all_rows(synthetic_ctx, state)["rowData"]
    assert [r["row"] for r in rows] == ["colours", "places"] and sum(r["n"] for r in rows) == 120
    grid = find(tree, lambda c: type(c).__name__ == "AgGrid")[0]
    assert grid.columnDefs[0]["headerName"] == "Task"
    drilled = ui.on_group_click(synthetic_ctx, {"rowId": "g0", "colId": "row"}, SELECTION, ui.state_to_dict(state, None))
    assert drilled["group"] == "attr:task:colours"


def test_open_instance_marks_changed_words_as_components(ctx, data):
    i = next(k for k in range(200) if data.texts["m3"][k] != data.texts["root0"][k])
    data.texts["m3"][i] = data.texts["root0"][i] + " <script>alert(1)</script>"
    TABLES.clear()
    state, _ = ui.state_from_query(ctx, {"brows": "instances"}, [], MODELS)
    panel = ui.detail_panel(ctx, MODELS, i, state)
    assert panel[0].children == f"Instance #{i}"
    inserted = find(html.Div(panel), lambda c: isinstance(c, html.Ins))
    assert any("<script>alert(1)</script>" in c.children for c in inserted)  # a string child: rendered as text
    rows = find(html.Div(panel), lambda c: isinstance(c, html.Tr) and "data-model" in c.to_plotly_json()["props"])
    assert sorted(r.to_plotly_json()["props"]["data-model"] for r in rows) == sorted(MODELS)


def test_an_empty_output_is_marked(ctx, data):
    data.texts["m2"][3] = ""
    TABLES.clear()
    panel = ui.detail_panel(ctx, MODELS, 3, ui.state_from_query(ctx, {"brows": "instances"}, [], MODELS)[0])
    row = [r for r in find(html.Div(panel), lambda c: isinstance(c, html.Tr))
           if r.to_plotly_json()["props"].get("data-model") == "m2"][0]
    assert "(empty output)" in text_of([row]) and find(row, lambda c: isinstance(c, html.Del))


def test_kl_reference_note_when_the_base_is_not_the_reference(ctx):
    selection = {"models": ["m2", "root0", "m3"], "base": "m2"}
    *_, status, _ = ui.on_controls(ctx, selection, values(metric="kl"), None, version=3)
    text = text_of(status)
    assert "measured against root0, the KL reference, not against the chosen base m2" in text
    *_, status, _ = ui.on_controls(ctx, SELECTION, values(metric="kl"), None, version=4)
    assert "KL reference" not in text_of(status)


def test_missing_and_pending_models(ctx):
    selection = {"models": ["root0", "m2", "m5"], "base": "root0"}
    *_, status, _ = ui.on_controls(ctx, selection, values(), None, version=5)
    assert "m5 is left out: no checkpoint or stored outputs" in text_of(status)
    *_, status, _ = ui.on_controls(ctx, {"models": ["m5", "root0"], "base": "m5"}, values(), None, version=6)
    assert "The base model m5 has no stored outputs" in text_of(status)


def test_csv_export_has_full_texts_and_values(ctx, data):
    state, _ = ui.state_from_query(ctx, {"brows": "instances", "bmetric": "rep"}, [], MODELS)
    text = behaviors_export.csv_for(ctx, SELECTION, ui.state_to_dict(state, None))
    lines = text.splitlines()
    assert lines[0].startswith("instance,reference,base output,models whose output changed,root0")
    assert len(lines) == 201 and lines[1].split(",")[1] == data.references[0][0]




# ----------------------------------------------------------------------------- real precompute (tiny LM)

@pytest.fixture(scope="module")
def lm_ctx(tmp_path_factory):
    """A real generative experiment: tiny character LMs (base, pruned 30 % and 60 %) precomputed."""
    from cnc.experiment.config import load_config
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext
    from tests.tiny_lm import write_tracker_experiment

    folder = tmp_path_factory.mktemp("lm")
    write_tracker_experiment(folder, ["3"])
    cfg = load_config(folder / "exp", cache_dir=folder / "cache")
    store = SummaryStore(cfg.cache_dir)
    assert not precompute(cfg, store, progress=False).failed
    return AppContext(cfg, store)


def test_real_precompute_through_the_behaviors_tab(lm_ctx):
    models = ["base", "p30", "p60"]
    selection = {"models": models, "base": "base"}
    tree = ui.layout(lm_ctx, {"models": ",".join(models)}, [])
    state, _ = ui.state_from_dict(by_id(tree, ui.STATE).data)
    assert state.mode == "exemplars" and state.metric == "sc:f1"
    labels = {o["value"]: o["label"] for o in by_id(tree, ui.CONTROL["metric"]).options}
    assert labels["kl"] == "KL divergence vs base (per token)" and "sc:length" in labels
    table = ui.table_for(lm_ctx, models)
    outs = {m: lm_ctx.outputs(m) for m in models}
    for k, m in enumerate(models):
        assert list(table.texts[k]) == outs[m]["texts"]
        n = outs[m]["ntokens"]
        per_token = np.asarray(outs[m]["kl"], np.float64)
        assert table.per_token["kl"][k] == pytest.approx(
            [per_token[a:b].mean() for a, b in zip(np.cumsum(n) - n, np.cumsum(n))], rel=1e-6)
    # the panel: each model's own stored output for the instance shown
    panel = by_id(tree, ui.DETAIL).children
    shown = int(panel[0].children.split("#")[1].split()[0])
    rows = find(html.Div(panel), lambda c: isinstance(c, html.Tr) and "data-model" in c.to_plotly_json()["props"])
    assert {r.to_plotly_json()["props"]["data-model"] for r in rows} == set(models)
    body = text_of(panel)
    assert all(json.dumps(outs[m]["texts"][shown])[1:-1] in body for m in models if outs[m]["texts"][shown])
    # instance rows by KL, then the grid's first block and the CSV
    state, *_ = ui.on_controls(lm_ctx, selection, values(metric="kl"), None, version=1)
    rows = all_rows_of(lm_ctx, selection, state)
    assert rows["rowCount"] == len(outs["base"]["texts"])
    assert {r["c0"] for r in rows["rowData"]} == {"0"}  # the root against itself
    csv = behaviors_export.csv_for(lm_ctx, selection, ui.state_to_dict(state, None))
    assert csv.count("\n") == len(outs["base"]["texts"]) + 1


def test_layers_tab_renders_for_language_models(lm_ctx):
    page = json.dumps(layers.layout(lm_ctx, {"models": "base,p60", "tab": "layers", "lmode": "weights"}, [])
                      .to_plotly_json(), default=str)
    assert "norm" in page and "head" in page


def all_rows_of(ctx, selection, state):
    """The first block, as the grid asks for it (its sort model says the state's sort)."""
    col = col_for_sort(ui.view_for(ctx, ui.table_for(ctx, selection["models"]), state))
    sort = [{"colId": col, "sort": "desc" if state.desc else "asc"}] if col else []
    resp, _ = ui.on_rows(ctx, {"startRow": 0, "endRow": 100, "sortModel": sort}, selection, ui.state_to_dict(state, None))
    return resp


def test_order_choice_lives_in_the_url_and_puts_fixes_first(ctx, data):
    """Top changes open on what compression broke; brank=fixed (the Order control) on what it fixed."""
    tree = ui.layout(ctx, query(), [])
    assert by_id(tree, ui.CONTROL["rank"]).value == "broke" and by_id(tree, ui.WRAP["rank"]).style is None
    table = ui.table_for(ctx, MODELS)
    broke = ui.view_for(ctx, table, ui.state_from_dict(by_id(tree, ui.STATE).data)[0]).order
    right = table.correct
    assert right[0, broke[0]] and not right[1:, broke[0]].all()  # the base right, a model wrong

    notices = []
    tree = ui.layout(ctx, query(brank="fixed"), notices)
    state = by_id(tree, ui.STATE).data
    assert not notices and state["rank"] == "fixed" and by_id(tree, ui.CONTROL["rank"]).value == "fixed"
    assert by_id(tree, ui.url_part("behaviors")).data["brank"] == "fixed"
    fixed = ui.view_for(ctx, table, ui.state_from_dict(state)[0]).order
    assert not right[0, fixed[0]] and right[1:, fixed[0]].any()  # the base wrong, a model right

    state, inst, *_ = ui.on_controls(ctx, SELECTION, values(mode="exemplars", rank="broke"),
                                     ui.state_to_dict(ui.state_from_dict(state)[0], None), "v1")
    assert state.rank == "broke" and ui.url_params(state, inst, ("exemplars", "sc:f1")).get("brank") is None
    notices = []
    tree = ui.layout(ctx, query(brank="../etc"), notices)
    assert by_id(tree, ui.STATE).data["rank"] == "broke" and len(notices) == 1
    tree = ui.layout(ctx, query(brows="instances"), [])
    assert by_id(tree, ui.WRAP["rank"]).style == {"display": "none"}  # only the top changes have an order
