"""Precompute into the cache: hits, invalidation on a changed checkpoint, resume, per-model failure."""
import numpy as np
import pytest

from cnc.experiment.config import load_config
from cnc.precompute.run import pending_models, precompute
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from tests.tiny_task import save_checkpoint


@pytest.fixture
def tiny(tmp_path):
    for i, name in enumerate(["a", "b", "c"]):
        save_checkpoint(tmp_path / f"{name}.pt", seed=0, prune=0.5 * i)
    (tmp_path / "exp.yaml").write_text(
        "models:\n"
        "  - {id: a, checkpoint: a.pt, metrics: {Acc: 0.9}}\n"
        "  - {id: b, base: a, operation: {name: prune, parameters: {amount: 0.5}}, checkpoint: b.pt}\n"
        "  - {id: c, base: b, operation: {name: prune, parameters: {amount: 1.0}}, checkpoint: c.pt}\n"
        "  - {id: d, base: a, operation: {name: distill}}\n"
    )
    (tmp_path / "cfg.yaml").write_text(
        "experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask', activation_sample: 16}\n")
    return tmp_path


def load(folder, **opts):
    if opts:
        text = (folder / "cfg.yaml").read_text().replace("activation_sample: 16", "activation_sample: 16, options: "
                                                          + str(opts).replace("'", ""))
        (folder / "cfg.yaml").write_text(text)
    cfg = load_config(folder / "cfg.yaml", cache_dir=folder / "cache")
    return cfg, SummaryStore(cfg.cache_dir)


def test_summaries_are_real_and_cached(tiny):
    cfg, store = load(tiny)
    report = precompute(cfg, store, progress=False)
    assert report.computed == ["a", "b", "c"] and not report.failed
    ctx = AppContext(cfg, store)
    out = ctx.outputs("a")
    assert out["probs"].shape == (40, 3) and np.allclose(out["probs"].sum(1), 1, atol=1e-5)
    params = ctx.params("b")
    assert set(params) == {"0", "1", "3"} and params["0"]["type"] == "Linear"
    # module "0" holds weight (32) + bias (8); half the weights were pruned
    assert params["0"]["count"] == 40 and params["0"]["zeros"] >= 15
    assert np.array_equal(params["0"]["edges"], ctx.params("a")["0"]["edges"])  # shared bins
    assert ctx.activations("a")["2"]["count"] == 16 * 8  # ReLU outputs on the 16-instance sample
    assert ctx.task_data()["labels"].shape == (40,) and ctx.instance(0)["kind"] == "text"
    assert ctx.status("a") == "ready" and ctx.status("d") == "no data"
    again = precompute(cfg, store, progress=False)  # second run: all cache hits
    assert again.computed == [] and again.skipped == ["a", "b", "c"]


def test_each_model_keeps_its_own_probabilities(tiny):
    """Precompute writes each model's probabilities into the previous model's (already stored)
    buffer: what is stored must still be every model's own, as evaluated alone."""
    import torch

    from cnc.evaluation.summarize import ModelEntry, TaskSpec, summarize_model

    cfg, store = load(tiny)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    spec = TaskSpec.from_config(cfg)
    stored = {m: np.array(ctx.outputs(m)["probs"]) for m in "abc"}
    for m in "abc":
        with torch.inference_mode():
            alone = summarize_model(spec, ModelEntry(m, str(tiny / f"{m}.pt")), {})["probs"]
        assert np.array_equal(stored[m], alone), m
    assert not np.array_equal(stored["a"], stored["c"])


def test_changed_checkpoint_is_recomputed(tiny):
    cfg, store = load(tiny)
    precompute(cfg, store, progress=False)
    save_checkpoint(tiny / "b.pt", seed=1)
    cfg, store = load(tiny)
    assert pending_models(cfg, store) == ["b"]
    assert precompute(cfg, store, progress=False).computed == ["b"]


def test_interrupted_run_resumes(tiny, monkeypatch):
    cfg, store = load(tiny)
    import cnc.precompute.run as pre

    real = pre.summarize_model
    calls = []

    def dies_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pre, "summarize_model", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        precompute(cfg, store, progress=False)
    monkeypatch.setattr(pre, "summarize_model", real)
    assert pending_models(cfg, store) == ["b", "c"]  # 'a' finished, nothing half-written counts
    assert precompute(cfg, store, progress=False).computed == ["b", "c"]


def test_one_failing_model_does_not_stop_the_rest(tiny):
    cfg, store = load(tiny, fail_on="b.pt")
    report = precompute(cfg, store, progress=False)
    assert report.computed == ["a", "c"] and "boom" in report.failed["b"]
    assert AppContext(cfg, store).status("b").startswith("failed: RuntimeError: boom")


def test_corrupt_entry_is_dropped_and_recomputed(tiny):
    cfg, store = load(tiny)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    th, ch = ctx.task_hash, ctx._model_hash("a")
    # garble every pickled value in the cache database, as a crash or bad disk could
    store.cache._sql("UPDATE Cache SET value = ? WHERE typeof(value) = 'blob' AND filename IS NULL",
                     (b"\x80\x04garbage",))
    assert store.get("outputs", th, ch) is None  # detected and dropped, never raised
    report = precompute(cfg, store, progress=False)
    assert "a" in report.computed
    assert AppContext(cfg, store).outputs("a")["probs"].shape == (40, 3)
