"""Compression operations for language models: the ones practitioners apply, real PyTorch.

Next to `cnc.toolkit.compress` (whose helpers these reuse), and like them each operation returns a
new model and leaves its input untouched:
- `global_magnitude_prune`: one magnitude threshold over *all* weights, embeddings and
  normalization gains included. It is the one-line recipe, and its failure mode: when norm gains
  are smaller than typical weights they are zeroed first and generation breaks.
- `layerwise_prune`: the same amount in every linear layer; norms and embeddings spared.
- `restore_norms`: put the base model's normalization layers back into a pruned model.
- `semi_structured_prune`: N:M (2:4) sparsity, the pattern sparse tensor cores run.
- `quantize_weights`: weight-only int8 / int4, round-to-nearest, symmetric, per output channel or
  per group of input weights. *Simulated*: the checkpoint stores the integers (int4 packed two per
  byte) and their float16 scales, and the in-memory model runs float kernels on the dequantized
  weights, so accuracy is what the integer model computes but latency is not an int4 kernel's.
- `train_lm` / `fine_tune_lm`: next-token training with AdamW on (inputs, targets) tensors whose
  targets are -100 where no loss applies; fine-tuning keeps pruned weights at zero.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnc.toolkit.compress import (
    NORM_TYPES,
    WEIGHT_TYPES,
    Data,
    _zero_lowest,
    batches,
    layerwise_prune,
    masked_step,
    weights_of,
)
from cnc.toolkit.compress import checkpoint_payload as float_payload
from cnc.toolkit.compress import load_checkpoint as load_float_checkpoint

__all__ = ["lm_weights", "global_magnitude_prune", "layerwise_prune", "restore_norms", "semi_structured_prune",
           "quantize_weights", "weight_quant_info", "checkpoint_payload", "save_checkpoint", "load_checkpoint",
           "zero_masks", "train_lm", "fine_tune_lm", "lm_loss"]

EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding,)
WQ_FORMAT = "cnc-weight-quant/1"
WQ_ATTR = "cnc_weight_quant"


def lm_weights(model: nn.Module, norms: bool = True, embeddings: bool = True) -> dict[str, nn.Parameter]:
    """`weight` parameters of linear/conv layers, plus embeddings and norm gains if asked, in module order."""
    return weights_of(model, WEIGHT_TYPES + (NORM_TYPES if norms else ()) + (EMBEDDING_TYPES if embeddings else ()))


# ---------------------------------------------------------------- pruning

def global_magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """Zero the `amount` share of smallest-magnitude weights of the whole model, one threshold.

    All weights compete: linear layers, embeddings and normalization gains (biases are kept).
    Already-zero weights count, so re-applying prunes further."""
    out = copy.deepcopy(model)
    weights = lm_weights(out, norms=True, embeddings=True)
    _zero_lowest(weights, {n: p.abs() for n, p in weights.items()}, amount)
    return out


def restore_norms(pruned: nn.Module, base: nn.Module) -> nn.Module:
    """A copy of `pruned` whose normalization layers (parameters and buffers) are the base's.

    The repair for global pruning that hit the norm gains: everything else stays as pruned."""
    out = copy.deepcopy(pruned)
    base_modules = dict(base.named_modules())
    restored = 0
    with torch.no_grad():
        for name, module in out.named_modules():
            if not isinstance(module, NORM_TYPES):
                continue
            source = base_modules.get(name)
            if not isinstance(source, type(module)):
                raise ValueError(f"base model has no {type(module).__name__} named {name!r} to restore from")
            for key, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
                value = getattr(source, key)
                if value is None or value.shape != tensor.shape:
                    raise ValueError(f"norm layer {name!r}: base {key} has shape "
                                     f"{None if value is None else tuple(value.shape)}, pruned {tuple(tensor.shape)}")
                tensor.copy_(value)
            restored += 1
    if not restored:
        raise ValueError("model has no normalization layers to restore")
    return out


def semi_structured_prune(model: nn.Module, n: int = 2, m: int = 4) -> nn.Module:
    """N:M sparsity in every linear layer: in each run of `m` consecutive input weights of an
    output row, the `n` smallest in magnitude are zeroed (2:4 halves the weights)."""
    if not 0 < n < m:
        raise ValueError(f"N:M pruning needs 0 < n < m; got {n}:{m}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, module in out.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            w = module.weight
            if w.shape[1] % m:
                raise ValueError(f"layer {name!r} has {w.shape[1]} inputs, not a multiple of {m}; {n}:{m} needs one")
            groups = w.view(w.shape[0], -1, m)
            drop = groups.abs().topk(n, dim=-1, largest=False).indices
            groups.scatter_(-1, drop, 0.0)
    return out


# ---------------------------------------------------------------- weight-only quantization

@dataclass
class WeightQuantInfo:
    """What makes a model weight-quantized: bits, group size and float16 scales per weight."""

    bits: int
    group_size: int | None  # None: one scale per output channel
    scales: dict[str, torch.Tensor] = field(default_factory=dict)  # param name -> float16 [out, groups]


def weight_quant_info(model: nn.Module) -> WeightQuantInfo | None:
    return getattr(model, WQ_ATTR, None)


def _qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def _grouped(w: torch.Tensor, group_size: int | None) -> torch.Tensor:
    return w.reshape(w.shape[0], 1, -1) if group_size is None else w.reshape(w.shape[0], -1, group_size)


def _quantize(w: torch.Tensor, bits: int, group_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Round-to-nearest symmetric integers in [-qmax, qmax] and their float16 scales [out, groups]."""
    g = _grouped(w.detach().float(), group_size)
    amax = g.abs().amax(dim=-1)
    scale = torch.where(amax > 0, amax / _qmax(bits), torch.ones_like(amax)).half()
    q = torch.clamp(torch.round(g / scale.float()[..., None]), -_qmax(bits), _qmax(bits)).to(torch.int8)
    return q.reshape(w.shape), scale


