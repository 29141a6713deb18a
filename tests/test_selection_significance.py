"""Selection Details' paired tests (issue 31): the chart's hover and the CSV export say whether each
selected model's change against its root is significant, on a real precomputed classifier
(tests/tiny_task, 2,000 instances) and a real generative model (tests/tiny_lm), checked against
scipy and the paired statistics computed directly."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from scipy import stats

from cnc.analysis import derived_metrics as D
from cnc.analysis import paired_stats as ps
from cnc.analysis.derived_metrics import SUFFIX
from cnc.app.webapp import build_app
from cnc.precompute.run import precompute
from cnc.server.context import AppContext
from cnc.ui import download, selection_details, selection_export
from cnc.ui.selection_significance import selection_tests
from tests.dash_client import call_with, find_key
from tests.test_generative_precompute import precomputed
from tests.test_precompute import load
from tests.tiny_task import save_checkpoint

ACC = "Accuracy" + SUFFIX
MODELS = ["a", "b", "c", "e"]


def classifier_ctx(d) -> AppContext:
    """a (root), b and c pruned (their answers change a lot), e = a with its output bias nudged by
    1e-4 (the same answers): precomputed on 2,000 instances in folder `d`."""
    for i, name in enumerate(["a", "b", "c"]):
        save_checkpoint(d / f"{name}.pt", seed=0, prune=0.5 * i)
    state = torch.load(d / "a.pt", weights_only=True)
    state["3.bias"] += 1e-4
    torch.save(state, d / "e.pt")
    (d / "exp.yaml").write_text(
        "models:\n"
        "  - {id: a, checkpoint: a.pt, metrics: {Acc: 0.5}}\n"
        "  - {id: b, base: a, operation: {name: prune, parameters: {amount: 0.5}}, checkpoint: b.pt, metrics: {Acc: 0.4}}\n"
        "  - {id: c, base: b, operation: {name: prune, parameters: {amount: 1.0}}, checkpoint: c.pt, metrics: {Acc: 0.3}}\n"
        "  - {id: e, base: a, operation: {name: nudge}, checkpoint: e.pt, metrics: {Acc: 0.5}}\n")
    (d / "cfg.yaml").write_text("experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask', activation_sample: 16}\n")
    cfg, store = load(d, n=2000)
    precompute(cfg, store, progress=False)
    return AppContext(cfg, store)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return classifier_ctx(tmp_path_factory.mktemp("sel"))


def _direct(ctx):
    """Per tested model: (right -> wrong, wrong -> right, exact p) against the root a, from the stored predictions."""
    labels = ctx.task_data()["labels"]
    right = {m: ctx.outputs(m)["preds"] == labels for m in MODELS}
    out = {}
    for m in ("b", "c", "e"):
        worse, better = int((right["a"] & ~right[m]).sum()), int((~right["a"] & right[m]).sum())
        p = stats.binomtest(min(worse, better), worse + better, 0.5).pvalue if worse + better else 1.0
        out[m] = (worse, better, p)
    return out


def _hovers(content) -> dict[str, str]:
    return {m: h for t in content.figure["data"] for m, h in zip(t["customdata"], t["hovertext"])}


def test_hover_says_significant_and_not_significant(ctx):
    direct = _direct(ctx)
    assert direct["b"][2] < 0.01 and direct["e"][:2] == (0, 0)  # a real change and none at all
    content = selection_details.panel_content(ctx, MODELS, ACC)
    hovers = _hovers(content)
    assert "vs a" not in hovers["a"]  # the root has nothing to be tested against
    raw = np.array([direct[m][2] for m in ("b", "c", "e")])
    holm = ps.holm(raw)
    for m, p in zip(("b", "c", "e"), holm):
        text = " ".join(hovers[m].replace("<br>", " ").split())
        worse, better, _ = direct[m]
        assert f"vs a: {'Significant' if p <= 0.05 else 'No significant'} change" in text
        assert f"{worse} right → wrong, {better} wrong → right (exact McNemar test)" in text
        assert f"p = {p:.2g} (Holm over the 3 models tested)" in text
    assert "No significant change" in hovers["e"] and "n = 2,000: differences under" in hovers["e"].replace("<br>", " ")
    diff = (direct["b"][1] - direct["b"][0]) / 2000
    assert f"Δ accuracy {diff * 100:+.1f} pt".replace("-", "−") in " ".join(hovers["b"].replace("<br>", " ").split())
    assert any("exact McNemar test over the instances, Holm-adjusted over the 3 models" in n for n in content.notes)

    logged = selection_details.panel_content(ctx, MODELS, "Acc")  # no per-instance values behind it: no test
    assert not any("vs a" in h for h in _hovers(logged).values()) and not any("McNemar" in n for n in logged.notes)
    assert selection_tests(ctx, "Acc", MODELS) is None


def test_change_metric_is_tested_like_its_score(ctx):
    change = selection_tests(ctx, "Accuracy change vs root" + SUFFIX, MODELS)
    plain = selection_tests(ctx, ACC, MODELS)
    assert change.models == plain.models == ["b", "c", "e"] and np.array_equal(change.tests.p, plain.tests.p, equal_nan=True)
    assert selection_tests(ctx, "Mean KL vs root" + SUFFIX, MODELS).tests is None  # a distance: no test


def test_csv_export_has_the_test_columns(ctx):
    app = build_app(ctx)
    client = app.server.test_client()
    sid = json.dumps(download.button_id(selection_export.NAME), separators=(",", ":"), sort_keys=True)
    metric_id = json.dumps(selection_details.METRIC, separators=(",", ":"), sort_keys=True)

    def rows_for(metric):
        r = call_with(app, client, find_key(app, download.file_id(selection_export.NAME), "data"),
                      {(sid, "n_clicks"): 1, ('{"cnc":"overview","role":"selection"}', "data"): MODELS + ["bogus"],
                       (metric_id, "value"): metric})
        assert r.status_code == 200, r.data[:300]
        sent = next(iter(json.loads(r.data)["response"].values()))["data"]
        return list(csv.DictReader(io.StringIO(sent["content"])))

    rows = {r["model id"]: r for r in rows_for(ACC)}
    assert list(rows) == MODELS
    direct = _direct(ctx)
    holm = dict(zip(("b", "c", "e"), ps.holm([direct[m][2] for m in ("b", "c", "e")])))
    col = lambda name: f"{ACC} · {name}"  # noqa: E731
    assert rows["a"][col("vs root")] == "" and rows["a"][col("p (Holm)")] == ""
    for m in ("b", "c", "e"):
        assert rows[m][col("vs root")] == "a" and rows[m][col("test")] == "exact McNemar"
        assert int(rows[m][col("right → wrong")]) == direct[m][0] and int(rows[m][col("wrong → right")]) == direct[m][1]
        assert float(rows[m][col("p (Holm)")]) == pytest.approx(holm[m], rel=1e-9)
        assert float(rows[m][col("Δ")]) == pytest.approx((direct[m][1] - direct[m][0]) / 2000)
    assert rows["b"][col("significant")] == "true" and rows["e"][col("significant")] == "false"
    assert float(rows["b"][col("95% low")]) < float(rows["b"][col("Δ")]) < float(rows["b"][col("95% high")]) < 0
    logged = rows_for("Acc")
    assert not any("·" in k for k in logged[0]) and [r["model id"] for r in logged] == MODELS
    assert [r["model id"] for r in rows_for("../../etc/passwd")] == MODELS  # a bad metric is no metric


def test_generative_scores_get_the_paired_bootstrap(tmp_path):
    ctx = AppContext(*precomputed(tmp_path))
    models = ["base", "p30", "p60"]
    name = D.score_metric("length").name  # characters of the output: a continuous score
    found = selection_tests(ctx, name, models)
    assert found.models == ["p30", "p60"] and found.roots == {"p30": "base", "p60": "base"}
    length = {m: ctx.outputs(m)["scores"]["length"] for m in models}
    for k, m in enumerate(found.models, start=1):
        r = ps.paired_bootstrap(length["base"], length[m])
        assert found.tests.diff[k, 0] == pytest.approx(r.diff) and found.tests.low[k, 0] == pytest.approx(r.low)
        assert found.tests.p[k, 0] == pytest.approx(r.p_value)
        assert "paired bootstrap" in found.hover()[m] and "Δ mean length" in found.hover()[m]
    header, cells = found.csv(models)
    assert header[-1] == name + " · test" and cells[1][-1] == "paired bootstrap" and cells[0][0] is None
    for score in ("Exact match", "F1"):  # 0 / 1 per instance here: McNemar, as Behaviors
        assert selection_tests(ctx, score + SUFFIX, models).tests.test == "mcnemar"
