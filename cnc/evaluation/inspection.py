"""PyTorch inspection: evaluation outputs, per-module weight stats and activation summaries.

Only the precompute step imports this module; the web app reads its results from the store.
"""
from __future__ import annotations

import zlib
from contextlib import contextmanager
from typing import Any, Iterable

import numpy as np
import torch

from cnc.evaluation import evaldata
from cnc.experiment.errors import TaskError

N_BINS = 40
SAMPLE_SIZE = 2048


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' (a CUDA GPU, else Apple MPS, else the CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise TaskError(f"device '{spec}' is not valid; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TaskError(f"device '{spec}' asked for, but this machine has no usable CUDA GPU; use auto or cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TaskError(f"device '{spec}': only {torch.cuda.device_count()} CUDA device(s) here.")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise TaskError(f"device '{spec}' asked for, but MPS is not available here; use auto or cpu.")
    elif device.type != "cpu":
        raise TaskError(f"device '{spec}' is not supported; use auto, cpu, cuda, cuda:N or mps.")
    return device


def run_model(model: torch.nn.Module, batches: Iterable[tuple[Any, np.ndarray]], labels: np.ndarray,
              sample_index: np.ndarray, device: torch.device) -> tuple[dict, np.ndarray, dict]:
    """One pass over the evaluation batches under inference_mode, on `device`.

    Returns (outputs, probs, activations): outputs = {"preds", "p_true", "p_pred"} per instance
    (argmax and probabilities taken in float32 before any rounding), probs = float16 [N, C]
    softmax, activations = leaf-module outputs on the rows of `sample_index` only (hooks run on a
    second forward of just those rows, so the other rows pay nothing for them).
    """
    n = len(labels)
    model = model.to(device).eval()
    probs = preds = p_true = p_pred = None
    captured: dict[str, tuple[str, list]] = {}
    pos = 0
    with torch.inference_mode():
        for inputs, batch_labels in batches:
            b = len(batch_labels)
            if pos + b > n or not np.array_equal(batch_labels, labels[pos:pos + b]):
                raise TaskError(f"evaluation batches at instance {pos} do not match the task's labels "
                                "(is the data shuffled or non-deterministic? use shuffle=False)")
            x = evaldata.to_device(inputs, device)
            logits = evaldata.call(model, x)
            if logits.ndim != 2 or logits.shape[0] != b:
                raise TaskError(f"model outputs have shape {tuple(logits.shape)}; expected [{b}, classes]")
            p = torch.softmax(logits.float(), dim=-1)
            top_p, top = p.max(dim=-1)
            y = torch.as_tensor(batch_labels, device=p.device).clamp(0, p.shape[1] - 1)
            if probs is None:
                probs = np.empty((n, p.shape[1]), dtype=np.float16)
                preds = np.empty(n, dtype=np.int16 if p.shape[1] < 2 ** 15 else np.int32)
                p_true, p_pred = np.empty(n, np.float32), np.empty(n, np.float32)
            probs[pos:pos + b] = p.half().cpu().numpy()
            preds[pos:pos + b] = top.cpu().numpy()
            p_pred[pos:pos + b] = top_p.cpu().numpy()
            p_true[pos:pos + b] = p.gather(1, y[:, None])[:, 0].cpu().numpy()
            rows = sample_index[(sample_index >= pos) & (sample_index < pos + b)] - pos
            if rows.size:
                with leaf_hooks(model, captured):
                    evaldata.call(model, evaldata.take(x, rows))
            pos += b
    if pos != n:
        raise TaskError(f"evaluation batches held {pos} instances; the task's labels say {n}")
    if probs is None:
        raise TaskError("the evaluation set is empty")
    acts = {name: (kind, np.concatenate(parts)) for name, (kind, parts) in captured.items()}
    return {"preds": preds, "p_true": p_true, "p_pred": p_pred}, probs, acts


@contextmanager
def leaf_hooks(model: torch.nn.Module, captured: dict[str, tuple[str, list]]):
    """Collect every leaf module's output (flattened, float32, CPU) while the block runs."""
    hooks = []
    for name, module in model.named_modules():
        if not name or any(True for _ in module.children()):
            continue

        def hook(mod: torch.nn.Module, _inp: Any, out: Any, name: str = name) -> None:
            tensor = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(tensor, torch.Tensor):
                if tensor.is_quantized:
                    tensor = tensor.dequantize()
                values = tensor.detach().float().reshape(-1).cpu().numpy()
                captured.setdefault(name, (type(mod).__name__, []))[1].append(values)

        hooks.append(module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def module_parameters(model: torch.nn.Module) -> dict[str, tuple[str, np.ndarray]]:
    """Per module (dotted name): its type and its own parameters, flattened and concatenated."""
    found = {}
    for name, module in model.named_modules():
        own = [p.detach().float().reshape(-1) for p in module.parameters(recurse=False)]
        if name and own:
            found[name] = (type(module).__name__, torch.cat(own).cpu().numpy())
    return found


def module_activations(model: torch.nn.Module, inputs: Any) -> dict[str, tuple[str, np.ndarray]]:
    """Outputs of every leaf module on one batch of inputs, flattened."""
    captured: dict[str, tuple[str, list]] = {}
    model.eval()
    with torch.inference_mode(), leaf_hooks(model, captured):
        evaldata.call(model, inputs)
    return {name: (kind, np.concatenate(parts)) for name, (kind, parts) in captured.items()}


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
