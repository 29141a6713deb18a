"""The task for the wine example: how the app evaluates the logged models.

Copy this file for your own project: five small members, nothing else.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from cnc.toolkit import compress


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(13, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
        torch.nn.Linear(32, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
        torch.nn.Linear(32, 3),
    )


def wine_split(seed: int = 0):
    """Standardized features (train statistics), seeded stratified split."""
    data = load_wine()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3, random_state=seed,
                                              stratify=data.target)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-8
    as_t = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return (as_t(x_tr), torch.tensor(y_tr)), (as_t(x_te), torch.tensor(y_te)), x_te, data


class WineTask:
    def __init__(self, seed: int = 0):
        _, (self.x, self.y), self.raw, data = wine_split(seed)
        self.class_names = [str(c) for c in data.target_names]
        self.feature_names = list(data.feature_names)

    def load_model(self, checkpoint: str) -> torch.nn.Module:
        return compress.load_checkpoint(make_model(), checkpoint)  # torch.load(..., weights_only=True)

    def eval_data(self):
        return self.x, self.y.numpy()

    def attributes(self) -> dict[str, list[str]]:
        alcohol = self.raw[:, self.feature_names.index("alcohol")]
        return {"alcohol": ["high" if a >= np.median(alcohol) else "low" for a in alcohol]}

    def render_instance(self, index: int) -> dict:
        values = ", ".join(f"{n}={v:.2f}" for n, v in zip(self.feature_names, self.raw[index]))
        return {"kind": "text", "text": values}
