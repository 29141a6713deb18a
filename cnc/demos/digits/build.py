"""Build the embedded demo experiment: a real CNN, real compressed variants, measured metrics.

`build_demo(path)` trains the base model on the digits train split, grows a provenance tree of
compressed variants with `cnc.toolkit.compress`, measures every model with `cnc.toolkit.measure`, saves
checkpoints under `<dir>/checkpoints/` and writes the experiment YAML atomically. Everything is
seeded, so the same tree with the same accuracies comes out every time (latency is measured anew).

The base model is trained with an L1 penalty on BatchNorm scales (network slimming, Liu et al.
2017), a common preparation for pruning: it makes unimportant channels visible as small gammas,
which global magnitude pruning then zeroes along with small conv weights.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from cnc.demos.digits.data import load_splits
from cnc.demos.digits.model import build_model
from cnc.experiment.files import atomic_write_text
from cnc.toolkit import compress
from cnc.toolkit.measure import PARAMETER_METRICS, measure_model

BASE_EPOCHS = 10
BASE_LR = 0.05
BN_L1 = 0.01
FT_EPOCHS = 3
FT_LR = 0.01
LATENCY_RUNS = 300

METRICS: list[dict[str, Any]] = [
    {"name": "Accuracy", "format": ".1%", "unit": "", "min": 0, "max": 1, "higher_is_better": True,
     "primary": True, "description": "top-1 accuracy on the held-out test split"},
    {"name": "F1", "format": ".3f", "unit": "", "min": 0, "max": 1, "higher_is_better": True,
     "primary": False, "description": "macro-averaged F1 over the 10 classes"},
    {"name": "Size", "format": ".1f", "unit": "KB", "higher_is_better": False, "primary": True,
     "description": "modelled size, not a file's: the bytes a sparse-or-dense encoding of each tensor "
                    "would take (non-zeros plus a bitmap when smaller; int8 weights 1 byte each)"},
    {"name": "Latency", "format": ".3f", "unit": "ms", "higher_is_better": False, "primary": True,
     "description": "median CPU time of one single-image forward pass on one thread; simulated int8 "
                    "models run float kernels, so theirs is not an int8 engine's latency"},
    *PARAMETER_METRICS,
]

OPERATIONS: list[dict[str, Any]] = [
    {"name": "magnitude prune", "parameters": ["amount"],
     "description": "global magnitude pruning of all weights, BatchNorm scales included"},
    {"name": "layerwise prune", "parameters": ["amount"],
     "description": "magnitude pruning at the same amount in every conv/linear layer; norms spared"},
    {"name": "taylor prune", "parameters": ["amount"],
     "description": "global pruning by first-order Taylor importance |w * dL/dw|"},
    {"name": "fine-tune", "parameters": ["epochs"],
     "description": "retraining with pruned weights held at zero"},
    {"name": "recalibrate BN", "parameters": [],
     "description": "re-estimate BatchNorm running statistics on training data"},
    {"name": "simulated int8", "parameters": ["mode"],
     "description": "simulated quantization: per-channel int8 weights (stored as int8) run as float on "
                    "their dequantized values, layer inputs rounded to int8 by hooks (static: calibrated "
                    "scales, dynamic: per batch)"},
]


@dataclass(frozen=True)
class Step:
    """One variant to build: `id` is made from `base` by `op` with `params`."""

    id: str
    base: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)


def demo_recipe() -> list[Step]:
    """The demo tree, parents before children."""
    steps: list[Step] = []
    ft = {"epochs": FT_EPOCHS}
    for pct in (10, 30, 50, 70, 90, 99):
        steps.append(Step(f"mag{pct}", "base", "magnitude prune", {"amount": pct / 100}))
        steps.append(Step(f"mag{pct}-ft", f"mag{pct}", "fine-tune", ft))
        if pct >= 50:
            steps.append(Step(f"mag{pct}-bn", f"mag{pct}", "recalibrate BN"))
    for kind, op in (("layer", "layerwise prune"), ("taylor", "taylor prune")):
        for pct in (50, 70, 90):
            steps.append(Step(f"{kind}{pct}", "base", op, {"amount": pct / 100}))
            steps.append(Step(f"{kind}{pct}-ft", f"{kind}{pct}", "fine-tune", ft))
    for base in ("base", "mag50-ft"):
        for mode in ("static", "dynamic"):
            steps.append(Step(f"{base}-int8{mode[0]}", base, "simulated int8", {"mode": mode}))
    steps.append(Step("mag90-ft-int8s", "mag90-ft", "simulated int8", {"mode": "static"}))
    steps.append(Step("layer50-ft-int8s", "layer50-ft", "simulated int8", {"mode": "static"}))
    steps.append(Step("layer90-ft-int8s", "layer90-ft", "simulated int8", {"mode": "static"}))
    # Iterative pruning: prune, recover, prune harder, recover, then quantize.
    steps.append(Step("mag50-ft-mag80", "mag50-ft", "magnitude prune", {"amount": 0.8}))
    steps.append(Step("mag50-ft-mag80-ft", "mag50-ft-mag80", "fine-tune", ft))
    steps.append(Step("mag50-ft-mag80-ft-int8s", "mag50-ft-mag80-ft", "simulated int8", {"mode": "static"}))
    return steps


def _op_label(op: str, params: dict[str, Any]) -> str:
    if op in ("magnitude prune", "layerwise prune", "taylor prune"):
        kind = {"magnitude prune": "Magnitude", "layerwise prune": "Layer-wise", "taylor prune": "Taylor"}[op]
        return f"{kind} {params['amount']:.0%}"
    return {"fine-tune": "FT", "recalibrate BN": "BN recal"}.get(op) or f"int8 {params['mode']}"


def _apply(step: Step, parent: nn.Module, train: compress.Data, seed: int) -> nn.Module:
    p = step.params
    if step.op == "magnitude prune":
        return compress.magnitude_prune(parent, p["amount"])
    if step.op == "layerwise prune":
        return compress.layerwise_prune(parent, p["amount"])
    if step.op == "taylor prune":
        return compress.taylor_prune(parent, p["amount"], train)
    if step.op == "fine-tune":
        return compress.fine_tune(parent, train, p["epochs"], lr=FT_LR, seed=seed)
    if step.op == "recalibrate BN":
        return compress.recalibrate_bn(parent, train)
    if step.op == "simulated int8":
        return compress.quantize_int8(parent, p["mode"], calibration=train[0])
    raise ValueError(f"unknown demo operation {step.op!r}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _clean_metrics(values: dict[str, float]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for k, v in values.items():
        out[k] = int(v) if k == "Params" else round(float(v), 6)
    return out


def build_demo(experiment_path: str | Path, progress: bool = True, seed: int = 0) -> Path:
    """Train, compress, measure and write the demo experiment; returns the experiment path.

    Runs on one torch thread (restored afterwards): the model is too small to gain from
    intra-op parallelism, and on a busy machine OpenMP spin-waiting made a 2-thread build
    more than ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(Path(experiment_path), progress, seed)
    finally:
        torch.set_num_threads(threads)


