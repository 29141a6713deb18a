"""Built-in compression operations: pruning, fine-tuning, BatchNorm recalibration, int8 quantization.

Every operation takes a model and returns a new one (the input is left untouched), so a
provenance tree of variants can be grown from any node. Training data is an `(inputs, labels)`
tensor pair; shuffling uses a local seeded generator so results do not depend on call order.

Int8 quantization is *simulated* (the demo calls the operation "simulated int8") and implemented
here rather than with `torch.ao.quantization` (deprecated, and its converted modules rename/fuse
layers and do not round-trip through `weights_only` loading): conv/linear weights are quantized
per output channel to int8 and stored as int8 in the checkpoint (4x smaller), the in-memory model
holds the dequantized values under the float model's parameter names (float kernels run them),
and layer inputs are fake-quantized to int8 by forward pre-hooks, with calibrated scales (static)
or scales computed per batch (dynamic).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

Data = tuple[torch.Tensor, torch.Tensor]
QuantMode = Literal["static", "dynamic"]

NORM_TYPES: tuple[type[nn.Module], ...] = (_BatchNorm, nn.GroupNorm, nn.LayerNorm)
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (_ConvNd, nn.Linear)
INT8_FORMAT = "cnc-int8/1"
INT8_ATTR = "cnc_int8"
QMIN, QMAX = -128, 127


# ---------------------------------------------------------------- helpers

def batches(data: Data, batch_size: int, seed: int | None = None) -> Iterator[Data]:
    """Mini-batches of `data`, shuffled with a local generator when `seed` is given.

    A trailing batch of one sample is dropped: BatchNorm1d cannot train on it."""
    x, y = data
    n = len(x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if seed is not None else None
    for start in range(0, n, batch_size):
        idx = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        if len(xb) > 1 or n == 1:
            yield xb, yb


def weights_of(model: nn.Module, types: tuple[type, ...]) -> dict[str, nn.Parameter]:
    """The `weight` parameters of the modules of `types`, by parameter name, in module order."""
    out: dict[str, nn.Parameter] = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, types) and isinstance(weight, nn.Parameter):
            out[f"{name}.weight" if name else "weight"] = weight
    return out


def prunable_weights(model: nn.Module, include_norm: bool = True) -> dict[str, nn.Parameter]:
    """The `weight` parameters of conv/linear layers, and of normalization layers if asked."""
    return weights_of(model, WEIGHT_TYPES + (NORM_TYPES if include_norm else ()))


def _zero_lowest(weights: dict[str, nn.Parameter], scores: dict[str, torch.Tensor], amount: float) -> None:
    """Zero exactly round(amount * total) weights with the lowest scores, ranked globally."""
    _check_amount(amount)
    flat = torch.cat([scores[n].detach().flatten() for n in weights])
    k = round(amount * flat.numel())
    if k == 0:
        return
    mask = torch.ones_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, k, largest=False, sorted=False).indices] = False
    offset = 0
    with torch.no_grad():
        for name, p in weights.items():
            n = p.numel()
            p.mul_(mask[offset:offset + n].view_as(p))
            offset += n


def _check_amount(amount: float) -> None:
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"pruning amount must be in [0, 1]; got {amount}")


def _copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


# ---------------------------------------------------------------- pruning

def magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """Global magnitude pruning over all weights, normalization weights (BN gammas) included.

    One threshold for the whole network, as in the common one-line recipe; `amount` is the target
    share of zeros among those weights (already-zero weights count, so it can be re-applied to
    prune further). Small BN gammas compete with conv weights and get zeroed too, which is the
    failure mode the Layers view is meant to reveal."""
    out = _copy(model)
    weights = prunable_weights(out, include_norm=True)
    _zero_lowest(weights, {n: p.abs() for n, p in weights.items()}, amount)
    return out


def layerwise_prune(model: nn.Module, amount: float) -> nn.Module:
    """Magnitude pruning with the same `amount` in every conv/linear layer; normalization layers
    are spared, so no layer is wiped out and BN scales stay intact."""
    out = _copy(model)
    for name, p in prunable_weights(out, include_norm=False).items():
        _zero_lowest({name: p}, {name: p.abs()}, amount)
    return out


def taylor_scores(model: nn.Module, data: Data, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """First-order Taylor importance |w * dL/dw|, summed over training batches.

    Estimates the loss change from removing each weight; runs in eval mode so BatchNorm running
    statistics are not disturbed."""
    weights = prunable_weights(model, include_norm=True)
    scores = {n: torch.zeros_like(p) for n, p in weights.items()}
    was_training = model.training
    model.eval()
    for xb, yb in batches(data, batch_size):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        for n, p in weights.items():
            if p.grad is not None:
                scores[n] += (p.detach() * p.grad).abs()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return scores


def taylor_prune(model: nn.Module, amount: float, data: Data, batch_size: int = 64) -> nn.Module:
    """Global gradient (Taylor) pruning: zero the weights whose removal costs the least loss."""
    out = _copy(model)
    scores = taylor_scores(out, data, batch_size)
    _zero_lowest(prunable_weights(out, include_norm=True), scores, amount)
    return out


def zero_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Where the prunable weights are non-zero; fine-tuning keeps the rest at zero."""
    return {n: p.detach() != 0 for n, p in prunable_weights(model, include_norm=True).items()}


