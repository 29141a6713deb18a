"""A tiny real task for fast precompute tests: a 2-layer MLP on 40 fixed random points."""
from __future__ import annotations

import re

import torch

from cnc.experiment.checkpoints import open_checkpoint


def make_model(wide: bool = False) -> torch.nn.Module:
    """`wide` adds a module ("4") the plain model lacks, as some compressions add layers."""
    layers = [torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)]
    return torch.nn.Sequential(*layers, *([torch.nn.Linear(3, 3)] if wide else []))


def save_checkpoint(path, seed: int = 0, prune: float = 0.0, wide: bool = False) -> None:
    torch.manual_seed(seed)
    model = make_model(wide)
    if prune:
        with torch.no_grad():
            w = model[0].weight
            w[w.abs() < w.abs().flatten().kthvalue(max(1, int(prune * w.numel()))).values] = 0
    torch.save(model.state_dict(), path)


class TinyTask:
    class_names = ["a", "b", "c"]

    def __init__(self, n: int = 40, fail_on: str | None = None, delay: float = 0.0, wide: str | None = None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 1).long()
        self.fail_on = fail_on
        self.delay = delay  # seconds per model load: lets tests interrupt a precompute mid-way
        self.wide = wide  # checkpoints whose name matches this regex hold the wide model

    def load_model(self, checkpoint: str) -> torch.nn.Module:
        if self.delay:
            import time

            time.sleep(self.delay)
        if self.fail_on and self.fail_on in str(checkpoint):
            raise RuntimeError("boom: user code failed")
        model = make_model(bool(self.wide and re.search(self.wide, str(checkpoint))))
        with open_checkpoint(checkpoint) as f:  # a path or an fsspec URL
            model.load_state_dict(torch.load(f, weights_only=True))
        return model.eval()

    def eval_data(self):
        return self.x, self.y.numpy()

    def attributes(self):
        return {"half": ["first" if i < len(self.y) // 2 else "second" for i in range(len(self.y))]}

    def render_instance(self, index: int) -> dict:
        return {"kind": "text", "text": ", ".join(f"{v:.2f}" for v in self.x[index].tolist())}
