"""The worked example runs end to end and its models are summarized for the app."""
from cnc.app.cli import load
from tests.example_check import overview_shows, run_example


def test_wine_example_end_to_end(tmp_path, serve, chrome):
    run = tmp_path / "wine"
    run_example("examples/wine/train.py", run)
    ctx = load(str(run), str(tmp_path / "cache"), progress=False)
    assert ctx.title == "Wine MLP compression" and len(ctx.experiment.models) == 10
    assert all(ctx.status(m) == "ready" for m in ctx.experiment.models)
    assert ctx.task_data()["attributes"]["alcohol"][0] in ("low", "high")
    assert ctx.params("prune80")["0"]["zeros"] > 0.5 * ctx.params("prune80")["0"]["count"]

    # ...and its models show up in the app.
    overview_shows(chrome, serve(ctx), 10, "Wine MLP compression", "example_wine_overview")
