"""Unit tests of cnc.toolkit.compress and cnc.toolkit.measure on the small demo CNN with random data."""
from __future__ import annotations

import pytest
import torch

from cnc.demos.digits.model import build_model
from cnc.toolkit import compress, measure

NORM_NAMES = ("bn1.weight", "bn2.weight", "bn3.weight")
LAYER_NAMES = ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight")


@pytest.fixture()
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model()
    with torch.no_grad():  # trained-looking BN: varied gammas and running statistics
        for bn in (m.bn1, m.bn2, m.bn3):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.fixture()
def data() -> compress.Data:
    g = torch.Generator().manual_seed(1)
    return torch.rand(96, 1, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g)


def _zeros(t: torch.Tensor) -> int:
    return int((t == 0).sum())


def test_global_magnitude_prune_hits_target_and_bn(model: torch.nn.Module) -> None:
    with torch.no_grad():
        model.bn2.weight[:8] = 1e-4  # tiny gammas must lose to conv weights under one threshold
    pruned = compress.magnitude_prune(model, 0.9)
    weights = compress.prunable_weights(pruned, include_norm=True)
    total = sum(p.numel() for p in weights.values())
    zeros = sum(_zeros(p) for p in weights.values())
    assert zeros == round(0.9 * total)
    assert measure.sparsity(pruned) == pytest.approx(0.9, abs=0.01)
    assert _zeros(pruned.bn2.weight[:8]) == 8
    assert _zeros(model.conv2.weight) == 0, "the input model must be left untouched"


def test_global_magnitude_prune_can_be_reapplied(model: torch.nn.Module) -> None:
    once = compress.magnitude_prune(model, 0.5)
    twice = compress.magnitude_prune(once, 0.8)
    zero_once = {n: p == 0 for n, p in compress.prunable_weights(once).items()}
    for name, p in compress.prunable_weights(twice).items():
        assert bool((p[zero_once[name]] == 0).all())
    total = sum(p.numel() for p in compress.prunable_weights(twice).values())
    assert sum(_zeros(p) for p in compress.prunable_weights(twice).values()) == round(0.8 * total)


def test_layerwise_prune_spares_norm_layers(model: torch.nn.Module) -> None:
    pruned = compress.layerwise_prune(model, 0.9)
    params = dict(pruned.named_parameters())
    for name in LAYER_NAMES:
        assert _zeros(params[name]) == round(0.9 * params[name].numel())
    original = dict(model.named_parameters())
    for name in NORM_NAMES:
        assert torch.equal(params[name], original[name])
        assert _zeros(params[name]) == 0


def test_taylor_prune_is_global_and_uses_gradients(model: torch.nn.Module, data: compress.Data) -> None:
    scores = compress.taylor_scores(model, data)
    assert set(scores) == set(compress.prunable_weights(model))
    assert all(float(s.sum()) > 0 for s in scores.values())
    pruned = compress.taylor_prune(model, 0.5, data)
    weights = compress.prunable_weights(pruned)
    total = sum(p.numel() for p in weights.values())
    assert sum(_zeros(p) for p in weights.values()) == round(0.5 * total)
    # the kept weights are the most important ones
    flat_scores = torch.cat([scores[n].flatten() for n in weights])
    kept = torch.cat([(p != 0).flatten() for p in weights.values()])
    assert float(flat_scores[kept].min()) >= float(flat_scores[~kept].max())


def test_fine_tune_keeps_zeros(model: torch.nn.Module, data: compress.Data) -> None:
    pruned = compress.magnitude_prune(model, 0.7)
    tuned = compress.fine_tune(pruned, data, epochs=2, lr=0.05)
    before, after = dict(pruned.named_parameters()), dict(tuned.named_parameters())
    for name in compress.prunable_weights(pruned):
        mask = before[name] == 0
        assert bool((after[name][mask] == 0).all()), name
    assert not torch.equal(before["fc1.weight"], after["fc1.weight"]), "fine-tuning must train"
    assert not tuned.training


