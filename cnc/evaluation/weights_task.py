"""A task with no evaluation data: its models' weights are summarized for the Layers tab (float
checkpoints from their safetensors, quantized ones through their reader, each against its tree's
root), and nothing is run. A folder of variants without a prompt file opens with it."""
from __future__ import annotations

from typing import Any

import numpy as np

KIND = "weights"


class WeightsTask:
    """Task protocol stand-in for Layers-only experiments (`kind = "weights"`)."""

    kind = KIND
    class_names: list[str] = []

    def load_model(self, checkpoint: str) -> Any:  # never called: weights are read tensor by tensor
        raise NotImplementedError("a weights-only task loads no model")

    def attributes(self) -> dict[str, list[str]]:
        return {}

    def render_instance(self, index: int) -> dict:
        return {"kind": "text", "text": ""}


class NoInstances:
    """The evaluation set of a weights-only task: none."""

    fingerprint = "weights-only"

    def __len__(self) -> int:
        return 0

    def task_data(self, attributes: dict[str, list[str]], sample_index: np.ndarray) -> dict:
        return {"kind": KIND, "attributes": {}, "sample_index": sample_index}


def is_weights_only(task: Any) -> bool:
    return getattr(task, "kind", None) == KIND
