"""Opening an MLflow experiment makes no per-run call: runs come in pages of search_runs, and a
run's artifacts are looked up only when precompute needs its checkpoint (real runs, real store)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from cnc.app.cli import load  # noqa: E402
from cnc.bench.mlflow_scale import CallCounter  # noqa: E402
from cnc.experiment.config import load_config  # noqa: E402
from cnc.experiment.mlflow import source  # noqa: E402
from cnc.precompute.run import pending_models  # noqa: E402
from cnc.precompute.store import SummaryStore  # noqa: E402
from tests.mlflow_runs import EXPERIMENT, log_forest  # noqa: E402

WITH_FILES = ("base", "prune50", "prune50-ft")  # runs that logged a checkpoint


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-scale")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    log_forest(uri, folder / "artifacts")
    return folder, uri


@pytest.fixture
def repository_calls(monkeypatch):
    """Calls on the local artifact repository (what a run's artifacts are read through)."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    calls: list[str] = []
    for name in ("list_artifacts", "download_artifacts"):
        original = getattr(LocalArtifactRepository, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(LocalArtifactRepository, name, counted)
    return calls


def task_config(folder: Path, uri: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(json.dumps({"experiment": {"mlflow": {"tracking_uri": uri, "experiment": EXPERIMENT}},
                                "task": {"entry": "tests.tiny_task:TinyTask"}}))
    return path


def test_opening_reads_runs_in_pages_with_no_per_run_call(store, tmp_path, monkeypatch, repository_calls):
    folder, uri = store
    monkeypatch.setattr(source, "PAGE", 2)  # 6 runs: three pages
    with CallCounter() as calls:
        config = load_config(f"mlflow:{uri}#{EXPERIMENT}", cache_dir=tmp_path / "cache")
    assert len(config.experiment.models) == 6
    assert 3 <= calls["search_runs"] <= 4  # a last, empty page when the count divides evenly
    assert calls["list_artifacts"] == calls["download_artifacts"] == calls["get_run"] == 0
    assert repository_calls == []
    assert all(m.checkpoint is None and m.outputs is None for m in config.experiment.models.values())
    assert not (tmp_path / "cache" / "mlflow").exists()  # nothing downloaded


def test_precompute_finds_the_checkpoint_when_it_needs_it(store, tmp_path, repository_calls):
    import torch

    folder, uri = store
    config = load_config(task_config(tmp_path, uri), cache_dir=tmp_path / "cache")
    exp = config.experiment
    assert all(exp.models[m].checkpoint is None for m in WITH_FILES) and repository_calls == []
    pending = pending_models(config, SummaryStore(config.cache_dir))  # precompute's first step
    assert set(WITH_FILES) | {"exported"} <= set(pending)
    runs = len(exp.models)
    assert repository_calls.count("list_artifacts") <= runs + 2  # the root once per run; prune50's folder
    for mid in WITH_FILES:
        state = torch.load(exp.models[mid].checkpoint, weights_only=True)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert exp.models["exported"].outputs.endswith("outputs.npz") and exp.models["exported"].checkpoint is None

    # a later start on the same cache: finished runs are not looked up again
    source._SOURCES.clear()
    del repository_calls[:]
    again = load_config(task_config(tmp_path, uri), cache_dir=tmp_path / "cache")
    assert again.experiment.models["prune50"].checkpoint == exp.models["prune50"].checkpoint
    again.fetch_sources()
    assert repository_calls == []


def test_start_with_a_task_summarizes_every_run_with_a_file(store, tmp_path):
    folder, uri = store
    source._SOURCES.clear()
    ctx = load(str(task_config(tmp_path, uri)), str(tmp_path / "cache"), progress=False)
    for mid in (*WITH_FILES, "exported"):
        assert ctx.status(mid) == "ready", (mid, ctx.status(mid))


def test_the_app_imports_no_torch_until_a_model_is_evaluated():
    """Importing torch was most of the app's start; a metrics-only experiment never needs it."""
    import subprocess
    import sys

    code = "import sys, cnc.app.cli, cnc.app.webapp, cnc.precompute.run; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False", out.stderr
