"""Log a small real forest of compression runs into an MLflow store (for the MLflow tests)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from tests.tiny_task import TinyTask, make_model, save_checkpoint

EXPERIMENT = "tiny-compress"


def _state_file(seed: int, prune: float = 0.0) -> str:
    path = Path(tempfile.mkdtemp()) / f"model-{seed}.pt"
    save_checkpoint(path, seed=seed, prune=prune)
    return str(path)


def log_forest(tracking_uri: str, artifact_root: Path | None = None) -> dict[str, str]:
    """base -> prune50 (nested run) -> prune50-ft (cnc.base tag), an outputs-only run, two runs
    sharing a name; returns run name -> run id."""
    import mlflow

    if tracking_uri.startswith("file:"):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root.as_uri() if artifact_root else None)
    mlflow.set_experiment(EXPERIMENT)
    ids = {}
    with mlflow.start_run(run_name="base") as base:
        mlflow.log_params({"lr": 0.1, "epochs": 5})
        mlflow.log_metric("Accuracy", 0.5, step=0)
        mlflow.log_metric("Accuracy", 0.9, step=1)  # the latest value counts
        mlflow.log_metrics({"Size": 10.0, "Latency_ms": 2.0})
        mlflow.log_artifact(_state_file(0))
        with mlflow.start_run(run_name="prune50", nested=True) as prune:
            mlflow.set_tag("cnc.operation", "prune")
            mlflow.log_params({"lr": 0.1, "epochs": 5, "amount": 0.5})
            mlflow.log_metrics({"Accuracy": 0.8, "Size": 5.0, "Latency_ms": 1.5})
            torch.manual_seed(1)
            mlflow.pytorch.log_state_dict(make_model().state_dict(), "checkpoint")
        ids["prune50"] = prune.info.run_id
    ids["base"] = base.info.run_id
    with mlflow.start_run(run_name="prune50-ft") as ft:
        mlflow.set_tags({"cnc.base": "prune50", "cnc.operation": "fine-tune", "cnc.parameters": "epochs"})
        mlflow.log_params({"lr": 0.01, "epochs": 3, "amount": 0.5})
        mlflow.log_metrics({"Accuracy": 0.85, "Size": 5.0})
        mlflow.log_artifact(_state_file(2, prune=0.5))
    ids["prune50-ft"] = ft.info.run_id
    with mlflow.start_run(run_name="exported") as exported:  # outputs only, base by run id
        mlflow.set_tags({"cnc.base": ids["prune50"], "cnc.operation": "export"})
        mlflow.log_metric("Accuracy", 0.4)
        folder = Path(tempfile.mkdtemp())
        np.savez(folder / "outputs.npz", probs=np.tile([0.1, 0.1, 0.8], (len(TinyTask().y), 1)))
        mlflow.log_artifact(str(folder / "outputs.npz"))
    ids["exported"] = exported.info.run_id
    for lr in (0.2, 0.3):
        with mlflow.start_run(run_name="sweep"):
            mlflow.set_tags({"cnc.base": "base", "cnc.operation": "retrain"})
            mlflow.log_params({"lr": lr, "epochs": 5})
            mlflow.log_metric("Accuracy", 0.7 + lr / 10)
    return ids


def log_run(tracking_uri: str, name: str, tags: dict, metrics: dict) -> str:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(tags)
        mlflow.log_metrics(metrics)
    return run.info.run_id