def _build(path: Path, progress: bool, seed: int) -> Path:
    ckpt_dir = path.parent / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    train_split, test_split = load_splits(seed)
    train = (train_split.x, train_split.y)
    recipe = demo_recipe()

    seed_everything(seed)
    bar = tqdm(total=len(recipe) + 1, desc="demo", unit="model", file=sys.stderr, disable=not progress)
    try:
        bar.set_postfix_str("base")
        base = compress.train(build_model(), train, BASE_EPOCHS, BASE_LR, seed=seed, bn_l1=BN_L1)
        built: dict[str, nn.Module] = {"base": base}
        tags: dict[str, str] = {"base": "Base CNN"}
        entries = [_entry("base", None, None, tags["base"], base, test_split.x, test_split.y, ckpt_dir)]
        bar.update()
        for step in recipe:
            bar.set_postfix_str(step.id)
            model = _apply(step, built[step.base], train, seed)
            built[step.id] = model
            label = _op_label(step.op, step.params)
            prefix_base = step.base != "base" or step.op == "simulated int8"
            tags[step.id] = f"{tags[step.base]} → {label}" if prefix_base else label
            operation = {"name": step.op, "parameters": dict(step.params)}
            entries.append(_entry(step.id, step.base, operation, tags[step.id], model,
                                  test_split.x, test_split.y, ckpt_dir))
            bar.update()
    finally:
        bar.close()

    doc = {"metrics": METRICS, "operations": OPERATIONS, "models": entries}
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
    atomic_write_text(path, text)
    return path


def _entry(model_id: str, base: str | None, operation: dict[str, Any] | None, tag: str, model: nn.Module,
           test_x: torch.Tensor, test_y: torch.Tensor, ckpt_dir: Path) -> dict[str, Any]:
    compress.save_checkpoint(model, ckpt_dir / f"{model_id}.pt")
    metrics = measure_model(model, test_x, test_y, latency_runs=LATENCY_RUNS)
    return {
        "id": model_id,
        "tag": tag,
        "base": base,
        "operation": operation,
        "metrics": _clean_metrics(metrics),
        "checkpoint": f"checkpoints/{model_id}.pt",
    }


if __name__ == "__main__":
    build_demo(sys.argv[1] if len(sys.argv) > 1 else "demo/experiment.yaml")
