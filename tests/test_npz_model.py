"""A model that ships only precomputed outputs (.npz): Behaviors compares it, Layers explains."""
import json

import numpy as np

from cnc import Tracker
from cnc.app.cli import load
from cnc.ui import behaviors, layers
from tests.tiny_task import make_model


def test_npz_only_model_in_behaviors_and_layers(tmp_path):
    t = Tracker(tmp_path / "run", task="tests.tiny_task:TinyTask")
    t.log_model("base", metrics={"Acc": 0.9}, model=make_model())
    probs = np.tile([0.1, 0.1, 0.8], (40, 1))  # always predicts class "c"
    t.log_model("onnx", base="base", operation="export", outputs=probs)
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False)
    assert ctx.status("onnx") == "ready" and ctx.outputs("onnx")["preds"].tolist() == [2] * 40

    selection = {"models": ["base", "onnx"], "base": "base"}
    state, _ = behaviors.state_from_query(ctx, {}, [], selection["models"])
    grid, status = behaviors.render_table(ctx, selection["models"], state, version=0)
    status_text = json.dumps(status, default=str)
    assert "is left out" not in status_text and "no stored outputs" not in status_text
    assert "onnx" in json.dumps(grid, default=str)  # its column is there

    state = {"mode": "weights", "sort": "tree", "sortby": None, "scale": "sqrt", "open": None}
    body, _, _ = layers.update(ctx, selection, "layers", state, None, None)
    text = json.dumps(body, default=str)
    assert "precomputed outputs only" in text
