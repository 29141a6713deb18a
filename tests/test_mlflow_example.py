"""The MLflow example runs end to end, and the Overview shows its runs in the browser."""
import pytest

from tests.example_check import overview_shows, run_example

pytest.importorskip("mlflow")


def test_mlflow_example_end_to_end(tmp_path, serve, chrome):
    from cnc.app.cli import load

    out = tmp_path / "mlflow-wine"
    run_example("examples/mlflow/train.py", out)
    ctx = load(str(out / "config.yaml"), str(tmp_path / "cache"), progress=False)
    exp = ctx.experiment
    assert len(exp.models) == 10 and all(ctx.status(m) == "ready" for m in exp.models)
    assert exp.models["prune80-ft-int8"].base == "prune80-ft" and exp.models["prune80"].base == "base"
    assert exp.models["prune80"].operation.parameters == {"amount": 0.8}
    assert exp.metrics["Size"].unit == "KB" and exp.metrics["Latency"].higher_is_better is False
    assert ctx.params("prune80")["0"]["zeros"] > 0  # the MLflow state dict, loaded by the task
    overview_shows(chrome, serve(ctx), 10, "Wine MLP compression (MLflow)", "example_mlflow_overview")