# ---------------------------------------------------------------- training

def masked_step(opt: torch.optim.Optimizer, sched: Any, loss: torch.Tensor,
                params: Mapping[str, nn.Parameter], masks: Mapping[str, torch.Tensor] | None) -> None:
    """One optimizer and schedule step; pruned weights are re-zeroed after it so they stay exactly zero."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    if masks:
        with torch.no_grad():
            for name, mask in masks.items():
                params[name].mul_(mask)


def train(model: nn.Module, data: Data, epochs: int, lr: float, seed: int = 0, batch_size: int = 32,
          masks: Mapping[str, torch.Tensor] | None = None, bn_l1: float = 0.0) -> nn.Module:
    """SGD with momentum and a cosine schedule, in place.

    `masks` are re-applied after every step so pruned weights stay exactly zero; `bn_l1` adds an
    L1 penalty on normalization scales (network slimming), which pushes unimportant channels'
    gammas towards zero."""
    params = dict(model.named_parameters())
    norm_weights = [m.weight for m in model.modules()
                    if isinstance(m, NORM_TYPES) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    steps = epochs * max(1, math.ceil(len(data[0]) / batch_size))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    model.train()
    for epoch in range(epochs):
        for xb, yb in batches(data, batch_size, seed=seed * 1000 + epoch):
            loss = F.cross_entropy(model(xb), yb)
            if bn_l1:
                loss = loss + bn_l1 * sum(w.abs().sum() for w in norm_weights)
            masked_step(opt, sched, loss, params, masks)
    model.eval()
    return model


def fine_tune(model: nn.Module, data: Data, epochs: int, lr: float = 0.01, seed: int = 0,
              batch_size: int = 32) -> nn.Module:
    """Retrain a (pruned) model to recover accuracy while keeping its zeros at zero."""
    out = _copy(model)
    return train(out, data, epochs, lr, seed=seed, batch_size=batch_size, masks=zero_masks(out))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Data, batch_size: int = 64) -> nn.Module:
    """Re-estimate BatchNorm running statistics on training data.

    Pruning shifts each layer's output distribution, so the stored mean/variance no longer match;
    recomputing them (a cumulative average over one pass) is a cheap, training-free repair."""
    out = _copy(model)
    norms = [m for m in out.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    out.train()
    for xb, _ in batches(data, batch_size):
        out(xb)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return out.eval()


# ---------------------------------------------------------------- int8 quantization

@dataclass
class Int8Info:
    """What makes a model int8: per-channel weight scales and, for static mode, input qparams."""

    mode: QuantMode
    weight_scale: dict[str, torch.Tensor] = field(default_factory=dict)  # param name -> [out]
    act_scale: dict[str, torch.Tensor] = field(default_factory=dict)  # module name -> scalar
    act_zero_point: dict[str, torch.Tensor] = field(default_factory=dict)


class FakeQuantInput:
    """Forward pre-hook that rounds a layer's input to int8 (static scale, or per batch)."""

    def __init__(self, scale: torch.Tensor | None = None, zero_point: torch.Tensor | None = None) -> None:
        self.scale = None if scale is None else float(scale)
        self.zero_point = None if zero_point is None else int(zero_point)

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        if self.scale is not None:
            scale, zp = self.scale, self.zero_point
        else:
            lo, hi = torch.aminmax(x.detach())
            scale_t, zp_t = _affine_qparams(lo, hi)
            scale, zp = float(scale_t), int(zp_t)
        return (torch.fake_quantize_per_tensor_affine(x, scale, zp, QMIN, QMAX),) + tuple(args[1:])


