"""Tasks that hand over their data the real-scale ways: a torch Dataset, or their own batches.

They reuse the tiny MLP of tests.tiny_task; every item access and render is counted, so tests can
prove what a view loads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.tiny_task import TinyTask

CALLS: dict[str, list[int]] = {"getitem": [], "render": []}


class Points(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y
        self.targets = y.tolist()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        CALLS["getitem"].append(int(i))
        return self.x[i], self.y[i]


class DatasetTask(TinyTask):
    """`dataset()` instead of eval_data(); labels from the dataset's `targets`."""

    eval_data = None

    def __init__(self, n: int = 40, labels_file: str | None = None):
        super().__init__(n)
        if labels_file:  # the data behind the same entry point and options can change
            self.y = torch.tensor([int(v) for v in Path(labels_file).read_text().split()])

    def dataset(self) -> torch.utils.data.Dataset:
        return Points(self.x, self.y)

    def render_instance(self, index: int) -> dict:
        CALLS["render"].append(int(index))
        return super().render_instance(index)


class BatchesTask(TinyTask):
    """`batches()` (its own DataLoader, with the config's batch size and workers) plus `labels()`."""

    eval_data = None

    def __init__(self, n: int = 40, shuffle: bool = False):
        super().__init__(n)
        self.shuffle = shuffle

    def labels(self) -> np.ndarray:
        return self.y.numpy()

    def batches(self, batch_size: int, num_workers: int):
        return torch.utils.data.DataLoader(Points(self.x, self.y), batch_size=batch_size, num_workers=num_workers,
                                           shuffle=self.shuffle, generator=torch.Generator().manual_seed(1))


class ReviewsTask(TinyTask):
    """A text task: each instance is a short review (inputs are still the tiny features)."""

    WORDS = ["great", "awful", "fine", "slow", "crisp", "noisy"]

    def render_instance(self, index: int) -> dict:
        words = [self.WORDS[(index + k) % len(self.WORDS)] for k in range(3)]
        return {"kind": "text", "text": f"Review {index}: " + " ".join(words) + " <b>not bold</b>"}
