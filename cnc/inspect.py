"""PyTorch inspection: evaluation outputs, per-module weight stats and activation summaries.

Only the precompute step imports this module; the web app reads its results from the store.
"""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

N_BINS = 40
SAMPLE_SIZE = 2048


@torch.no_grad()
def evaluate(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Output probabilities [N, C] (softmax of the model's logits)."""
    model.eval()
    out = [torch.softmax(model(inputs[i:i + batch_size]).float(), dim=-1) for i in range(0, len(inputs), batch_size)]
    return torch.cat(out).cpu().numpy().astype(np.float32)


def module_parameters(model: torch.nn.Module) -> dict[str, tuple[str, np.ndarray]]:
    """Per module (dotted name): its type and its own parameters, flattened and concatenated."""
    found = {}
    for name, module in model.named_modules():
        own = [p.detach().float().reshape(-1) for p in module.parameters(recurse=False)]
        if name and own:
            found[name] = (type(module).__name__, torch.cat(own).cpu().numpy())
    return found


@torch.no_grad()
def module_activations(model: torch.nn.Module, inputs: torch.Tensor) -> dict[str, tuple[str, np.ndarray]]:
    """Outputs of every leaf module on a fixed sample, flattened."""
    captured: dict[str, tuple[str, np.ndarray]] = {}
    hooks = []
    for name, module in model.named_modules():
        if not name or any(True for _ in module.children()):
            continue

        def hook(mod: torch.nn.Module, _inp: Any, out: Any, name: str = name) -> None:
            tensor = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(tensor, torch.Tensor):
                if tensor.is_quantized:
                    tensor = tensor.dequantize()
                captured[name] = (type(mod).__name__, tensor.detach().float().reshape(-1).cpu().numpy())

        hooks.append(module.register_forward_hook(hook))
    try:
        model.eval()
        model(inputs)
    finally:
        for h in hooks:
            h.remove()
    return captured


def shared_edges(values: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """Bin edges from a reference model's values, padded so later models mostly fit inside."""
    if values.size == 0:
        return np.linspace(-1.0, 1.0, bins + 1)
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or max(abs(lo), 1e-3) * 0.1
    return np.linspace(lo - pad, hi + pad, bins + 1)


def sample_positions(name: str, count: int, k: int = SAMPLE_SIZE) -> np.ndarray:
    """Fixed element positions for a module: the same for every model with the same shape."""
    if count <= k:
        return np.arange(count)
    rng = np.random.default_rng(zlib.crc32(f"{name}:{count}".encode()))
    return np.sort(rng.choice(count, size=k, replace=False))


def summarize(name: str, kind: str, values: np.ndarray, edges: np.ndarray) -> dict:
    clipped = np.clip(values, edges[0], edges[-1])
    hist, _ = np.histogram(clipped, bins=edges)
    return {
        "type": kind,
        "count": int(values.size),
        "zeros": int(np.count_nonzero(values == 0)),
        "edges": edges,
        "hist": hist.astype(np.int64),
        "sample": values[sample_positions(name, values.size)].astype(np.float32),
        "l2": float(np.linalg.norm(values)),
        "mean": float(values.mean()) if values.size else 0.0,
        "std": float(values.std()) if values.size else 0.0,
    }


def summarize_all(found: dict[str, tuple[str, np.ndarray]], edges: dict[str, np.ndarray]) -> dict[str, dict]:
    """Summaries per module; modules without shared edges yet get edges from these values
    (the first model of a task sets them for every later one). `edges` is updated in place."""
    out = {}
    for name, (kind, values) in found.items():
        if name not in edges:
            edges[name] = shared_edges(values)
        out[name] = summarize(name, kind, values, edges[name])
    return out
