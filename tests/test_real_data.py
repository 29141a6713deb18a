"""Real-scale data path: Dataset / DataLoader tasks end to end, devices, compact summaries, instances
rendered one at a time, and a task hash that follows the evaluation data."""
import json

import numpy as np
import pytest
import torch

from cnc.evaluation import inspection
from cnc.experiment.config import load_config
from cnc.experiment.errors import TaskError
from cnc.precompute.run import pending_models, precompute
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from cnc.ui import behaviors, layers
from tests import loader_task
from tests.tiny_task import save_checkpoint

EXPERIMENT = (
    "models:\n"
    "  - {id: a, checkpoint: a.pt, metrics: {Acc: 0.9}}\n"
    "  - {id: b, base: a, operation: {name: prune, parameters: {amount: 0.5}}, checkpoint: b.pt}\n"
)


def setup(folder, task: str, options: str = "{}", extra: str = "") -> AppContext:
    for i, name in enumerate(["a", "b"]):
        if not (folder / f"{name}.pt").exists():
            save_checkpoint(folder / f"{name}.pt", seed=0, prune=0.5 * i)
    (folder / "exp.yaml").write_text(EXPERIMENT)
    (folder / "cfg.yaml").write_text(
        f"experiment: exp.yaml\ntask: {{entry: 'tests.loader_task:{task}', options: {options}, "
        f"activation_sample: 8, batch_size: 7{extra}}}\n")
    cfg = load_config(folder / "cfg.yaml", cache_dir=folder / "cache")
    store = SummaryStore(cfg.cache_dir)
    report = precompute(cfg, store, progress=False)
    assert not report.failed, report.failed
    return AppContext(cfg, store)


def text_of(component) -> str:
    return json.dumps(component, default=lambda c: c.to_plotly_json() if hasattr(c, "to_plotly_json") else str(c))


@pytest.mark.parametrize("task,workers", [("DatasetTask", 0), ("DatasetTask", 2), ("BatchesTask", 0),
                                          ("BatchesTask", 2)])
def test_dataloader_task_end_to_end(tmp_path, task, workers):
    ctx = setup(tmp_path, task, extra=f", num_workers: {workers}")
    reference = AppContext(*_tiny_reference(tmp_path / "ref"))
    out, ref = ctx.outputs("b"), reference.outputs("b")
    # batched through a DataLoader (batch 7, workers) = the same numbers as the in-memory task
    assert out["probs"].dtype == np.float16 and out["probs"].shape == (40, 3)
    np.testing.assert_array_equal(out["preds"], ref["preds"])
    np.testing.assert_allclose(out["p_true"], ref["p_true"], atol=1e-6)
    assert ctx.activations("a")["2"]["count"] == 8 * 8  # hooks saw only the 8-instance sample

    models = ["a", "b"]
    state, _ = behaviors.state_from_query(ctx, {"brows": "instances", "bmetric": "kl"}, [], models)
    grid, status = behaviors.render_table(ctx, models, state, version=0)
    assert "40 instances" in text_of(status) and "left out" not in text_of(status)
    body, _, _ = layers.update(ctx, {"models": models, "base": "a"}, "layers",
                               {"mode": "activations", "sort": "tree", "sortby": None, "scale": "sqrt", "open": None},
                               None, None)
    assert "Linear" in text_of(body) and "precomputed outputs only" not in text_of(body)
    panel = text_of(behaviors.detail_panel(ctx, models, 3))
    assert "Instance #3" in panel and ctx.instance(3)["text"] in panel


def _tiny_reference(folder):
    folder.mkdir()
    for i, name in enumerate(["a", "b"]):
        save_checkpoint(folder / f"{name}.pt", seed=0, prune=0.5 * i)
    (folder / "exp.yaml").write_text(EXPERIMENT)
    (folder / "cfg.yaml").write_text("experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask'}\n")
    cfg = load_config(folder / "cfg.yaml", cache_dir=folder / "cache")
    store = SummaryStore(cfg.cache_dir)
    precompute(cfg, store, progress=False)
    return cfg, store


