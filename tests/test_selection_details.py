"""Selection Details: the bar chart builder (pure) and the panel's logic, called without a browser."""
from __future__ import annotations

from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from cnc.analysis.comparability import Explanation, Variable, explain_selection
from cnc.demos.digits.build import METRICS, demo_recipe
from cnc.experiment.forest import Metric, parse_experiment
from cnc.server.urlstate import build_query, parse_query
from cnc.ui import selection_details as sd
from cnc.ui.ids import url_part
from cnc.ui.selection_chart import bar_figure, tick_format, value_text, wrap
from cnc.ui.selection_table import table_data

MAG = ["mag10", "mag50", "mag90", "mag10-ft", "mag50-ft", "mag90-ft"]
MIXED = ["mag50", "mag50-ft", "mag50-bn", "mag50-ft-int8s", "layer50", "taylor50-ft", "base-int8d"]
ACC = Metric(name="Accuracy", format=".1%", unit="", higher_is_better=True)


def demo_shaped(accuracy: dict[str, float | None] | None = None):
    """The demo's tree with made-up metrics (no training): accuracy = 1 - amount/2, +0.1 if fine-tuned."""
    accuracy = accuracy or {}
    models = [{"id": "base", "base": None, "tag": "Base CNN", "metrics": {"Accuracy": 0.97, "Size": 100.0}}]
    for s in demo_recipe():
        amount = s.params.get("amount", 0.5)
        acc = accuracy.get(s.id, round(1 - amount / 2 + (0.1 if s.op == "fine-tune" else 0), 3))
        models.append({"id": s.id, "base": s.base, "operation": {"name": s.op, "parameters": s.params},
                       "metrics": {"Accuracy": acc, "Size": round(100 * (1 - amount), 1)}})
    metrics = [{k: v for k, v in m.items() if k != "description"} for m in METRICS]
    return parse_experiment({"metrics": metrics, "models": models})


def fake_ctx(exp=None, color: str | None = "Accuracy", version: int = 0):
    """The three things the panel reads from an AppContext."""
    return SimpleNamespace(experiment=exp or demo_shaped(), version=version,
                           config=SimpleNamespace(defaults=SimpleNamespace(color=color)))


def bars(fig: dict) -> dict[tuple[str, str], float | None]:
    """(x label, trace name) -> y, one entry per bar."""
    return {(x, t["name"]): y for t in fig["data"] for x, y in zip(t["x"], t["y"])}


# ---------------------------------------------------------------- the figure builder (pure)

def two_vars() -> Explanation:
    return Explanation(
        variables=[Variable("parameter", "amount", (0.1, 0.5, 0.9)),
                   Variable("presence", "fine-tune", ("none", "fine-tune"))],
        rows={"a": (0.1, "none"), "b": (0.5, "none"), "c": (0.9, "none"),
              "d": (0.1, "fine-tune"), "e": (0.9, "fine-tune")},  # (0.5, fine-tune) missing
        needs_refinement=False,
        recipes={m: m for m in "abcde"},
    )


def test_two_variables_make_grouped_bars_with_labels_and_legend_title():
    fig = bar_figure(two_vars(), {"a": 0.9, "b": 0.8, "c": 0.5, "d": 0.95, "e": 0.7}, ACC)
    go.Figure(fig)  # a valid plotly figure
    assert [t["name"] for t in fig["data"]] == ["no", "yes"]
    assert bars(fig) == {("0.1", "no"): 0.9, ("0.5", "no"): 0.8, ("0.9", "no"): 0.5,
                         ("0.1", "yes"): 0.95, ("0.9", "yes"): 0.7}  # the missing combination has no bar
    assert fig["data"][0]["text"] == ["90.0%", "80.0%", "50.0%"]
    lay = fig["layout"]
    assert lay["barmode"] == "group" and lay["xaxis"]["type"] == "category"
    assert lay["xaxis"]["categoryarray"] == ["0.1", "0.5", "0.9"]
    assert lay["xaxis"]["title"]["text"] == "amount"
    assert lay["legend"]["title"]["text"].strip() == "fine-tune"
    assert lay["yaxis"]["tickformat"] == ".1~%"


