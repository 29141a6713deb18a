"""Synthetic compression forests for benchmarks and scale tests (no torch needed)."""
from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path

from cnc.experiment.forest import Experiment, parse_experiment

_OPS = {
    "magnitude prune": {"amount": [0.1, 0.3, 0.5, 0.7, 0.9]},
    "gradient prune": {"amount": [0.3, 0.5, 0.7]},
    "fine-tune": {"epochs": [1, 3]},
    "calibrate": {},
    "quantize": {"bits": [4, 8]},
    "distill": {"width": [0.25, 0.5]},
}


def make_experiment(n_models: int, seed: int = 0, n_roots: int = 2) -> Experiment:
    """A random but plausible forest: recipes of 1-5 steps with metrics that follow the steps."""
    rng = random.Random(seed)
    models: list[dict] = []
    state: dict[str, dict] = {}
    for r in range(min(n_roots, n_models)):
        mid = f"root{r}"
        state[mid] = {"acc": 0.9 + 0.02 * r, "size": 4000.0 * (r + 1), "lat": 5.0 * (r + 1), "depth": 0}
        models.append({"id": mid, "tag": f"Base {r}", "base": None, "metrics": _metrics(state[mid], rng)})
    while len(models) < n_models:
        parent = rng.choice([m["id"] for m in models if state[m["id"]]["depth"] < 5])
        op = rng.choice(list(_OPS))
        params = {k: rng.choice(v) for k, v in _OPS[op].items()}
        s = dict(state[parent])
        s["depth"] += 1
        amount = params.get("amount", 0.0)
        if "prune" in op:
            s["acc"] -= amount ** 3 * 0.3
            s["size"] *= 1 - amount * 0.8
        elif op == "fine-tune":
            s["acc"] = min(0.99, s["acc"] + 0.01 * params["epochs"])
        elif op == "quantize":
            s["size"] *= params["bits"] / 32
            s["lat"] *= 0.6
            s["acc"] -= 0.02 if params["bits"] == 4 else 0.005
        elif op == "distill":
            s["size"] *= params["width"]
            s["lat"] *= params["width"] + 0.2
            s["acc"] -= 0.05 * (1 - params["width"])
        mid = f"m{len(models)}"
        state[mid] = s
        models.append({
            "id": mid, "tag": f"{op} {len(models)}", "base": parent,
            "operation": {"name": op, "parameters": params}, "metrics": _metrics(s, rng),
        })
    data = {
        "metrics": [
            {"name": "Accuracy", "format": ".1%", "min": 0, "max": 1, "primary": True},
            {"name": "Size", "format": ".0f", "unit": "KB", "higher_is_better": False, "primary": True},
            {"name": "Latency", "format": ".2f", "unit": "ms", "higher_is_better": False, "primary": True},
            {"name": "Loss", "format": ".3f", "higher_is_better": False},
        ],
        "operations": [{"name": k, "parameters": list(v)} for k, v in _OPS.items()],
        "models": models,
    }
    return parse_experiment(data, where=f"<synthetic {n_models}>")


def _metrics(s: dict, rng: random.Random) -> dict:
    acc = max(0.0, min(1.0, s["acc"] + rng.gauss(0, 0.005)))
    return {
        "Accuracy": round(acc, 4),
        "Size": round(s["size"], 1),
        "Latency": round(s["lat"] * (1 + rng.gauss(0, 0.03)), 3),
        "Loss": None if rng.random() < 0.05 else round(1 - acc + rng.random() * 0.05, 4),
    }


def write_experiment(n_models: int, path: str | Path, seed: int = 0) -> Path:
    """A synthetic forest saved as an experiment JSON file (for app-level tests and benchmarks)."""
    exp = make_experiment(n_models, seed=seed)
    data = {
        "metrics": [asdict(m) for m in exp.metrics.values()],
        "operations": [asdict(o) for o in exp.operations.values()],
        "models": [{"id": m.id, "base": m.base, "tag": m.tag, "metrics": m.metrics,
                    "operation": asdict(m.operation) if m.operation else None} for m in exp.models.values()],
    }
    path = Path(path)
    path.write_text(json.dumps(data))
    return path
