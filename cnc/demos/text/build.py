"""Build the text demo: a small transformer answering questions, compressed the ways LMs are.

`build_demo(path)` trains the base model on the synthetic QA train split, grows a provenance tree
of compressed variants with `cnc.toolkit.lm_compress`, measures every model (exact match and token
F1 of its greedy answers on the test split, size, latency, sparsity), saves checkpoints under
`<dir>/checkpoints/` and writes the experiment YAML atomically. Everything is seeded, so the same
tree with the same scores comes out every time (latency is measured anew).

It reproduces the case study of the original system (T5 on SQuAD). After training, the base's
LayerNorm gains are scaled down by NORM_SCALE and the linear layers they feed scaled up to match
(`shift_norm_scale`: the same function, but norm gains now far smaller than any weight, as the
case study's norms were relative to the rest). One global magnitude threshold then zeroes the
norm gains first and generation breaks, while layer-wise pruning, which spares norms, keeps the
answers; putting the base's norms back recovers most of the score.
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

from cnc.analysis.text_scores import exact_match, token_f1
from cnc.demos.text.data import load_examples, tokenizer, training_tensors
from cnc.demos.text.model import TinyLM, build_model
from cnc.demos.text.task import MAX_NEW_TOKENS, greedy_generate, left_padded
from cnc.experiment.files import atomic_write_text
from cnc.toolkit import lm_compress as lc
from cnc.toolkit.measure import PARAMETER_METRICS, latency_ms, nonzero_params, payload_bytes, sparsity

BASE_STEPS = 1200
BASE_LR = 5e-3
NORM_SCALE = 0.02  # the base's LayerNorm gains carry this share of their scale (see shift_norm_scale)
FT_STEPS = 200
FT_LR = 1e-3
INT4_GROUP = 32
LATENCY_RUNS = 100
EVAL_BATCH = 250

METRICS: list[dict[str, Any]] = [
    {"name": "Exact match", "format": ".1%", "unit": "", "min": 0, "max": 1, "higher_is_better": True,
     "primary": True, "description": "share of test questions whose greedy answer equals the reference "
                                     "(SQuAD normalization: case, punctuation and articles ignored)"},
    {"name": "F1", "format": ".1%", "unit": "", "min": 0, "max": 1, "higher_is_better": True,
     "primary": True, "description": "SQuAD token F1 of the greedy answer against the reference, averaged"},
    {"name": "Size", "format": ".1f", "unit": "KB", "higher_is_better": False, "primary": True,
     "description": "modelled size, not a file's: the bytes a sparse-or-dense encoding of each tensor "
                    "would take (non-zeros plus a bitmap when smaller; int8 weights 1 byte, int4 half a byte, "
                    "plus float16 scales)"},
    {"name": "Latency", "format": ".3f", "unit": "ms", "higher_is_better": False, "primary": False,
     "description": "median CPU time of one forward pass over one test prompt on one thread; simulated "
                    "quantized models run float kernels, so theirs is not an integer engine's latency"},
    *PARAMETER_METRICS,
]

OPERATIONS: list[dict[str, Any]] = [
    {"name": "global prune", "parameters": ["amount"],
     "description": "global magnitude pruning over all weights: linear layers, embeddings and LayerNorm gains"},
    {"name": "layer-wise prune", "parameters": ["amount"],
     "description": "magnitude pruning at the same amount in every linear layer; norms and embeddings spared"},
    {"name": "restore norms", "parameters": [],
     "description": "put the base model's LayerNorm gains and biases back into a pruned model"},
    {"name": "2:4 prune", "parameters": [],
     "description": "semi-structured sparsity: the 2 smallest of every 4 consecutive weights of each linear layer"},
    {"name": "fine-tune", "parameters": ["steps"],
     "description": "AdamW on the train split with pruned weights held at zero"},
    {"name": "simulated weight quant", "parameters": ["bits", "group_size"],
     "description": "weight-only round-to-nearest quantization of linear layers, simulated: integer weights "
                    "(int4 packed two per byte) and float16 scales per output channel (int8) or per group of "
                    "input weights (int4) in the checkpoint, run as float on their dequantized values"},
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
    ft = {"steps": FT_STEPS}
    steps: list[Step] = []
    for pct in (10, 30, 50):
        steps.append(Step(f"global{pct}", "base", "global prune", {"amount": pct / 100}))
        steps.append(Step(f"global{pct}-norms", f"global{pct}", "restore norms"))
    for pct in (10, 30, 50, 70):
        steps.append(Step(f"layer{pct}", "base", "layer-wise prune", {"amount": pct / 100}))
    steps.append(Step("layer50-ft", "layer50", "fine-tune", ft))
    steps.append(Step("layer70-ft", "layer70", "fine-tune", ft))
    steps.append(Step("2of4", "base", "2:4 prune"))
    steps.append(Step("2of4-ft", "2of4", "fine-tune", ft))
    steps.append(Step("int8", "base", "simulated weight quant", {"bits": 8}))
    steps.append(Step("int4", "base", "simulated weight quant", {"bits": 4, "group_size": INT4_GROUP}))
    steps.append(Step("layer50-ft-int4", "layer50-ft", "simulated weight quant", {"bits": 4, "group_size": INT4_GROUP}))
    return steps


def _op_label(op: str, params: dict[str, Any]) -> str:
    if op in ("global prune", "layer-wise prune"):
        return f"{'Global' if op == 'global prune' else 'Layer-wise'} {params['amount']:.0%}"
    if op == "simulated weight quant":
        return f"int{params['bits']}" + (f" g{params['group_size']}" if params.get("group_size") else "")
    return {"restore norms": "norms restored", "fine-tune": "FT", "2:4 prune": "2:4"}[op]


def apply_step(step: Step, parent: nn.Module, base: nn.Module, train: lc.Data, seed: int) -> nn.Module:
    p = step.params
    if step.op == "global prune":
        return lc.global_magnitude_prune(parent, p["amount"])
    if step.op == "layer-wise prune":
        return lc.layerwise_prune(parent, p["amount"])
    if step.op == "restore norms":
        return lc.restore_norms(parent, base)
    if step.op == "2:4 prune":
        return lc.semi_structured_prune(parent, 2, 4)
    if step.op == "fine-tune":
        return lc.fine_tune_lm(parent, train, p["steps"], lr=FT_LR, seed=seed)
    if step.op == "simulated weight quant":
        return lc.quantize_weights(parent, p["bits"], p.get("group_size"))
    raise ValueError(f"unknown text demo operation {step.op!r}")


def train_base(train: lc.Data, seed: int = 0, steps: int = BASE_STEPS) -> nn.Module:
    """The base: trained, then its norm gains scaled down by NORM_SCALE (same function)."""
    seed_everything(seed)
    model = lc.train_lm(build_model(len(tokenizer())), train, steps, BASE_LR, seed=seed)
    return shift_norm_scale(model, NORM_SCALE)


@torch.no_grad()
def shift_norm_scale(model: TinyLM, factor: float) -> TinyLM:
    """Move scale from every LayerNorm gain into the linear layers it feeds: gain * factor,
    their weights / factor. The model computes the same function (up to float rounding).

    This stands for what a pretrained checkpoint can look like, and what the case study's T5
    pruning ran into: norm gains far smaller than the weights around them, so one global
    magnitude threshold zeroes them before anything else."""
    pairs = [(block.ln1, (block.attn.q, block.attn.k, block.attn.v)) for block in model.blocks]
    pairs += [(block.ln2, (block.mlp.fc1,)) for block in model.blocks] + [(model.ln_f, (model.head,))]
    for norm, consumers in pairs:
        norm.weight.mul_(factor)
        for layer in consumers:
            layer.weight.div_(factor)
    return model


@torch.inference_mode()
def answer_scores(model: nn.Module, seed: int = 0) -> tuple[float, float, list[str]]:
    """(mean exact match, mean token F1, answers) of greedy answers on the test split."""
    test = load_examples("test", seed)
    tok = tokenizer()
    model.eval()
    answers: list[str] = []
    for start in range(0, len(test), EVAL_BATCH):
        answers += greedy_generate(model, tok, [ex.prompt for ex in test[start:start + EVAL_BATCH]], MAX_NEW_TOKENS)
    em = float(np.mean([exact_match(a, [ex.answer]) for a, ex in zip(answers, test)]))
    f1 = float(np.mean([token_f1(a, [ex.answer]) for a, ex in zip(answers, test)]))
    return em, f1, answers


def measure(model: nn.Module, seed: int = 0, latency_runs: int = LATENCY_RUNS) -> dict[str, float | int]:
    em, f1, _ = answer_scores(model, seed)
    example, _ = left_padded(tokenizer(), [load_examples("test", seed)[0].prompt], torch.device("cpu"))
    return {
        "Exact match": round(em, 6),
        "F1": round(f1, 6),
        "Size": round(payload_bytes(lc.checkpoint_payload(model)) / 1024, 6),
        "Latency": round(latency_ms(model, example, runs=latency_runs, warmup=10), 6),
        "Sparsity": round(sparsity(model), 6),
        "Params": int(nonzero_params(model)),
    }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_demo(experiment_path: str | Path, progress: bool = True, seed: int = 0) -> Path:
    """Train, compress, measure and write the text demo experiment; returns the experiment path.

    Runs on one torch thread (restored afterwards), like the digits demo: the model is small and
    on a busy machine OpenMP spin-waiting costs more than a second thread gains."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(Path(experiment_path), progress, seed)
    finally:
        torch.set_num_threads(threads)


