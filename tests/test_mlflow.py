"""An MLflow experiment opened as one of ours: sqlite store, file store, tracking server, live
reload and bad input (real runs logged with MLflow's own API)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from cnc.app.cli import load  # noqa: E402
from cnc.experiment.config import ConfigError  # noqa: E402
from cnc.ui import behaviors  # noqa: E402
from tests.mlflow_runs import EXPERIMENT, log_forest, log_run  # noqa: E402


def write_config(folder: Path, tracking_uri: str, **extra) -> Path:
    settings = {"tracking_uri": tracking_uri, "experiment": EXPERIMENT, "poll_seconds": 0.1, **extra}
    path = folder / "config.yaml"
    path.write_text(json.dumps({"title": "MLflow runs", "experiment": {"mlflow": settings},
                                "task": {"entry": "tests.tiny_task:TinyTask"}}))
    return path


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-sqlite")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return folder, uri, log_forest(uri, folder / "artifacts")


def check_forest(ctx, ids: dict[str, str]) -> None:
    exp = ctx.experiment
    assert {"base", "prune50", "prune50-ft", "exported"} <= set(exp.models) and len(exp.models) == 6
    assert exp.models["prune50"].base == "base"  # MLflow's parent run
    assert exp.models["prune50-ft"].base == "prune50"  # cnc.base by name
    assert exp.models["exported"].base == "prune50"  # cnc.base by run id
    assert exp.models["prune50"].operation.name == "prune"
    assert exp.models["prune50"].operation.parameters == {"amount": 0.5}  # params that differ from the base's
    assert exp.models["prune50-ft"].operation.parameters == {"epochs": 3}  # cnc.parameters
    dups = [m for m in exp.models.values() if m.tag == "sweep"]
    assert len(dups) == 2 and all(m.id != "sweep" and m.base == "base" for m in dups)  # repeated names: run ids
    assert {m.operation.parameters["lr"] for m in dups} == {0.2, 0.3}
    assert exp.models["base"].metrics["Accuracy"] == 0.9  # latest value
    assert exp.metrics["Latency_ms"].higher_is_better is False and exp.metrics["Accuracy"].higher_is_better
    for mid in ("base", "prune50", "prune50-ft", "exported"):
        assert ctx.status(mid) == "ready", (mid, ctx.status(mid))
    assert ctx.params("prune50-ft")["0"]["zeros"] > 0  # a checkpoint artifact, loaded by the task


def test_sqlite_store_tree_metrics_and_behaviors(sqlite_store, tmp_path):
    folder, uri, ids = sqlite_store
    ctx = load(str(write_config(folder, uri)), str(tmp_path / "cache"), progress=False)
    check_forest(ctx, ids)
    assert ctx.title == "MLflow runs" and ctx.status_line() == ""

    models = ["base", "prune50", "exported"]
    state, _ = behaviors.state_from_query(ctx, {}, [], models)
    grid, status = behaviors.render_table(ctx, models, state, version=0)
    text = json.dumps(grid, default=str)
    assert "exported" in text and "prune50" in text and "no stored outputs" not in json.dumps(status, default=str)


def test_command_line_spec_opens_the_store(sqlite_store, tmp_path, monkeypatch):
    folder, uri, ids = sqlite_store
    monkeypatch.chdir(folder)
    ctx = load(f"mlflow:sqlite:///mlflow.db#{EXPERIMENT}", str(tmp_path / "cache"), progress=False)
    assert ctx.title == EXPERIMENT and ctx.experiment.models["prune50-ft"].base == "prune50"
    assert ctx.experiment.models["base"].checkpoint is None  # metrics only: no task needs the file
    ctx.config.fetch_sources()  # what precompute calls first
    assert Path(ctx.experiment.models["base"].checkpoint).is_file()


def test_file_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "mlruns").as_uri()
    ids = log_forest(uri)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # the app sets it itself, for the read only
    ctx = load(str(write_config(tmp_path, "mlruns")), str(tmp_path / "cache"), progress=False)
    check_forest(ctx, ids)
    import os
    import threading

    for t in threading.enumerate():  # a background poll may be reading right now
        if t.name == "cnc-mlflow-poll":
            t.join(30)
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ


def test_tracking_server(tmp_path):
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import free_port

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
         str(tmp_path / "artifacts")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240  # MLflow's server takes over a minute to start on a loaded 2-core machine
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "mlflow server did not start"
                time.sleep(0.5)
        ids = log_forest(uri)
        ctx = load(str(write_config(tmp_path, uri)), str(tmp_path / "cache"), progress=False)
        check_forest(ctx, ids)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # its workers ignore SIGTERM while busy
            server.kill()
            server.wait(timeout=30)


def test_run_logged_while_open_appears_on_next_poll(tmp_path):
    uri = f"sqlite:///{tmp_path / 'live.db'}"
    log_forest(uri, tmp_path / "artifacts")
    ctx = load(str(write_config(tmp_path, uri)), str(tmp_path / "cache"), progress=False, background=True)
    assert "late" not in ctx.experiment.models
    log_run(uri, "late", {"cnc.base": "base", "cnc.operation": "prune"}, {"Accuracy": 0.7})
    deadline = time.time() + 60

    def logged() -> bool:  # a poll may catch the run between its creation and its tags
        late = ctx.experiment.models.get("late")
        return late is not None and late.base == "base"

    while not logged() and time.time() < deadline:
        ctx.live.check(force=True)
        time.sleep(0.1)
    assert ctx.experiment.models["late"].base == "base" and ctx.version >= 1


def test_bad_runs_get_one_notice_each_and_the_rest_load(tmp_path):
    uri = f"sqlite:///{tmp_path / 'bad.db'}"
    log_forest(uri, tmp_path / "artifacts")
    log_run(uri, "orphan", {"cnc.base": "no-such-run", "cnc.operation": "prune"}, {"Accuracy": 0.1})
    a = log_run(uri, "loop-a", {"cnc.operation": "prune"}, {"Accuracy": 0.2})
    b = log_run(uri, "loop-b", {"cnc.base": "loop-a", "cnc.operation": "prune"}, {"Accuracy": 0.3})
    import mlflow

    mlflow.MlflowClient(uri).set_tag(a, "cnc.base", b)
    ctx = load(str(write_config(tmp_path, uri)), str(tmp_path / "cache"), progress=False)
    exp, notices = ctx.experiment, ctx.config.notices
    assert len(exp.models) == 9 and exp.models["orphan"].base is None
    assert [n for n in notices if "orphan" in n] == [
        "run 'orphan': tag cnc.base = 'no-such-run' is not a run of this experiment; shown as a root. "
        "Fix: set cnc.base to the name or run id of its base run."]
    cycle = [n for n in notices if "cycle" in n]
    assert len(cycle) == 1 and "loop-a" in cycle[0] and "loop-b" in cycle[0]
    assert sum(exp.models[m].base is None for m in ("loop-a", "loop-b")) == 1
    assert "need attention" in ctx.status_line()


def test_unknown_experiment_and_unreachable_server(sqlite_store, tmp_path):
    from tests.conftest import free_port

    folder, uri, _ = sqlite_store
    with pytest.raises(ConfigError, match=rf"MLflow experiment 'nope' not found .*experiments there: .*{EXPERIMENT}"):
        load(str(write_config(tmp_path, uri, experiment="nope")), str(tmp_path / "cache"))
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match="cannot reach the MLflow tracking server at http://127.0.0.1"):
        load(f"mlflow:{dead}#x", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="does not exist"):
        load(f"mlflow:sqlite:///{tmp_path / 'missing.db'}#x", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="expected mlflow:<tracking uri>#<experiment name>"):
        load("mlflow:sqlite:///x.db", str(tmp_path / "cache"))


def test_logged_pytorch_model_needs_trust(tmp_path):
    """mlflow.pytorch.log_model output runs code on load: a notice by default, loaded when trusted."""
    import mlflow

    from tests.tiny_task import make_model

    uri = f"sqlite:///{tmp_path / 'models.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="logged"):
        mlflow.pytorch.log_model(make_model(), name="model", serialization_format="pickle")
    ctx = load(str(write_config(tmp_path, uri)), str(tmp_path / "cache"), progress=False)
    assert ctx.experiment.models["logged"].checkpoint is None
    assert any("mlflow.pytorch.log_model" in n and "trust_pickled_models" in n for n in ctx.config.notices)

    (tmp_path / "trusted").mkdir()
    ctx = load(str(write_config(tmp_path / "trusted", uri, trust_pickled_models=True)), str(tmp_path / "cache2"),
               progress=False)
    assert ctx.status("logged") == "ready" and not ctx.config.notices


def test_overlapping_reads_share_the_environment_and_restore_it():
    """A slow read (a poll against a dead server) must not block another source's read, and the
    variables come back once the last overlapping read ends."""
    import os
    import threading

    from cnc.experiment.mlflow.source import _reading_env

    os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
    inside, release = threading.Event(), threading.Event()

    def slow_read():
        with _reading_env("file:///a"):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=slow_read)
    t.start()
    assert inside.wait(10)
    with _reading_env("file:///b"):  # would wait for the slow read if reads held one lock
        assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"  # the slow read still needs it
    release.set()
    t.join(10)
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
