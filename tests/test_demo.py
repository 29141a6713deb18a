"""The embedded demo: built once per session, then checked end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnc.demos.digits.build import FT_EPOCHS, build_demo
from cnc.demos.digits.task import DigitsTask
from cnc.evaluation.task import Task
from cnc.experiment.config import load_experiment
from cnc.experiment.forest import Experiment
from cnc.toolkit import measure

REQUIRED_OPS = {"magnitude prune", "layerwise prune", "taylor prune", "fine-tune", "recalibrate BN",
                "simulated int8"}


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    threads = torch.get_num_threads()
    path = build_demo(tmp_path_factory.mktemp("demo") / "experiment.yaml", progress=False)
    assert torch.get_num_threads() == threads, "build_demo must restore the thread count"
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def exp(demo_path: Path) -> Experiment:
    return load_experiment(demo_path)


@pytest.fixture(scope="session")
def task() -> DigitsTask:
    return DigitsTask(seed=0)


def _op(exp: Experiment, mid: str) -> tuple[str, dict]:
    op = exp.models[mid].operation
    assert op is not None, mid
    return op.name, op.parameters


def test_experiment_loads_with_required_shape(exp: Experiment, demo_path: Path) -> None:
    assert len(exp.models) >= 30
    assert not exp.warnings
    assert REQUIRED_OPS <= set(exp.operations)
    assert exp.roots == ["base"]
    assert {"Accuracy", "F1", "Size", "Latency", "Sparsity", "Params"} <= set(exp.metrics)
    assert not [p for p in demo_path.parent.iterdir() if p.name.endswith(".tmp")]
    for pct in (10, 30, 50, 70, 90, 99):
        mid = f"mag{pct}"
        assert exp.models[mid].base == "base"
        assert _op(exp, mid) == ("magnitude prune", {"amount": pct / 100})
        assert _op(exp, f"{mid}-ft") == ("fine-tune", {"epochs": FT_EPOCHS})
        assert exp.models[f"{mid}-ft"].base == mid
    assert any(_op(exp, c)[0] == "recalibrate BN" for c in exp.children["mag90"])
    for kind, op in (("layer", "layerwise prune"), ("taylor", "taylor prune")):
        for pct in (50, 90):
            assert _op(exp, f"{kind}{pct}") == (op, {"amount": pct / 100})
            assert _op(exp, f"{kind}{pct}-ft")[0] == "fine-tune"
    quantized = [m for m in exp.models.values() if m.operation and m.operation.name == "simulated int8"]
    assert {m.operation.parameters["mode"] for m in quantized} == {"static", "dynamic"}
    assert {"base", "mag50-ft", "layer50-ft"} <= {m.base for m in quantized}


def test_multi_step_chain(exp: Experiment) -> None:
    chains = []
    for mid in exp.models:
        path = exp.path_to_root(mid)[1:]
        chains.append([exp.models[p].operation.name for p in path])
    assert ["magnitude prune", "fine-tune", "magnitude prune", "fine-tune", "simulated int8"] in chains


def test_metrics_are_measured(exp: Experiment, task: DigitsTask) -> None:
    x, y = task.eval_data()
    base = exp.models["base"].metrics
    assert base["Accuracy"] >= 0.95
    for model in exp.models.values():
        m = model.metrics
        assert m["Latency"] > 0
        assert m["Size"] == pytest.approx(measure.checkpoint_size_kb(model.checkpoint), abs=1e-3)
        loaded = task.load_model(model.checkpoint)
        acc, f1 = measure.accuracy_f1(loaded, x, y)
        assert m["Accuracy"] == pytest.approx(acc, abs=1e-6), model.id
        assert m["F1"] == pytest.approx(f1, abs=1e-6), model.id
        assert m["Params"] == measure.nonzero_params(loaded)


def test_global_prune_zeroes_bn_but_layerwise_does_not(exp: Experiment, task: DigitsTask) -> None:
    mag90 = task.load_model(exp.models["mag90"].checkpoint)
    layer90 = task.load_model(exp.models["layer90"].checkpoint)
    assert exp.models["mag90"].metrics["Sparsity"] == pytest.approx(0.9, abs=0.02)
    assert measure.sparsity(mag90) == pytest.approx(0.9, abs=0.02)
    assert sum(int((bn.weight == 0).sum()) for bn in (mag90.bn1, mag90.bn2, mag90.bn3)) >= 5
    assert all(int((bn.weight == 0).sum()) == 0 for bn in (layer90.bn1, layer90.bn2, layer90.bn3))


def test_fine_tune_keeps_pruned_zeros(exp: Experiment, task: DigitsTask) -> None:
    pruned = dict(task.load_model(exp.models["mag70"].checkpoint).named_parameters())
    tuned = dict(task.load_model(exp.models["mag70-ft"].checkpoint).named_parameters())
    for name, p in pruned.items():
        if name.endswith("weight"):
            assert bool((tuned[name][p == 0] == 0).all()), name


@pytest.mark.parametrize("mid", ["base-int8s", "base-int8d", "mag50-ft-int8s", "layer50-ft-int8s"])
def test_quantized_quarter_size_similar_accuracy(exp: Experiment, mid: str) -> None:
    model, parent = exp.models[mid], exp.models[exp.models[mid].base]
    if mid.startswith("base"):
        file_ratio = Path(model.checkpoint).stat().st_size / Path(parent.checkpoint).stat().st_size
        assert 0.2 < file_ratio < 0.35
        assert model.metrics["Size"] / parent.metrics["Size"] == pytest.approx(0.26, abs=0.03)
    else:
        assert model.metrics["Size"] < 0.4 * parent.metrics["Size"]
    assert abs(model.metrics["Accuracy"] - parent.metrics["Accuracy"]) <= 0.03


def test_task_loads_every_checkpoint(exp: Experiment, task: DigitsTask) -> None:
    assert isinstance(task, Task)
    base_names = [n for n, _ in task.load_model(exp.models["base"].checkpoint).named_modules()]
    base_params = [n for n, _ in task.load_model(exp.models["base"].checkpoint).named_parameters()]
    for model in exp.models.values():
        torch.load(model.checkpoint, weights_only=True)
        loaded = task.load_model(model.checkpoint)
        assert not loaded.training
        assert [n for n, _ in loaded.named_modules()] == base_names
        assert [n for n, _ in loaded.named_parameters()] == base_params


def test_task_data_and_attributes(task: DigitsTask) -> None:
    x, y = task.eval_data()
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32
    assert y.dtype == np.int64 and len(y) == len(x)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert task.class_names == [str(d) for d in range(10)]
    attrs = task.attributes()
    assert set(attrs) == {"ink density", "stroke width"}
    assert set(attrs["ink density"]) == {"low", "medium", "high"}
    assert set(attrs["stroke width"]) == {"thin", "medium", "thick"}
    assert all(len(v) == len(y) for v in attrs.values())
    shown = task.render_instance(3)
    assert shown["kind"] == "image"
    assert np.allclose(np.array(shown["pixels"]), x[3, 0].numpy())