def _build(path: Path, progress: bool, seed: int) -> Path:
    ckpt_dir = path.parent / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    train = training_tensors(load_examples("train", seed))
    recipe = demo_recipe()
    bar = tqdm(total=len(recipe) + 1, desc="text demo", unit="model", file=sys.stderr, disable=not progress)
    try:
        bar.set_postfix_str("base (training)")
        base = train_base(train, seed)
        built: dict[str, nn.Module] = {"base": base}
        tags: dict[str, str] = {"base": "Base transformer"}
        entries = [_entry("base", None, None, tags["base"], base, seed, ckpt_dir)]
        bar.update()
        for step in recipe:
            bar.set_postfix_str(step.id)
            model = apply_step(step, built[step.base], base, train, seed)
            built[step.id] = model
            label = _op_label(step.op, step.params)
            tags[step.id] = f"{tags[step.base]} → {label}" if step.base != "base" else label
            operation = {"name": step.op, "parameters": dict(step.params)}
            entries.append(_entry(step.id, step.base, operation, tags[step.id], model, seed, ckpt_dir))
            bar.update()
    finally:
        bar.close()
    doc = {"metrics": METRICS, "operations": OPERATIONS, "models": entries}
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None,
                                           width=120))
    return path


def _entry(model_id: str, base: str | None, operation: dict[str, Any] | None, tag: str, model: nn.Module,
           seed: int, ckpt_dir: Path) -> dict[str, Any]:
    lc.save_checkpoint(model, ckpt_dir / f"{model_id}.pt")
    return {
        "id": model_id,
        "tag": tag,
        "base": base,
        "operation": operation,
        "metrics": measure(model, seed),
        "checkpoint": f"checkpoints/{model_id}.pt",
    }


if __name__ == "__main__":
    build_demo(sys.argv[1] if len(sys.argv) > 1 else "demo-text/experiment.yaml")