def _affine_qparams(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric per-tensor int8 parameters covering [min(lo, 0), max(hi, 0)]."""
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    scale = torch.clamp((hi - lo) / (QMAX - QMIN), min=1e-8).float()
    zero_point = torch.clamp(torch.round(QMIN - lo / scale), QMIN, QMAX).to(torch.int32)
    return scale, zero_point


def _channel_scale(w: torch.Tensor) -> torch.Tensor:
    amax = w.detach().abs().flatten(1).amax(dim=1) if w.dim() > 1 else w.detach().abs().amax().reshape(1)
    return torch.where(amax > 0, amax / 127.0, torch.ones_like(amax)).float()


def _to_int8(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    shape = (-1,) + (1,) * (w.dim() - 1)
    return torch.clamp(torch.round(w.detach() / scale.view(shape)), -127, 127).to(torch.int8)


def _from_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.view((-1,) + (1,) * (q.dim() - 1))


def _quant_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules()
            if isinstance(m, WEIGHT_TYPES) and isinstance(getattr(m, "weight", None), nn.Parameter)}


def _install(model: nn.Module, info: Int8Info) -> nn.Module:
    """Attach `info` and the activation fake-quant hooks (names and parameters unchanged)."""
    for name, module in _quant_layers(model).items():
        if info.mode == "static":
            hook = FakeQuantInput(info.act_scale[name], info.act_zero_point[name])
        else:
            hook = FakeQuantInput()
        module.register_forward_pre_hook(hook)
    setattr(model, INT8_ATTR, info)
    return model.eval()


def int8_info(model: nn.Module) -> Int8Info | None:
    return getattr(model, INT8_ATTR, None)


@torch.no_grad()
def _calibrate_inputs(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Observed min/max of each quantizable layer's input over the calibration data."""
    ranges: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, module in _quant_layers(model).items():
        def observe(_m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            lo, hi = torch.aminmax(args[0])
            if name in ranges:
                lo, hi = torch.minimum(lo, ranges[name][0]), torch.maximum(hi, ranges[name][1])
            ranges[name] = (lo, hi)
        handles.append(module.register_forward_pre_hook(observe))
    model.eval()
    try:
        for start in range(0, len(inputs), batch_size):
            model(inputs[start:start + batch_size])
    finally:
        for h in handles:
            h.remove()
    return ranges


def quantize_int8(model: nn.Module, mode: QuantMode, calibration: torch.Tensor | None = None,
                  batch_size: int = 256) -> nn.Module:
    """Post-training int8 quantization of conv/linear layers.

    Weights: symmetric per-output-channel int8. Activations (layer inputs): `static` uses
    asymmetric int8 scales calibrated once on `calibration` inputs (fixed at deployment, cheapest
    at run time); `dynamic` computes them from each batch (no calibration data, slower).
    Zeros stay zero, so pruning and quantization compose."""
    if mode not in ("static", "dynamic"):
        raise ValueError(f"quantization mode must be 'static' or 'dynamic'; got {mode!r}")
    if int8_info(model) is not None:
        raise ValueError("model is already quantized")
    out = _copy(model).eval()
    info = Int8Info(mode=mode)
    if mode == "static":
        if calibration is None:
            raise ValueError("static quantization needs calibration inputs")
        for name, (lo, hi) in _calibrate_inputs(out, calibration, batch_size).items():
            info.act_scale[name], info.act_zero_point[name] = _affine_qparams(lo, hi)
    with torch.no_grad():
        for name, module in _quant_layers(out).items():
            key = f"{name}.weight"
            scale = _channel_scale(module.weight)
            info.weight_scale[key] = scale
            module.weight.copy_(_from_int8(_to_int8(module.weight, scale), scale))
    return _install(out, info)


# ---------------------------------------------------------------- checkpoints

def checkpoint_payload(model: nn.Module) -> dict[str, Any]:
    """What `save_checkpoint` writes: the state dict, or for int8 models a dict holding int8
    weights, their scales, the remaining float tensors and the activation parameters."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    info = int8_info(model)
    if info is None:
        return state
    int8 = {k: _to_int8(state.pop(k), s) for k, s in info.weight_scale.items()}
    return {
        "format": INT8_FORMAT,
        "mode": info.mode,
        "state": state,
        "int8": int8,
        "weight_scale": dict(info.weight_scale),
        "act_scale": dict(info.act_scale),
        "act_zero_point": dict(info.act_zero_point),
    }


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_payload(model), path)
    return path


def is_int8_payload(payload: Any) -> bool:
    return isinstance(payload, Mapping) and payload.get("format") == INT8_FORMAT


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Any]) -> nn.Module:
    """Load a float or int8 checkpoint into `model` (in place) with `weights_only=True`.

    Int8 weights are dequantized into the float parameters and the activation hooks re-installed,
    so the result has the float model's names and runs as the int8 model would."""
    payload = torch.load(source, map_location="cpu", weights_only=True) if isinstance(source, (str, Path)) else source
    if not is_int8_payload(payload):
        model.load_state_dict(payload)
        return model.eval()
    state = dict(payload["state"])
    for key, q in payload["int8"].items():
        state[key] = _from_int8(q, payload["weight_scale"][key])
    model.load_state_dict(state)
    info = Int8Info(
        mode=payload["mode"],
        weight_scale=dict(payload["weight_scale"]),
        act_scale=dict(payload.get("act_scale", {})),
        act_zero_point=dict(payload.get("act_zero_point", {})),
    )
    return _install(model, info)