def _dequantize(q: torch.Tensor, scale: torch.Tensor, group_size: int | None) -> torch.Tensor:
    return (_grouped(q.float(), group_size) * scale.float()[..., None]).reshape(q.shape)


def _pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two int4 values per byte (offset by 8 into 0..15), along the last dimension."""
    u = (q.to(torch.int16) + 8).to(torch.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def _unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    lo, hi = (packed & 0x0F).to(torch.int8) - 8, (packed >> 4).to(torch.int8) - 8
    return torch.stack((lo, hi), dim=-1).flatten(-2)


def quantize_weights(model: nn.Module, bits: int = 8, group_size: int | None = None) -> nn.Module:
    """Weight-only round-to-nearest quantization of every linear layer (simulated; see the module doc).

    `group_size` None gives one scale per output channel, else one per `group_size` consecutive
    input weights (int4 needs groups to stay accurate). Embeddings, norms and biases stay float;
    activations are not quantized. Zeros stay zero, so pruning and quantization compose."""
    if bits not in (4, 8):
        raise ValueError(f"weight-only quantization supports 8 or 4 bits; got {bits}")
    if weight_quant_info(model) is not None or getattr(model, "cnc_int8", None) is not None:
        raise ValueError("model is already quantized")
    out = copy.deepcopy(model).eval()
    info = WeightQuantInfo(bits=bits, group_size=group_size)
    with torch.no_grad():
        for name, module in out.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            cols = module.weight.shape[1]
            if group_size is not None and (group_size <= 0 or cols % group_size):
                raise ValueError(f"layer {name!r} has {cols} inputs; group_size {group_size} must divide it")
            if bits == 4 and cols % 2:
                raise ValueError(f"layer {name!r} has an odd number of inputs ({cols}); int4 packs two per byte")
            q, scale = _quantize(module.weight, bits, group_size)
            info.scales[f"{name}.weight"] = scale
            module.weight.copy_(_dequantize(q, scale, group_size))
    setattr(out, WQ_ATTR, info)
    return out


# ---------------------------------------------------------------- checkpoints

def checkpoint_payload(model: nn.Module) -> dict[str, Any]:
    """What `save_checkpoint` writes: for weight-quantized models the integer weights (int8, or
    int4 packed in uint8), their scales and the remaining float tensors; else the float payload."""
    info = weight_quant_info(model)
    if info is None:
        return float_payload(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    qweight = {}
    for key, scale in info.scales.items():
        w = state.pop(key)
        q = torch.clamp(torch.round(_grouped(w.float(), info.group_size) / scale.float()[..., None]),
                        -_qmax(info.bits), _qmax(info.bits)).to(torch.int8).reshape(w.shape)
        qweight[key] = _pack_int4(q) if info.bits == 4 else q
    return {"format": WQ_FORMAT, "bits": info.bits, "group_size": info.group_size or 0, "state": state,
            "qweight": qweight, "scales": dict(info.scales)}


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_payload(model), path)
    return path


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Any]) -> nn.Module:
    """Load any checkpoint `save_checkpoint` (or `cnc.toolkit.compress`) writes into `model`, in
    place, with `weights_only=True`; weight-quantized ones come back dequantized, info attached."""
    payload = torch.load(source, map_location="cpu", weights_only=True) if isinstance(source, (str, Path)) else source
    if not (isinstance(payload, Mapping) and payload.get("format") == WQ_FORMAT):
        return load_float_checkpoint(model, payload)
    bits, group_size = int(payload["bits"]), int(payload["group_size"]) or None
    state = dict(payload["state"])
    for key, q in payload["qweight"].items():
        q = _unpack_int4(q) if bits == 4 else q
        state[key] = _dequantize(q, payload["scales"][key], group_size)
    model.load_state_dict(state)
    setattr(model, WQ_ATTR, WeightQuantInfo(bits=bits, group_size=group_size, scales=dict(payload["scales"])))
    return model.eval()


# ---------------------------------------------------------------- training

def zero_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Where the weights (embeddings and norm gains included) are non-zero; fine-tuning keeps the rest zero."""
    return {n: p.detach() != 0 for n, p in lm_weights(model).items()}


