"""The evaluation data path: a task's data as a stream of (inputs, labels) batches.

A task hands its evaluation set over in one of three ways (see cnc.evaluation.task.Task):
`eval_data()` (everything in memory, for small sets), `dataset()` (a torch Dataset of
(input, label) items, batched here through a DataLoader with the config's batch size and
workers), or `batches()` (an iterable of (inputs, labels) batches, e.g. the task's own
DataLoader). Inputs may be a tensor, a tuple/list of tensors (`model(*inputs)`) or a dict of
tensors (`model(**inputs)`, as text models take them). Nothing here holds the whole set at once.
"""
from __future__ import annotations

import hashlib
import inspect
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from cnc.experiment.errors import TaskError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Loading:
    """How precompute batches a task's data (config keys task.batch_size / task.num_workers)."""

    batch_size: int = 256
    num_workers: int = 0


def kind_of(task: Any) -> str:
    for kind in ("batches", "dataset", "eval_data"):
        if callable(getattr(task, kind, None)):
            return kind
    raise TaskError(f"task {type(task).__name__} has no eval_data(), dataset() or batches(); "
                    "implement one of them (see 'Task protocol' in the README).")


def iter_batches(task: Any, loading: Loading) -> Iterator[tuple[Any, np.ndarray]]:
    """(inputs, labels int64[B]) batches in evaluation order, CPU tensors as the task made them."""
    kind = kind_of(task)
    if kind == "eval_data":
        inputs, labels = task.eval_data()
        labels = np.asarray(labels, dtype=np.int64)
        for s in range(0, len(labels), loading.batch_size):
            yield take(inputs, slice(s, s + loading.batch_size)), labels[s:s + loading.batch_size]
        return
    if kind == "dataset":
        import torch

        source: Iterable = torch.utils.data.DataLoader(task.dataset(), batch_size=loading.batch_size,
                                                       num_workers=loading.num_workers, shuffle=False)
    else:
        accepted = inspect.signature(task.batches).parameters
        kwargs = {k: v for k, v in (("batch_size", loading.batch_size), ("num_workers", loading.num_workers))
                  if k in accepted}
        source = task.batches(**kwargs)
    for item in source:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TaskError(f"task {kind}() must yield (inputs, labels) pairs; got {type(item).__name__}")
        yield item[0], _labels(item[1])


def eval_labels(task: Any, loading: Loading) -> np.ndarray:
    """All labels, cheaply when the task can say them (`labels()`, `eval_data()`, a dataset's
    `targets`); otherwise one pass over the batches (documented cost)."""
    if callable(getattr(task, "labels", None)):
        return _labels(task.labels())
    kind = kind_of(task)
    if kind == "eval_data":
        return _labels(task.eval_data()[1])
    if kind == "dataset":
        targets = getattr(task.dataset(), "targets", None)
        if targets is not None:
            return _labels(targets)
    parts = [labels for _, labels in iter_batches(task, loading)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def fingerprint(labels: np.ndarray) -> str:
    """Identity of an evaluation set as the app sees it: instance count and every label."""
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    return hashlib.sha256(labels.tobytes() + str(labels.shape).encode()).hexdigest()[:16]


def _labels(values: Any) -> np.ndarray:
    if _is_tensor(values):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TaskError(f"labels must be a 1-D sequence of class indices; got shape {arr.shape}, dtype {arr.dtype}")
    return arr.astype(np.int64)


def take(inputs: Any, rows: Any) -> Any:
    """Rows of a batch (slice or index array), through tuples, lists and dicts of tensors."""
    if isinstance(inputs, dict):
        return {k: take(v, rows) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(take(v, rows) for v in inputs)
    if isinstance(rows, np.ndarray) and _is_tensor(inputs):
        import torch

        rows = torch.as_tensor(rows, device=inputs.device)
    return inputs[rows]


def _is_tensor(value: Any) -> bool:
    """A torch tensor, without importing torch: the server imports this module, and a
    metrics-only experiment never needs torch (it is most of the app's start-up import)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def to_device(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(v, device) for v in inputs)
    return inputs.to(device, non_blocking=True) if _is_tensor(inputs) else inputs


def call(model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    """Logits of a model for a batch; accepts HF-style outputs (`.logits`) and tuples."""
    if isinstance(inputs, dict):
        out = model(**inputs)
    elif isinstance(inputs, (tuple, list)):
        out = model(*inputs)
    else:
        out = model(inputs)
    if hasattr(out, "logits"):
        out = out.logits
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not _is_tensor(out):
        raise TaskError(f"model returned {type(out).__name__}; expected a tensor of logits [batch, classes]")
    return out


# -- generative tasks: prompts and reference answers (docs/generative.md)

def is_generative(task: Any) -> bool:
    return getattr(task, "kind", "classifier") == "generative"


def eval_texts(task: Any, loading: Loading) -> tuple[list[str], list[list[str]]]:
    """(prompts, references per prompt) of a generative task, in evaluation order. Strings are
    small, so the whole set is held; a single reference string counts as one reference."""
    kind = kind_of(task)
    if kind == "eval_data":
        got = task.eval_data()
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise TaskError("a generative task's eval_data() must return (prompts, references)")
        pairs: Iterable = zip(*got) if len(got[0]) == len(got[1]) else _mismatch(len(got[0]), len(got[1]))
    elif kind == "dataset":
        pairs = iter(task.dataset())
    else:
        accepted = inspect.signature(task.batches).parameters
        kwargs = {"batch_size": loading.batch_size} if "batch_size" in accepted else {}
        pairs = (pair for item in task.batches(**kwargs) for pair in _batch_pairs(item))
    prompts, references = [], []
    for i, item in enumerate(pairs):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TaskError(f"generative task {kind}(): instance {i} is not a (prompt, references) pair")
        prompt, refs = item
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not isinstance(prompt, str) or not all(isinstance(r, str) for r in refs):
            raise TaskError(f"generative task {kind}(): instance {i} needs a prompt string and reference strings; "
                            f"got {type(prompt).__name__} and {[type(r).__name__ for r in refs]}")
        prompts.append(prompt)
        references.append(refs)
    return prompts, references


def _mismatch(n_prompts: int, n_refs: int):
    raise TaskError(f"generative task eval_data(): {n_prompts} prompts but {n_refs} reference lists")


def _batch_pairs(item: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(item, (tuple, list)) or len(item) != 2 or len(item[0]) != len(item[1]):
        raise TaskError("a generative task's batches() must yield (prompts, references) of equal length")
    return zip(item[0], item[1])


def text_fingerprint(prompts: list[str], references: list[list[str]], extra: Any = None) -> str:
    """Identity of a generative evaluation set: every prompt, every reference, and `extra`
    (generation settings and formats, which change every output)."""
    import json

    blob = json.dumps([prompts, references, extra], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