def test_opening_one_instance_loads_only_that_instance(tmp_path):
    ctx = setup(tmp_path, "DatasetTask")
    loader_task.CALLS["getitem"].clear()
    loader_task.CALLS["render"].clear()
    panel = text_of(behaviors.detail_panel(ctx, ["a", "b"], 17))
    behaviors.detail_panel(ctx, ["a", "b"], 17)  # memoized: not rendered again
    assert loader_task.CALLS["render"] == [17] and loader_task.CALLS["getitem"] == []
    assert "Instance #17" in panel
    assert ctx.instance(40) is None and ctx.instance(-1) is None


def test_text_task_renders_text_instances_as_text(tmp_path):
    ctx = setup(tmp_path, "ReviewsTask")
    panel = behaviors.detail_panel(ctx, ["a", "b"], 4)
    quote = [c for c in panel if type(c).__name__ == "Blockquote"]
    assert quote and quote[0].children.startswith("Review 4: ") and "<b>not bold</b>" in quote[0].children


def test_shuffled_batches_are_refused_with_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "a.pt")
    (tmp_path / "exp.yaml").write_text("models:\n  - {id: a, checkpoint: a.pt}\n")
    (tmp_path / "cfg.yaml").write_text(
        "experiment: exp.yaml\ntask: {entry: 'tests.loader_task:BatchesTask', options: {shuffle: true}}\n")
    cfg = load_config(tmp_path / "cfg.yaml", cache_dir=tmp_path / "cache")
    report = precompute(cfg, SummaryStore(cfg.cache_dir), progress=False)
    assert "shuffle=False" in report.failed["a"]


def test_swapped_dataset_behind_the_same_entry_point_is_never_served_stale(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text(" ".join(["0"] * 40))
    ctx = setup(tmp_path, "DatasetTask", options=f"{{labels_file: {labels}}}")
    old_th = ctx.task_hash
    assert ctx.task_data()["labels"].tolist() == [0] * 40
    labels.write_text(" ".join(["1"] * 40))  # same entry, same options, different data
    cfg, store = ctx.config, ctx.store
    assert pending_models(cfg, store) == []  # not known until precompute looks at the data...
    report = precompute(cfg, store, progress=False)
    assert report.computed == ["a", "b"]  # ...which it always does
    fresh = AppContext(cfg, store)
    assert fresh.task_hash != old_th and fresh.task_data()["labels"].tolist() == [1] * 40
    np.testing.assert_allclose(fresh.outputs("a")["p_true"], fresh.outputs("a")["probs"][:, 1], atol=1e-3)


def test_compact_outputs_and_bytes_on_disk(tmp_path):
    ctx = setup(tmp_path, "DatasetTask")
    out = ctx.outputs("a")
    assert out["preds"].dtype == np.int16 and out["p_true"].dtype == np.float32
    assert isinstance(out["probs"], np.memmap) or out["probs"].nbytes == 40 * 3 * 2
    rows = np.arange(40)
    np.testing.assert_allclose(out["p_true"], out["probs"][rows, ctx.task_data()["labels"]], atol=1e-3)
    np.testing.assert_allclose(out["p_pred"], out["probs"].max(1), atol=1e-3)


def test_devices():
    assert inspection.resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert inspection.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(TaskError, match="not valid"):
        inspection.resolve_device("tpu:x")
    if not torch.cuda.is_available():
        assert inspection.resolve_device("auto") == torch.device("cpu") or torch.backends.mps.is_available()
        with pytest.raises(TaskError, match="no usable CUDA GPU"):
            inspection.resolve_device("cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_precompute_on_cuda_matches_cpu(tmp_path):
    (tmp_path / "gpu").mkdir()
    (tmp_path / "cpu").mkdir()
    gpu = setup(tmp_path / "gpu", "DatasetTask", extra=", device: cuda")
    cpu = setup(tmp_path / "cpu", "DatasetTask", extra=", device: cpu")
    np.testing.assert_array_equal(gpu.outputs("b")["preds"], cpu.outputs("b")["preds"])
    np.testing.assert_allclose(gpu.outputs("b")["p_true"], cpu.outputs("b")["p_true"], atol=1e-4)


def test_bad_device_in_config_names_the_key(tmp_path):
    from cnc.experiment.errors import ConfigError

    save_checkpoint(tmp_path / "a.pt")
    (tmp_path / "exp.yaml").write_text("models:\n  - {id: a, checkpoint: a.pt}\n")
    (tmp_path / "cfg.yaml").write_text("experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask', device: gpu}\n")
    with pytest.raises(ConfigError, match="task.device"):
        load_config(tmp_path / "cfg.yaml")