def lm_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the targets that are not -100.

    Columns after the last target are dropped first: right padding costs nothing."""
    used = (targets != -100).any(dim=0).nonzero()
    width = int(used[-1]) + 1 if len(used) else 1
    out = model(inputs[:, :width])
    logits = out.logits if hasattr(out, "logits") else out
    return F.cross_entropy(logits.flatten(0, 1), targets[:, :width].flatten(), ignore_index=-100)


def _norm_gains(model: nn.Module, norm_decay: float | Mapping[str, float]) -> dict[int, float]:
    """id(norm gain parameter) -> its weight decay; a mapping names the norm modules it applies to."""
    norms = {name: m for name, m in model.named_modules()
             if isinstance(m, NORM_TYPES) and isinstance(getattr(m, "weight", None), nn.Parameter)}
    if not isinstance(norm_decay, Mapping):
        return {id(m.weight): float(norm_decay) for m in norms.values()} if norm_decay else {}
    unknown = sorted(set(norm_decay) - set(norms))
    if unknown:
        raise ValueError(f"norm_decay names {unknown}, which are not normalization layers with a gain "
                         f"(the model has {sorted(norms)})")
    return {id(norms[name].weight): float(decay) for name, decay in norm_decay.items()}


def train_lm(model: nn.Module, data: Data, steps: int, lr: float, seed: int = 0, batch_size: int = 64,
             masks: Mapping[str, torch.Tensor] | None = None, norm_decay: float | Mapping[str, float] = 0.0,
             weight_decay: float = 0.0, warmup: float = 0.05) -> nn.Module:
    """AdamW for `steps` mini-batches (reshuffled every epoch), one-cycle schedule, in place.

    `masks` are re-applied after each step so pruned weights stay exactly zero. `norm_decay` is a
    separate weight decay on normalization gains (one value for all, or per norm module name): it
    shrinks them while the next linear layer takes over their scale, which is what exposes them
    to global magnitude pruning."""
    if weight_quant_info(model) is not None or getattr(model, "cnc_int8", None) is not None:
        raise ValueError("cannot train a quantized model; train first, then quantize")
    decays = _norm_gains(model, norm_decay)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if id(p) in decays and decays[id(p)] == d], "weight_decay": d}
              for d in sorted(set(decays.values()))]
    groups.append({"params": [p for p in params if id(p) not in decays], "weight_decay": weight_decay})
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps), pct_start=warmup)
    named = dict(model.named_parameters())
    model.train()
    step, epoch = 0, 0
    while step < steps:
        for xb, yb in batches(data, batch_size, seed=seed * 1000 + epoch):
            masked_step(opt, sched, lm_loss(model, xb, yb), named, masks)
            step += 1
            if step >= steps:
                break
        epoch += 1
    return model.eval()


def fine_tune_lm(model: nn.Module, data: Data, steps: int, lr: float = 1e-3, seed: int = 0,
                 batch_size: int = 64) -> nn.Module:
    """Retrain a (pruned) copy of `model` to recover quality, its zeros held at zero."""
    out = copy.deepcopy(model)
    return train_lm(out, data, steps, lr, seed=seed, batch_size=batch_size, masks=zero_masks(out))