def test_missing_metric_value_leaves_an_empty_slot_not_a_zero():
    fig = bar_figure(two_vars(), {"a": 0.9, "b": None, "c": float("nan"), "d": 0.95}, ACC)
    got = bars(fig)
    assert got[("0.5", "no")] is None and got[("0.9", "no")] is None and got[("0.9", "yes")] is None
    assert fig["data"][0]["text"] == ["90.0%", "", ""]
    assert "—" in fig["data"][0]["hovertext"][1]


def test_one_variable_is_one_bar_group_per_value_without_legend():
    expl = Explanation([Variable("parameter", "amount", (0.5, 0.7))], {"x": (0.5,), "y": (0.7,)}, False)
    fig = bar_figure(expl, {"x": 0.6, "y": 0.4}, ACC)
    assert len(fig["data"]) == 1 and fig["layout"]["showlegend"] is False
    assert fig["data"][0]["x"] == ["0.5", "0.7"]


def test_no_variables_gives_one_bar_per_model_labelled():
    expl = Explanation([], {"x": (), "y": ()}, False)
    fig = bar_figure(expl, {"x": 0.6, "y": 0.4}, ACC, labels={"x": "Model X", "y": "y"})
    assert fig["data"][0]["x"] == ["Model X", "y"]


def test_models_sharing_a_cell_get_their_own_bars():
    expl = Explanation([Variable("parameter", "amount", (0.5, 0.7))],
                       {"x": (0.5,), "twin": (0.5,), "y": (0.7,)}, False)
    fig = bar_figure(expl, {"x": 0.6, "twin": 0.61, "y": 0.4}, ACC)
    assert len(fig["data"]) == 2
    assert fig["data"][1]["customdata"] == ["twin"] and fig["data"][1]["showlegend"] is False
    assert fig["data"][1]["marker"]["color"] == fig["data"][0]["marker"]["color"]


def test_user_text_is_escaped_everywhere():
    expl = Explanation([Variable("operation", "<i>op</i>", ("<b>x</b>", "y&z"))],
                       {"<script>": ("<b>x</b>",), "m2": ("y&z",)}, False, recipes={"<script>": "<b>x</b>", "m2": "y&z"})
    fig = bar_figure(expl, {"<script>": 0.5, "m2": 0.6}, ACC, labels={"<script>": "<img src=x>"})
    assert fig["data"][0]["x"] == ["&lt;b&gt;x&lt;/b&gt;", "y&amp;z"]
    assert fig["layout"]["xaxis"]["title"]["text"] == "&lt;i&gt;op&lt;/i&gt;"
    assert "&lt;img src=x&gt;" in fig["data"][0]["hovertext"][0] and "<img" not in fig["data"][0]["hovertext"][0]


def test_value_text_and_wrapping():
    presence = Variable("presence", "fine-tune", ("none", "fine-tune"))
    assert [value_text(presence, v) for v in presence.values] == ["no", "yes"]
    param = Variable("parameter", "amount", (0.5,))
    assert value_text(param, 0.5) == "0.5" and value_text(param, (1, 2)) == "1, 2"
    long = "magnitude prune(amount=0.5) → fine-tune(epochs=3) → simulated int8(mode=static)"
    lines = wrap(long).split("<br>")
    assert len(lines) >= 3 and all(len(x) <= 22 for x in lines) and "".join(lines).replace(" ", "") == long.replace(" ", "")
    assert wrap("short") == "short"
    assert tick_format(Metric(name="n", format=",d")) == ",~d"
    assert tick_format(Metric(name="n", format="weird")) == ""


# ---------------------------------------------------------------- panel logic (what the callbacks call)

def test_magnitude_sweep_charts_amount_by_fine_tune():
    c = sd.panel_content(fake_ctx(), MAG, None)
    assert c.metric == "Accuracy" and not c.notes
    assert [v.label for v in c.chart.variables] == ["amount", "fine-tune"]
    fig = c.figure
    assert fig["layout"]["xaxis"]["title"]["text"] == "amount"
    assert bars(fig)[("0.5", "yes")] == pytest.approx(0.85)
    assert bars(fig)[("0.9", "no")] == pytest.approx(0.55)


def test_default_metric_is_the_config_colour_else_the_first():
    assert sd.panel_content(fake_ctx(color="Size"), MAG, None).metric == "Size"
    assert sd.panel_content(fake_ctx(color=None), MAG, None).metric == "Accuracy"  # first declared
    assert sd.panel_content(fake_ctx(), MAG, "nope").metric == "Accuracy"
    assert sd.panel_content(fake_ctx(), MAG, "Size").figure["data"][0]["y"] == [90.0, 50.0, 10.0]


