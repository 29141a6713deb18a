"""Exports and the Compare strip without a browser: CSV text, metric changes, the experiment file
round trip, and the download callbacks."""
from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from cnc.analysis.csv_export import csv_text
from cnc.analysis.metric_change import change
from cnc.app.webapp import build_app
from cnc.bench.behaviors import SyntheticOutputs
from cnc.experiment.config import load_config, load_experiment
from cnc.experiment.forest import Metric, experiment_as_dict, parse_experiment
from cnc.ui import behaviors_export, compare_strip, download, experiment_download, model_picker, selection_export
from cnc.ui.selection_details import explain
from tests.dash_client import call_with, find_key

ACC = Metric("Accuracy", format=".1%", higher_is_better=True)
SIZE = Metric("Size", format=".1f", unit="KB", higher_is_better=False)
MODELS = ["root0", "m2", "m3", "m4"]


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_keeps_numbers_and_defuses_formulas():
    text = csv_text(["model", "value"], [["=HYPERLINK(\"x\")", -0.8], ["+1", float("nan")], ["a,b", None],
                                         ["@x", float("inf")], ["plain", True]])
    assert rows_of(text) == [["model", "value"], ["'=HYPERLINK(\"x\")", "-0.8"], ["'+1", ""], ["a,b", ""],
                             ["'@x", "inf"], ["plain", "true"]]


@pytest.mark.parametrize("metric,value,base,text,better", [
    (ACC, 0.912, 0.920, "−0.8 pt", False),
    (ACC, 0.93, 0.92, "+1.0 pt", True),
    (SIZE, 38.0, 100.0, "−62%", True),
    (SIZE, 100.4, 100.0, "+0.4%", False),
    (SIZE, 100.0, 100.0, "±0", None),
    (SIZE, None, 100.0, "—", None),
    (SIZE, 1.0, 0.0, "+1.000", False),  # no relative change from 0
])
def test_metric_change_reads_like_a_person_would_say_it(metric, value, base, text, better):
    c = change(metric, value, base)
    assert (c.text, c.better) == (text, better)


def test_experiment_file_round_trips(synthetic_ctx, tmp_path):
    exp = synthetic_ctx.experiment
    path = tmp_path / "downloaded.yaml"
    path.write_text(experiment_download.experiment_yaml(synthetic_ctx))
    again = load_config(path).experiment  # what `python app.py --config downloaded.yaml` reads
    assert experiment_as_dict(again) == experiment_as_dict(exp)
    assert [(m.id, m.base, m.operation, m.tag, m.metrics) for m in again.models.values()] == \
        [(m.id, m.base, m.operation, m.tag, m.metrics) for m in exp.models.values()]
    assert again.metrics == exp.metrics and again.operations == exp.operations
    assert "checkpoint" not in path.read_text()  # the server's paths stay on the server


def test_experiment_file_keeps_missing_values_and_odd_ids(tmp_path):
    exp = parse_experiment({"metrics": [{"name": "Acc", "format": ".1%", "description": "top-1"}], "models": [
        {"id": "a b", "metrics": {"Acc": 0.9}},
        {"id": "x: y", "base": "a b", "operation": {"name": "prune", "parameters": {"amount": 0.5, "how": "l1"}},
         "metrics": {"Acc": None}}]})
    path = tmp_path / "e.json"
    path.write_text(json.dumps(experiment_as_dict(exp)))
    again = load_experiment(path)
    assert again.models["x: y"].metrics == {"Acc": None}
    assert again.models["x: y"].operation.parameters == {"amount": 0.5, "how": "l1"}
    assert yaml.safe_load(yaml.safe_dump(experiment_as_dict(exp))) == experiment_as_dict(exp)


def test_selection_csv_lists_every_selected_model(synthetic_ctx):
    exp = synthetic_ctx.experiment
    sel = list(exp.models)[:30]
    header, rows = selection_export.records(exp, sel, explain(synthetic_ctx, sel))
    assert [r[0] for r in rows] == sel
    metrics = list(exp.metrics)
    assert header[-len(metrics):][0].startswith(metrics[0])
    assert [r[-len(metrics):] for r in rows] == [[exp.models[m].metrics.get(k) for k in metrics] for m in sel]


def test_download_callbacks(synthetic_ctx):
    SyntheticOutputs(MODELS, n=3_000, classes=10).attach(synthetic_ctx)
    app = build_app(synthetic_ctx)
    client = app.server.test_client()

    def send(name, values):
        r = call_with(app, client, find_key(app, download.file_id(name), "data"), values)
        assert r.status_code == 200, r.data[:300]
        return json.loads(r.data)["response"]

    bid = json.dumps(download.button_id(behaviors_export.NAME), separators=(",", ":"), sort_keys=True)
    state = {"mode": "subgroups", "attribute": "ink density", "metric": "error", "rel": True}
    out = send(behaviors_export.NAME, {(bid, "n_clicks"): 1,
                                      ('{"cnc":"compare","role":"selection"}', "data"): {"models": MODELS},
                                      ('{"cnc":"behaviors","role":"state"}', "data"): state})
    sent = next(iter(out.values()))["data"]
    assert sent["filename"] == "behaviors.csv"
    rows = rows_of(sent["content"])
    assert rows[0][:2] == ["ink density", "instances"] and len(rows) == 4  # three subgroups
    sid = json.dumps(download.button_id(selection_export.NAME), separators=(",", ":"), sort_keys=True)
    out = send(selection_export.NAME, {(sid, "n_clicks"): 1,
                                       ('{"cnc":"overview","role":"selection"}', "data"): ["m2", "m3", "bogus"]})
    rows = rows_of(next(iter(out.values()))["data"]["content"])
    assert [r[0] for r in rows[1:]] == ["m2", "m3"]


def test_compare_strip_and_picker_logic(synthetic_ctx):
    exp = synthetic_ctx.experiment
    strip = compare_strip.strip(exp, ["root0", "m2"])
    text = str(strip)
    assert "base" in text and ("better than the base" in text or "worse than the base" in text)
    assert compare_strip.strip(exp, []) == []
    options = model_picker.options(exp, {"m2"})
    assert [o["value"] for o in options] == list(exp.models)[:model_picker.LIMIT]
    assert [o["value"] for o in options if not o["disabled"]] == ["m2"]
    # searched on the server: every word must match; picked models always stay listed
    found = model_picker.options(exp, None, "fine-tune 2", keep=["m3"])
    assert "m2" in [o["value"] for o in found] and "m3" in [o["value"] for o in found]
    assert all("fine-tune" in o["search"] and "2" in o["search"] for o in found if o["value"] != "m3")
    assert model_picker.options(exp, None, "no such model") == []
    assert model_picker.picked_selection(exp, ["m2", "nope", 3], [], None) == ["m2"]
    filters = [[next(iter(exp.metrics)), 10.0, None]]  # nothing passes: nothing can be picked
    assert model_picker.picked_selection(exp, ["m2"], ["m3"], filters) == []
