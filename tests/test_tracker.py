"""The logging API: atomic, concurrent-safe writes that the app loads."""
import multiprocessing as mp
import warnings

import numpy as np
import pytest
import torch

from cnc import Tracker
from cnc.config import load_config
from cnc.experiment import load_experiment
from cnc.precompute import precompute
from cnc.store import SummaryStore
from tests.tiny_task import make_model


def _log_many(directory: str, worker: int, n: int) -> None:
    t = Tracker(directory)
    for i in range(n):
        t.log_model(f"w{worker}-{i}", base="base", operation=("prune", {"amount": i / n}),
                    metrics={"Acc": 0.5 + i / 100}, model=make_model())


def test_concurrent_writers_lose_nothing(tmp_path):
    t = Tracker(tmp_path)
    t.metric("Acc", format=".1%", primary=True)
    t.operation("prune", ["amount"])
    t.log_model("base", metrics={"Acc": 0.9}, model=make_model())
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_log_many, args=(str(tmp_path), w, 6)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    exp = load_experiment(tmp_path)
    assert len(exp.models) == 1 + 4 * 6
    assert exp.models["w3-5"].operation.parameters == {"amount": 5 / 6}
    assert all(torch.load(m.checkpoint, weights_only=True) for m in exp.models.values())


def test_same_id_updates_with_warning(tmp_path):
    t = Tracker(tmp_path)
    t.log_model("a", metrics={"Acc": 0.1})
    with pytest.warns(UserWarning, match="already logged"):
        t.log_model("a", metrics={"Acc": 0.2})
    exp = load_experiment(tmp_path)
    assert len(exp.models) == 1 and exp.models["a"].metrics["Acc"] == 0.2


def test_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    t = Tracker(tmp_path)
    t.log_model("a", metrics={"Acc": 0.1})
    before = (tmp_path / "experiment.yaml").read_text()

    def crash(*a, **k):
        raise OSError("disk full")

    import cnc.tracker as tr

    monkeypatch.setattr(tr.os, "replace", crash)
    with pytest.raises(OSError):
        t.log_model("b", metrics={"Acc": 0.2})
    monkeypatch.undo()
    assert (tmp_path / "experiment.yaml").read_text() == before
    assert not list(tmp_path.glob(".experiment.yaml.*.tmp"))  # no temp litter
    t.log_model("b", metrics={"Acc": 0.2})  # and logging goes on
    assert list(load_experiment(tmp_path).models) == ["a", "b"]


def test_tracker_directory_with_task_precomputes(tmp_path):
    t = Tracker(tmp_path, title="tiny", task="tests.tiny_task:TinyTask")
    t.log_model("base", metrics={"Acc": 0.9}, model=make_model())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.log_model("ext", base="base", operation="export", outputs=np.full((40, 3), 1 / 3))
    cfg = load_config(tmp_path, cache_dir=tmp_path / "cache")
    assert cfg.title == "tiny" and cfg.task.entry == "tests.tiny_task:TinyTask"
    report = precompute(cfg, SummaryStore(cfg.cache_dir), progress=False)
    assert sorted(report.computed) == ["base", "ext"], report.failed