def test_few_models_show_the_table_only():
    ctx = fake_ctx()
    for sel in ([], ["mag50"], ["ghost"]):
        c = sd.panel_content(ctx, sel, None)
        assert c.figure is None and c.chart is None
    table = table_data(ctx.experiment, sd.panel_content(ctx, ["mag50"], "Accuracy"))
    assert len(table["rows"]) == 1 and "75.0%" in table["rows"][0]
    assert table_data(ctx.experiment, sd.panel_content(ctx, [], "Accuracy")) is None


def test_missing_values_render_as_missing_in_the_table():
    exp = demo_shaped({"mag50": None})
    c = sd.panel_content(fake_ctx(exp), MAG, "Accuracy")
    table = table_data(exp, c)
    row = next(r for r in table["rows"] if r[1] == "mag50")
    assert table["missing"] in row
    assert bars(c.figure)[("0.5", "no")] is None


def test_needs_refinement_charts_two_variables_and_says_what_is_held():
    c = sd.panel_content(fake_ctx(), MIXED, None)
    assert c.explanation.needs_refinement and len(c.chart.variables) == 2
    assert any("held" in n or "the most common" in n for n in c.notes)
    assert any("Charting 6 of 7" in n for n in c.notes)


def test_flatten_gives_one_bar_per_model_named_by_recipe():
    c = sd.panel_content(fake_ctx(), MIXED, None, sd.Refinement(flatten=True))
    assert [v.label for v in c.chart.variables] == ["recipe"]
    assert sorted(c.figure["data"][0]["customdata"]) == sorted(MIXED)
    assert any("fine-tune 3" in x for x in c.figure["data"][0]["x"])
    assert not any(sep in x for x in c.figure["data"][0]["x"] for sep in (" + ", " & ", "#"))


def test_kept_variables_values_and_models():
    ctx = fake_ctx()
    expl = sd.explain(ctx, MIXED)
    labels = [v.label for v in expl.variables]
    c = sd.panel_content(ctx, MIXED, None, sd.Refinement(variables=("recalibrate BN",)))
    assert [v.label for v in c.chart.variables] == ["recalibrate BN"]
    # drop the value "layerwise prune" of the first-step variable, and one model
    assert "first step" in labels
    r = sd.Refinement(dropped_values=(("first step", "layerwise prune 0.5"),), dropped_models=("base-int8d",))
    assert sd.kept_models(expl, r) == [m for m in MIXED if m not in ("layer50", "base-int8d")]
    c = sd.panel_content(ctx, MIXED, None, r)
    assert "layer50" not in c.chart.rows and "base-int8d" not in c.chart.rows
    charted = {r[1]: r[2] for r in table_data(ctx.experiment, c)["rows"]}
    assert charted["layer50"] == 0 and charted["base-int8d"] == 0 and {m for m, on in charted.items() if on} == set(c.chart.rows)


def test_more_than_two_kept_variables_chart_the_first_two():
    c = sd.panel_content(fake_ctx(), MIXED, None, sd.Refinement(variables=("recalibrate BN", "fine-tune → simulated int8", "first step")))
    assert len(c.chart.variables) <= 2 and any("Only two" in n for n in c.notes)


def test_refinement_leaving_nothing_says_so():
    c = sd.panel_content(fake_ctx(), MAG, None, sd.Refinement(dropped_models=tuple(MAG)))
    assert c.figure is None and any("no models" in n for n in c.notes)


def test_query_refinement_is_validated_with_notices():
    expl = sd.explain(fake_ctx(), MIXED)
    notices: list[str] = []
    q = {"svars": "recalibrate BN,2,ghost,recalibrate BN",
         "sval": "first step:taylor prune 0.5,first step:gone,amount:0.5,junk",
         "sxmod": "mag50,ghost", "sflat": "maybe"}
    r = sd.refinement_from_query(q, expl, notices)
    assert r.variables == ("recalibrate BN",) and r.dropped_models == ("mag50",)
    assert r.dropped_values == (("first step", "taylor prune 0.5"),)
    assert not r.flatten and len(notices) == 3 and "no longer matches" in notices[0]
    assert sd.refinement_from_query({"svars": "none"}, expl, []).variables == ()
    assert sd.refinement_from_query({"svars": "9"}, expl, []).variables is None


