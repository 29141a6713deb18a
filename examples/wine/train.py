"""Worked example: train, compress and log models with the Tracker, then open them in the app.

    python -m examples.wine.train runs/wine          # about half a minute on a laptop CPU
    cnc --config runs/wine                           # opens the logged experiment

Run both from the repository root with the package installed (`pip install -e .`): the task is
imported as `examples.wine.task`.
"""
from __future__ import annotations

import sys

import torch

from cnc import Tracker
from cnc.toolkit import compress, measure
from examples.wine.task import make_model, wine_split


def log(t: Tracker, model_id: str, model: torch.nn.Module, test, base=None, operation=None, tag="") -> None:
    metrics = measure.measure_model(model, test[0], test[1], latency_runs=50)
    t.log_model(model_id, base=base, operation=operation, tag=tag, metrics=metrics,
                model=compress.checkpoint_payload(model))


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    train, test, _, _ = wine_split(seed=0)
    t = Tracker(out_dir, title="Wine MLP compression", task="examples.wine.task:WineTask")
    t.metric("Accuracy", format=".1%", primary=True)
    t.metric("F1", format=".3f")
    t.metric("Size", unit="KB", format=".1f", higher_is_better=False, primary=True)
    t.metric("Latency", unit="ms", format=".3f", higher_is_better=False, primary=True)
    t.metric("Sparsity", format=".0%")
    t.metric("Params", format=",d", higher_is_better=False)
    for op, params in (("magnitude prune", ["amount"]), ("fine-tune", ["epochs"]), ("simulated int8", ["mode"])):
        t.operation(op, params)

    base = compress.train(make_model(), train, epochs=30, lr=0.05)
    log(t, "base", base, test, tag="MLP")
    for amount in (0.5, 0.8, 0.95):
        pruned = compress.magnitude_prune(base, amount)
        pid = f"prune{int(amount * 100)}"
        log(t, pid, pruned, test, base="base", operation=("magnitude prune", {"amount": amount}))
        tuned = compress.fine_tune(pruned, train, epochs=10)
        log(t, f"{pid}-ft", tuned, test, base=pid, operation=("fine-tune", {"epochs": 10}))
        quant = compress.quantize_int8(tuned, "static", calibration=train[0])
        log(t, f"{pid}-ft-int8", quant, test, base=f"{pid}-ft", operation=("simulated int8", {"mode": "static"}))
    print(f"logged 10 models to {out_dir}; now run: python app.py --config {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/wine")
