"""Worked example: train and compress a small model, log every variant to a local MLflow store
with the cnc.* tags, then open that MLflow experiment here.

    pip install -r requirements-mlflow.txt
    python -m examples.mlflow.train runs/mlflow-wine       # about half a minute on a laptop CPU
    cnc --config runs/mlflow-wine/config.yaml               # the MLflow runs, with Behaviors and Layers
    mlflow ui --backend-store-uri sqlite:///runs/mlflow-wine/mlflow.db   # the same runs in MLflow's UI

Run from the repository root (the task is the wine example's, imported as `examples.wine.task`).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mlflow
import torch
import yaml

from cnc.toolkit import compress, measure
from examples.wine.task import make_model, wine_split

EXPERIMENT = "wine-compress"


def log_variant(model: torch.nn.Module, test, params: dict, tags: dict) -> None:
    """Metrics, params, cnc.* tags and a checkpoint for the active run."""
    mlflow.set_tags(tags)
    mlflow.log_params(params)
    mlflow.log_metrics(measure.measure_model(model, test[0], test[1], latency_runs=50))
    if compress.int8_info(model) is None:  # float weights: MLflow's own state-dict logger
        mlflow.pytorch.log_state_dict(model.state_dict(), "checkpoint")
    else:  # int8 weights and scales: a .pt artifact (loads with weights_only=True)
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(compress.save_checkpoint(model, Path(tmp) / "model.pt")))


def main(out_dir: str) -> None:
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=(out / "artifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)
    torch.manual_seed(0)
    train, test, _, _ = wine_split(seed=0)

    with mlflow.start_run(run_name="base"):
        base = compress.train(make_model(), train, epochs=30, lr=0.05)
        log_variant(base, test, {"epochs": 30, "lr": 0.05}, {"cnc.tag": "MLP"})
        for amount in (0.5, 0.8, 0.95):
            pid = f"prune{int(amount * 100)}"
            pruned = compress.magnitude_prune(base, amount)
            with mlflow.start_run(run_name=pid, nested=True):  # base = the MLflow parent run
                log_variant(pruned, test, {"amount": amount}, {"cnc.operation": "magnitude prune"})
            tuned = compress.fine_tune(pruned, train, epochs=10)
            with mlflow.start_run(run_name=f"{pid}-ft", nested=True):  # parent is base; the tag says pid
                log_variant(tuned, test, {"epochs": 10, "lr": 0.01},
                            {"cnc.base": pid, "cnc.operation": "fine-tune", "cnc.parameters": "epochs"})
            quant = compress.quantize_int8(tuned, "static", calibration=train[0])
            with mlflow.start_run(run_name=f"{pid}-ft-int8", nested=True):
                log_variant(quant, test, {"mode": "static"}, {"cnc.base": f"{pid}-ft", "cnc.operation": "quantize int8"})

    config = {
        "title": "Wine MLP compression (MLflow)",
        "experiment": {"mlflow": {
            "tracking_uri": "sqlite:///mlflow.db",  # relative to this config file
            "experiment": EXPERIMENT,
            "metrics": [
                {"name": "Accuracy", "format": ".1%", "primary": True},
                {"name": "Size", "unit": "KB", "format": ".1f", "higher_is_better": False, "primary": True},
                {"name": "Latency", "unit": "ms", "format": ".3f", "higher_is_better": False, "primary": True},
                {"name": "Sparsity", "format": ".0%"},
            ],
        }},
        "task": {"entry": "examples.wine.task:WineTask"},
        "defaults": {"x": "Size", "y": "Accuracy"},
    }
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"logged 10 runs to {out / 'mlflow.db'}; now run: python app.py --config {out / 'config.yaml'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/mlflow-wine")