def test_link_names_variables_so_it_survives_new_models():
    """A refinement link made before more models were logged still charts the same variable."""
    fake_ctx()
    r = sd.Refinement(variables=("recalibrate BN",), dropped_values=(("first step", "taylor prune 0.5"),))
    query = parse_query(build_query({**r.params(), "sel": MIXED}))
    assert query["svars"] == "recalibrate BN" and query["sval"] == "first step:taylor prune 0.5"
    grown = demo_shaped()
    grown.models["zz"] = type(grown.models["mag50"])(id="zz", base="base")
    grown.relink()
    notices: list[str] = []
    again = sd.refinement_from_query(query, sd.explain(fake_ctx(grown, version=2), MIXED), notices)
    assert again == r and notices == []


def test_url_params_round_trip_through_the_layout():
    ctx = fake_ctx()
    r = sd.Refinement(variables=("fine-tune → simulated int8", "first step"), dropped_values=(("first step", "magnitude prune 0.5"),),
                      dropped_models=("mag50",), flatten=False)
    params = sd.url_params(ctx, "Size", r)
    assert sd.url_params(ctx, "Accuracy", sd.Refinement()) == {
        "smetric": None, "svars": None, "sval": None, "sxmod": None, "sflat": None}
    query = parse_query(build_query({**params, "sel": MIXED}))
    notices: list[str] = []
    page = sd.layout(ctx, query, notices)
    assert notices == []
    stores = {repr(c.id): c.data for c in _walk(page) if type(c).__name__ == "Store"}
    assert stores[repr(url_part(sd.NAME))] == params
    assert sd.refinement_from_data(stores[repr(sd.REFINE_STATE)], MIXED) == r


def test_layout_reports_unknown_metric_and_starts_empty_without_selection():
    notices: list[str] = []
    page = sd.layout(fake_ctx(), {"smetric": "Bogus"}, notices)
    assert len(notices) == 1 and "Bogus" in notices[0]
    assert "Select models" in repr(page)


def test_stale_refinement_does_not_apply_to_another_selection():
    data = sd.Refinement(flatten=True).to_data(MAG)
    assert sd.refinement_from_data(data, MAG).flatten
    assert sd.refinement_from_data(data, MAG[:3]) == sd.Refinement()
    assert sd.refinement_from_data(None, MAG) == sd.Refinement()


def test_controls_map_back_to_a_refinement():
    expl = Explanation([Variable("parameter", "amount", (0.1, 0.5, 0.9)), Variable("presence", "ft", ("none", "ft")),
                        Variable("parameter", "bits", (4, 8))], {}, True)
    r = sd.refinement_from_controls(expl, "flat", [1], {0: [0, 2], 1: None}, ["m"], auto=False)
    assert r == sd.Refinement(("ft",), (("amount", "0.5"), ("ft", "no"), ("ft", "yes")), ("m",), True)  # bits: kept
    assert sd.refinement_from_controls(expl, "vars", [0, 1], {}, [], auto=True).variables is None


def test_explanations_are_memoized_per_experiment_version():
    ctx = fake_ctx()
    assert sd.explain(ctx, MAG) is sd.explain(ctx, MAG)
    other = fake_ctx(ctx.experiment, version=1)
    assert sd.explain(other, MAG) is not sd.explain(ctx, MAG)
    assert sd.explain(ctx, MAG).variables == explain_selection(ctx.experiment, MAG).variables


def test_compare_link_carries_the_selection():
    assert sd.compare_href(["a", "b"]) == "/compare?models=a,b"


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def test_many_single_colour_bars_turn_horizontal():
    """QA: one bar per recipe had overlapping rotated labels; long lists read as rows instead."""

    ids = [f"m{i}" for i in range(14)]
    recipes = tuple(f"magnitude prune(amount={i / 20:g}) → fine-tune(epochs=3)" for i in range(14))
    expl = Explanation(variables=[Variable("sequence", "recipe", recipes)],
                       rows={m: (r,) for m, r in zip(ids, recipes)}, needs_refinement=False)
    fig = bar_figure(expl, {m: 0.5 + i / 100 for i, m in enumerate(ids)}, None)
    assert {t["orientation"] for t in fig["data"]} == {"h"}
    assert fig["layout"]["yaxis"]["type"] == "category" and fig["layout"]["height"] > 380
    assert fig["data"][0]["x"][0] == 0.5 and "fine-tune" in fig["data"][0]["y"][0]
