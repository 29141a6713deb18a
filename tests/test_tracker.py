"""The logging API: atomic, concurrent-safe writes that the app loads."""
import multiprocessing as mp
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cnc import Tracker
from cnc.experiment.config import load_config, load_experiment
from cnc.precompute.run import precompute
from cnc.precompute.store import SummaryStore
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

    import cnc.experiment.files as tr

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


def test_ids_that_sanitize_alike_keep_their_own_files(tmp_path):
    """Regression: 'a b', 'a/b' and 'a_b' shared checkpoints/a_b.pt; the last one overwrote the others."""
    t = Tracker(tmp_path)
    models = {mid: make_model() for mid in ("a b", "a/b", "a_b")}
    for i, (mid, model) in enumerate(models.items()):
        with torch.no_grad():
            next(model.parameters()).fill_(float(i))
        t.log_model(mid, model=model, outputs=np.full((4, 3), i / 3))
    exp = load_experiment(tmp_path / "experiment.yaml")
    assert len({exp.models[mid].checkpoint for mid in models}) == 3
    assert len({exp.models[mid].outputs for mid in models}) == 3
    for i, mid in enumerate(models):
        state = torch.load(exp.models[mid].checkpoint, weights_only=True)
        assert float(next(iter(state.values())).flatten()[0]) == float(i), mid
        assert np.load(exp.models[mid].outputs)["probs"][0, 0] == pytest.approx(i / 3)


def test_directories_written_before_file_hashes_still_load(tmp_path):
    """Old Tracker directories name files by the bare sanitized id; the recorded paths still load."""
    (tmp_path / "checkpoints").mkdir()
    torch.save(make_model().state_dict(), tmp_path / "checkpoints" / "a_b.pt")
    (tmp_path / "experiment.yaml").write_text("models:\n  - {id: a b, checkpoint: checkpoints/a_b.pt}\n")
    Tracker(tmp_path).log_model("c", base="a b")
    exp = load_experiment(tmp_path / "experiment.yaml")
    assert Path(exp.models["a b"].checkpoint) == tmp_path / "checkpoints" / "a_b.pt" and "c" in exp.models
