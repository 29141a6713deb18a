"""The one interface every quantized-format reader implements, and the registry of openers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class LayerStorage:
    """How one tensor is stored. `name` is the base model's parameter name (e.g.
    "model.layers.0.self_attn.q_proj.weight"), already mapped from the file's own naming;
    `storage` is the file's type name ("Q4_K", "F16", "int4 g128 sym", "float (ignored)")."""

    name: str
    storage: str
    bits_per_weight: float
    shape: tuple[int, ...]
    scheme: dict = field(default_factory=dict)  # format-specific: group_size, symmetric, ignored, ...


class QuantizedWeights(Protocol):
    """A quantized model's weights. `tensors()` yields each tensor's storage with a callable that
    dequantizes it to float32 (in the base's layout: converter permutations undone) only when called."""

    path: Path
    format: str  # "gguf", "compressed-tensors", "gptq", "awq"

    def describe(self) -> str:
        """The operation as a person names it: "GGUF Q4_K_M", "compressed-tensors W4A16, group 128"."""
        ...

    def tensors(self) -> Iterator[tuple[LayerStorage, Callable[[], np.ndarray]]]: ...


Opener = Callable[[Path], "QuantizedWeights | None"]
_OPENERS: list[tuple[str, Opener]] = []


def register(name: str, opener: Opener) -> None:
    """Add a format: `opener(path)` returns its reader, or None when the path is not in that format
    (and raises `cnc.experiment.errors.TaskError` naming the file when it is, but is damaged)."""
    _OPENERS[:] = [(n, o) for n, o in _OPENERS if n != name] + [(name, opener)]


def open_quantized(path: str | Path) -> QuantizedWeights | None:
    """The reader of the first registered format that recognises `path`, else None (float weights)."""
    for _name, opener in _OPENERS:
        found = opener(Path(path))
        if found is not None:
            return found
    return None
