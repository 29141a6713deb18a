"""Callbacks after a reload: a model logged while the app runs is drawn, counted, filtered and
selectable by the next callback (issue 14: callbacks used the experiment captured at start-up and
positional map node ids). Also: one request reads one experiment; a failed callback shows a
notice and logs its traceback."""
from __future__ import annotations

import json
import logging

import pytest
from dash._utils import stringify_id

from cnc import Tracker
from cnc.app import webapp
from cnc.app.cli import load
from cnc.app.webapp import build_app
from cnc.experiment.forest import parse_experiment
from cnc.pages import overview
from cnc.server import live as live_module
from cnc.ui import errors, filters, legend, model_map
from tests.dash_client import call_with, find_key


@pytest.fixture
def running(tmp_path, monkeypatch):
    """A Tracker directory served by an app that watches it (checks on every request)."""
    monkeypatch.setattr(live_module, "CHECK_EVERY", 0.0)
    t = Tracker(tmp_path / "run")
    t.metric("Acc", format=".1%")
    t.metric("Size", unit="KB", higher_is_better=False)
    t.log_model("base", metrics={"Acc": 0.9, "Size": 10})
    t.log_model("p50", base="base", operation=("prune", {"amount": 0.5}), metrics={"Acc": 0.85, "Size": 6})
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    app = build_app(ctx)
    return t, ctx, app, app.server.test_client()


def response(r) -> dict:
    assert r.status_code == 200, r.data[:300]
    return json.loads(r.data)["response"]


def test_overview_callbacks_see_a_model_logged_after_start(running):
    t, ctx, app, client = running
    stale_enabled = ["base", "p50"]  # what the open page's stores hold
    t.log_model("late", base="p50", operation=("prune", {"amount": 0.9}), metrics={"Acc": 0.7, "Size": 2})

    # colour change: the new model is a node, enabled (not dimmed as if filtered out)
    # (the page holds the map data of the experiment before; its key says so: everything is resent)
    out = response(call_with(app, client, find_key(app, model_map.DATA, "data"), {
        (stringify_id(legend.COLOR), "value"): "Size", (stringify_id(overview.ENABLED), "data"): stale_enabled,
        (stringify_id(filters.FILTERS), "data"): [], (stringify_id(model_map.KEY), "data"): "old"}, trigger=1))
    data = out[stringify_id(model_map.DATA)]["data"]
    assert data["mid"] == ["base", "p50", "late"] and data["off"] == []
    assert out[stringify_id(model_map.KEY)]["data"] == data["key"] != "old"

    # add a filter: the count includes the new model
    out = response(call_with(app, client, find_key(app, filters.CARDS, "children"), {
        (stringify_id(filters.ADD), "value"): "Acc", (stringify_id(filters.FILTERS), "data"): [],
        (stringify_id(overview.ENABLED), "data"): stale_enabled}))
    assert out[stringify_id(overview.ENABLED)]["data"] == ["base", "p50", "late"]
    assert out[stringify_id(filters.COUNT)]["children"] == "3 of 3 models pass"

    # select the new model by clicking its node (a hash of its id, not a position)
    out = response(call_with(app, client, find_key(app, overview.SELECTION, "data"), {
        (stringify_id(model_map.GRAPH), "selectedNodeData"): [{"id": model_map.node_id("late")}],
        (stringify_id(filters.FILTERS), "data"): [["Acc", 0.5, None]], (stringify_id(overview.SELECTION), "data"): []}))
    assert out[stringify_id(overview.SELECTION)]["data"] == ["late"]

    # the header count follows
    out = response(call_with(app, client, find_key(app, webapp.MODEL_COUNT, "children"), {
        ("model-count", "children"): "2 models", ("status-tick", "interval"): 48000}))
    assert out["model-count"]["children"] == "3 models"
    assert out["status-tick"]["interval"] == webapp.POLL_MS  # a change: back to polling every 3 s


def test_node_ids_survive_a_reorder():
    """A node clicked on a page drawn from one experiment order selects the same model after the
    experiment is reloaded in another order (positional ids selected a different model)."""
    models = [{"id": m, "metrics": {"a": i}} for i, m in enumerate(["x", "y", "z"])]
    before = parse_experiment({"metrics": ["a"], "models": models})
    after = parse_experiment({"metrics": ["a"], "models": [{"id": "new", "metrics": {"a": 9}}] + models[::-1]})
    data = model_map.map_data(before, "step", "a", "a", None)
    clicked = [{"id": data["id"][data["mid"].index("y")], "mid": "y"}]
    assert model_map.node_models(after, clicked) == ["y"]
    assert model_map.node_models(after, [{"id": "n1"}, {"id": "h0"}]) == []  # positions mean nothing


def test_one_request_reads_one_experiment(running):
    t, ctx, _, _ = running
    ctx.pin()
    try:
        t.log_model("late", base="base", metrics={"Acc": 0.5, "Size": 1})
        assert "late" not in ctx.experiment.models and ctx.version == 0  # a reload mid-request waits
    finally:
        ctx.unpin()
    assert "late" in ctx.experiment.models and ctx.version == 1


def test_failed_callback_shows_a_notice_and_logs_the_traceback(running, monkeypatch, caplog):
    _, _, app, client = running

    def broken(*args, **kwargs):
        raise RuntimeError("boom in map_outputs")

    monkeypatch.setattr(overview, "map_outputs", broken)
    with caplog.at_level(logging.ERROR, logger="cnc.callbacks"):
        r = call_with(app, client, find_key(app, model_map.DATA, "data"),
                      {(stringify_id(legend.COLOR), "value"): "Size"}, trigger=1)
    assert r.status_code == 200
    body = json.loads(r.data)
    assert not body.get("response")  # the views keep their last good state...
    shown = json.dumps(body["sideUpdate"][stringify_id(errors.AREA)])
    assert "Something went wrong while updating the map" in shown and "boom" not in shown  # ...and say so
    record = next(r for r in caplog.records if r.name == "cnc.callbacks")
    assert "boom in map_outputs" in logging.Formatter().formatException(record.exc_info)
    ref = record.getMessage().split("[ref ")[1].rstrip("]")
    assert ref in shown  # the notice points at the log entry


def test_status_poll_backs_off_while_nothing_changes_and_resets_on_a_change(running):
    t, ctx, app, client = running
    key = find_key(app, webapp.MODEL_COUNT, "children")
    shown = {("model-count", "children"): "2 models", ("status-line", "children"): ""}
    interval, seen = webapp.POLL_MS, []
    for _ in range(6):  # idle: 3 s, 6, 12, 24, 48, then capped at 60 s; nothing re-rendered
        out = response(call_with(app, client, key, {**shown, ("status-tick", "interval"): interval}))
        assert "model-count" not in out and "status-line" not in out
        interval = out["status-tick"]["interval"]
        seen.append(interval)
    assert seen == [6000, 12000, 24000, 48000, 60000, 60000]
    t.log_model("late", base="p50", operation=("prune", {"amount": 0.9}), metrics={"Acc": 0.7, "Size": 2})
    out = response(call_with(app, client, key, {**shown, ("status-tick", "interval"): interval}))
    assert out["model-count"]["children"] == "3 models" and out["status-tick"]["interval"] == webapp.POLL_MS


@pytest.mark.parametrize("bad", [None, "fast", True, -5, 1e12])
def test_status_poll_interval_from_the_browser_is_checked(bad):
    assert webapp.POLL_MS <= webapp.next_poll(bad, changed=False) <= webapp.POLL_MAX_MS