def test_recalibrate_bn_matches_data_statistics(model: torch.nn.Module, data: compress.Data) -> None:
    recal = compress.recalibrate_bn(model, data, batch_size=len(data[0]))
    with torch.no_grad():
        conv1_out = recal.conv1(data[0])
    assert torch.allclose(recal.bn1.running_mean, conv1_out.mean(dim=(0, 2, 3)), atol=1e-5)
    assert recal.bn1.momentum == model.bn1.momentum
    assert torch.equal(recal.bn1.weight, model.bn1.weight)
    assert not recal.training


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_quantize_int8_roundtrip(model: torch.nn.Module, data: compress.Data, mode: str, tmp_path) -> None:
    q = compress.quantize_int8(model, mode, calibration=data[0])
    assert [n for n, _ in q.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert [n for n, _ in q.named_modules()] == [n for n, _ in model.named_modules()]
    info = compress.int8_info(q)
    assert info is not None and info.mode == mode
    for name in LAYER_NAMES:  # every weight is an int8 level times its channel's scale
        w = dict(q.named_parameters())[name].detach()
        scale = info.weight_scale[name].view((-1,) + (1,) * (w.dim() - 1))
        levels = w / scale
        assert torch.allclose(levels, levels.round(), atol=1e-3)
        assert float(levels.abs().max()) <= 127.001

    x = data[0][:16]
    with torch.no_grad():
        out_float, out_q = model(x), q(x)
    assert torch.allclose(out_float, out_q, atol=0.25 * float(out_float.abs().max()))

    float_path = compress.save_checkpoint(model, tmp_path / "float.pt")
    q_path = compress.save_checkpoint(q, tmp_path / "q.pt")
    payload = torch.load(q_path, weights_only=True)
    assert payload["int8"]["fc1.weight"].dtype == torch.int8
    ratio = q_path.stat().st_size / float_path.stat().st_size
    assert 0.2 < ratio < 0.35
    assert measure.size_kb(q) / measure.size_kb(model) == pytest.approx(0.26, abs=0.03)
    assert measure.checkpoint_size_kb(q_path) == pytest.approx(measure.size_kb(q))

    loaded = compress.load_checkpoint(build_model(), q_path)
    assert compress.int8_info(loaded) is not None
    with torch.no_grad():
        assert torch.allclose(loaded(x), out_q, atol=1e-5)


def test_quantize_static_needs_calibration(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError):
        compress.quantize_int8(model, "static")
    with pytest.raises(ValueError):
        compress.magnitude_prune(model, 1.5)


def test_quantize_keeps_pruned_zeros(model: torch.nn.Module, data: compress.Data) -> None:
    pruned = compress.magnitude_prune(model, 0.8)
    q = compress.quantize_int8(pruned, "static", calibration=data[0])
    for name in compress.prunable_weights(pruned):
        mask = dict(pruned.named_parameters())[name] == 0
        assert bool((dict(q.named_parameters())[name][mask] == 0).all())
    assert measure.size_kb(q) < measure.size_kb(pruned) < measure.size_kb(model)


def test_tensor_bytes_picks_sparse_or_dense() -> None:
    dense = torch.ones(800)
    sparse = torch.zeros(800)
    sparse[:10] = 1.0
    assert measure.tensor_bytes(dense) == 3200
    assert measure.tensor_bytes(sparse) == 10 * 4 + 100
    assert measure.tensor_bytes(torch.ones(800, dtype=torch.int8)) == 800


def test_measure_model(model: torch.nn.Module, data: compress.Data) -> None:
    threads = torch.get_num_threads()
    metrics = measure.measure_model(model, data[0], data[1], latency_runs=5)
    assert torch.get_num_threads() == threads
    assert set(metrics) == set(measure.METRIC_NAMES)
    assert metrics["Latency"] > 0
    assert 0 <= metrics["Accuracy"] <= 1 and 0 <= metrics["F1"] <= 1
    assert metrics["Params"] == sum(p.numel() for p in model.parameters())
    assert metrics["Sparsity"] == 0
