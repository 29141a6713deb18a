"""The task protocol: how the app evaluates a user's models.

A config's `task.entry` names a `package.module:callable`; calling it with `task.options` returns
an object with this interface. The demo uses the same mechanism (`cnc.demos.digits.task:DigitsTask`).

Evaluation data comes one of three ways (the first the task has wins; cnc.evaluation.evaldata reads them):
- `batches(batch_size, num_workers)` -> iterable of (inputs, labels) batches, e.g. a DataLoader
  with shuffle=False (it may take neither, either or both keyword arguments);
- `dataset()` -> a torch Dataset of (input, label) items, batched through a DataLoader with the
  config's task.batch_size and task.num_workers;
- `eval_data()` -> (inputs, labels) all in memory, for small sets.
Inputs are a tensor, a tuple of tensors (`model(*inputs)`) or a dict (`model(**inputs)`); the
model returns logits (or an object with `.logits`). An optional `labels()` gives every label
without reading the inputs; without it (and without a dataset `targets`), precompute makes one
extra pass over the data to fingerprint the labels.

Generative tasks (models that write text) set `kind = "generative"` and implement
`GenerativeTask` below: the same three ways give (prompt, references) instances, and the task
says how its models `generate` and score a reference under teacher forcing (`reference_logits`).
docs/generative.md describes the protocol, what precompute stores and how outputs are scored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cnc.experiment.entry_points import load_entry_point
from cnc.experiment.errors import TaskError


@runtime_checkable
class Task(Protocol):
    class_names: list[str]

    def load_model(self, checkpoint: str) -> Any:
        """Build the torch.nn.Module for a checkpoint path or fsspec URL (`cnc.experiment.checkpoints.open_checkpoint`
        opens either; load it with weights_only=True)."""

    def eval_data(self) -> tuple[Any, np.ndarray]:
        """(inputs, labels): a deterministic evaluation set; inputs a tensor batchable by index.
        Or implement `dataset()` or `batches()` instead (see the module docstring)."""

    def attributes(self) -> dict[str, list[str]]:
        """Categorical attributes per evaluation instance, for subgroup rows (may be empty)."""

    def render_instance(self, index: int) -> dict:
        """One instance for display, called by the web server when a user opens it (memoized):
        {"kind": "image", "pixels": [H][W] grayscale or [H][W][3] RGB 0-255} or
        {"kind": "text", "text": str}."""


@runtime_checkable
class GenerativeTask(Protocol):
    """A task whose models generate text (`kind = "generative"`); docs/generative.md."""

    kind: str  # "generative"

    def load_model(self, checkpoint: str) -> Any:
        """As for classifiers: build the module, load with weights_only=True."""

    def eval_data(self) -> tuple[list[str], list[list[str]]]:
        """(prompts, references per prompt); or `dataset()` of (prompt, references) items, or
        `batches(batch_size)` of (prompts, references) lists. The first reference is teacher-forced."""

    def generate(self, model: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy continuations only (no prompt), batched on the model's device; precompute calls
        it under torch.inference_mode() and cuts each output at the first stop string."""

    def reference_logits(self, model: Any, prompts: list[str], references: list[str]) -> tuple[Any, Any, Any]:
        """Teacher-forced pass over prompt + reference: (logits float [B, T, V] at the positions
        that predict each reference token, targets long [B, T], mask bool [B, T], False on padding)."""

    def attributes(self) -> dict[str, list[str]]:
        """Categorical attributes per instance (subgroup rows); may be empty."""

    def render_instance(self, index: int) -> dict:
        """{"kind": "text", "text": prompt}."""

    # Optional: `generate_and_reference(model, prompts, references, max_new_tokens)` -> (texts,
    # (logits, targets, mask)): `generate` and `reference_logits` in one call, sharing the prompt's work.
    # Optional: `scorers = {name: "rouge_l" | "chrf" | callable(prediction, references) -> float}`
    # and `generation = {"max_new_tokens": 32, "stop": []}` (the config's task.generation overrides).


def make_task(entry: str, options: dict | None = None, search_path: str | Path | None = None) -> Task:
    factory = load_entry_point(entry, search_path)
    try:
        return factory(**(options or {}))
    except Exception as exc:
        raise TaskError(f"task entry point '{entry}' raised {type(exc).__name__}: {exc}") from exc
