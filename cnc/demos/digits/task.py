"""The demo's task (`cnc.demos.digits.task:DigitsTask`): loads demo checkpoints and serves the test split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnc.demos.digits.data import CLASS_NAMES, DigitsSplit, load_splits
from cnc.demos.digits.model import build_model
from cnc.toolkit.compress import load_checkpoint


class DigitsTask:
    """Task protocol implementation for the digits demo; `seed` must match the build's seed."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.class_names: list[str] = list(CLASS_NAMES)

    @property
    def _test(self) -> DigitsSplit:
        return load_splits(self.seed)[1]

    def load_model(self, checkpoint: str | Path) -> torch.nn.Module:
        """Float or int8 checkpoint -> DigitsCNN in eval mode (loaded with weights_only=True)."""
        return load_checkpoint(build_model(), checkpoint).eval()

    def eval_data(self) -> tuple[torch.Tensor, np.ndarray]:
        test = self._test
        return test.x, test.y.numpy()

    def attributes(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self._test.attributes.items()}

    def render_instance(self, index: int) -> dict:
        pixels = self._test.x[index, 0]
        return {"kind": "image", "pixels": [[float(v) for v in row] for row in pixels.tolist()]}
