"""The worked example runs end to end and its models are summarized for the app."""
import subprocess
import sys
from pathlib import Path

from cnc.cli import load

ROOT = Path(__file__).resolve().parent.parent


def test_wine_example_end_to_end(tmp_path):
    run = tmp_path / "wine"
    res = subprocess.run([sys.executable, "examples/wine/train.py", str(run)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    ctx = load(str(run), str(tmp_path / "cache"), progress=False)
    assert ctx.title == "Wine MLP compression" and len(ctx.experiment.models) == 10
    assert all(ctx.status(m) == "ready" for m in ctx.experiment.models)
    assert ctx.task_data()["attributes"]["alcohol"][0] in ("low", "high")
    assert ctx.params("prune80")["0"]["zeros"] > 0.5 * ctx.params("prune80")["0"]["count"]
