"""Measurements of a model: size, latency, sparsity, parameter count, accuracy and F1.

Size is what a compression-aware serializer would write: each tensor is stored either dense or
as its non-zero values plus a one-bit-per-element bitmap, whichever is smaller, at its own dtype
(int8 weights of a quantized model count one byte each). So pruning and quantization both show.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from cnc.toolkit.compress import checkpoint_payload

METRIC_NAMES = ("Accuracy", "F1", "Size", "Latency", "Sparsity", "Params")
# How an experiment file declares the two metrics `sparsity` and `nonzero_params` measure (any model)
PARAMETER_METRICS: tuple[dict[str, Any], ...] = (
    {"name": "Sparsity", "format": ".0%", "unit": "", "min": 0, "max": 1, "higher_is_better": True,
     "primary": False, "description": "share of parameters that are exactly zero"},
    {"name": "Params", "format": ",d", "unit": "", "higher_is_better": False, "primary": False,
     "description": "number of non-zero parameters"},
)


def tensor_bytes(t: torch.Tensor) -> int:
    """min(dense bytes, non-zeros * itemsize + bitmap bytes)."""
    numel = t.numel()
    dense = numel * t.element_size()
    sparse = int(torch.count_nonzero(t)) * t.element_size() + (numel + 7) // 8
    return min(dense, sparse)


def payload_bytes(obj: Any) -> int:
    """Bytes of every tensor in a (nested) checkpoint payload; metadata strings are free."""
    if isinstance(obj, torch.Tensor):
        return tensor_bytes(obj)
    if isinstance(obj, Mapping):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    return 0


def size_kb(model: nn.Module) -> float:
    """Serialized size of the model's checkpoint, in KB (1024 bytes)."""
    return payload_bytes(checkpoint_payload(model)) / 1024


def checkpoint_size_kb(path: str | Path) -> float:
    """The same measure for a saved checkpoint file (float or int8)."""
    return payload_bytes(torch.load(path, map_location="cpu", weights_only=True)) / 1024


def latency_ms(model: nn.Module, example: torch.Tensor, runs: int = 300, warmup: int = 30) -> float:
    """Median single-batch CPU latency in ms, on one thread (the previous setting is restored).

    One thread and a median make numbers comparable across models and robust to noise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(example)
            for _ in range(runs):
                start = time.perf_counter()
                model(example)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) * 1000.0


def sparsity(model: nn.Module) -> float:
    """Share of parameter elements that are exactly zero."""
    total = sum(p.numel() for p in model.parameters())
    zeros = sum(int((p == 0).sum()) for p in model.parameters())
    return zeros / total if total else 0.0


def nonzero_params(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


@torch.inference_mode()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    model.eval()
    out = [model(inputs[i:i + batch_size]).argmax(dim=1) for i in range(0, len(inputs), batch_size)]
    return torch.cat(out).numpy()


def accuracy_f1(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """Accuracy and macro F1 (classes the model never predicts score 0)."""
    y = np.asarray(labels)
    pred = predict(model, inputs)
    return float((pred == y).mean()), float(f1_score(y, pred, average="macro", zero_division=0))


def measure_model(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | np.ndarray,
                  latency_runs: int = 300) -> dict[str, float]:
    """All demo metrics, keyed by METRIC_NAMES."""
    acc, f1 = accuracy_f1(model, inputs, labels)
    return {
        "Accuracy": acc,
        "F1": f1,
        "Size": size_kb(model),
        "Latency": latency_ms(model, inputs[:1], runs=latency_runs),
        "Sparsity": sparsity(model),
        "Params": nonzero_params(model),
    }
