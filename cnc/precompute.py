"""Fill the summary store: evaluate each model once, resumably, with a progress bar.

Summarizing one model (`summarize_model`) is a pure, picklable function of the task spec, the
model entry and the shared bin edges; it returns the summaries and writes nothing, so it can run
in another process or on another machine. `precompute` decides what is missing and writes what
`summarize_model` returns. A failure on one model is recorded (and shown in the UI) and the rest
go on.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnc import evaldata
from cnc.config import Config
from cnc.store import SummaryStore, spec_hash, task_hash
from cnc.task import Task, TaskError, make_task


@dataclass
class PrecomputeReport:
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to evaluate models of a task (picklable, no live objects)."""

    entry: str
    options: dict
    search_path: str | None = None
    activation_sample: int = 256
    loading: evaldata.Loading = evaldata.Loading()
    device: str = "auto"

    @property
    def spec_hash(self) -> str:
        return spec_hash(self.entry, self.options, self.activation_sample)

    @classmethod
    def from_config(cls, config: Config, device: str | None = None) -> "TaskSpec | None":
        t = config.task
        if t is None:
            return None
        return cls(entry=t.entry, options=dict(t.options), activation_sample=t.activation_sample,
                   search_path=str(config.folder) if config.folder else None,
                   loading=evaldata.Loading(t.batch_size, t.num_workers), device=device or t.device)


@dataclass(frozen=True)
class ModelEntry:
    """A model to summarize: a checkpoint for the task to load, or an .npz of outputs."""

    id: str
    checkpoint: str | None = None
    outputs: str | None = None


# -- the task, once per process

_TASKS: dict[str, tuple[Task, np.ndarray]] = {}
_TASKS_LOCK = threading.Lock()


def task_and_labels(spec: TaskSpec) -> tuple[Task, np.ndarray]:
    """The task object and its evaluation labels, built once per process and spec."""
    with _TASKS_LOCK:
        if spec.spec_hash not in _TASKS:
            task = make_task(spec.entry, spec.options, search_path=spec.search_path)
            _TASKS.clear()  # one task at a time: a changed config replaces it
            _TASKS[spec.spec_hash] = (task, evaldata.eval_labels(task, spec.loading))
        return _TASKS[spec.spec_hash]


def forget_task() -> None:
    """Drop the per-process task (a dataset may have changed behind the same entry point)."""
    with _TASKS_LOCK:
        _TASKS.clear()


def sample_indices(n: int, size: int) -> np.ndarray:
    """The fixed activation sample: the same instances for every model of a task."""
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, size=min(n, size), replace=False)).astype(np.int64)


def summarize_model(spec: TaskSpec, entry: ModelEntry, edges: dict) -> dict[str, Any]:
    """Evaluate one model: {"outputs", "probs"} and, for checkpoints, {"params", "activations"};
    "edges" holds the shared bin edges with any this model had to create (the first model of a
    task creates them for every later one). Writes nothing."""
    from cnc import inspect

    task, labels = task_and_labels(spec)
    if entry.checkpoint is None:
        outputs, probs = load_outputs_npz(entry.outputs, labels)
        return {"outputs": outputs, "probs": probs, "edges": edges}
    edges = {kind: dict(edges.get(kind, {})) for kind in ("params", "activations")}
    model = task.load_model(entry.checkpoint)
    device = inspect.resolve_device(spec.device)
    outputs, probs, acts = inspect.run_model(model, evaldata.iter_batches(task, spec.loading), labels,
                                             sample_indices(len(labels), spec.activation_sample), device)
    outputs.update(shape=probs.shape, scalars={})
    return {"outputs": outputs, "probs": probs,
            "params": inspect.summarize_all(inspect.module_parameters(model), edges["params"]),
            "activations": inspect.summarize_all(acts, edges["activations"]), "edges": edges}


def write_summaries(store: SummaryStore, th: str, ch: str, result: dict) -> None:
    """Store what summarize_model returned; the `done` marker comes last (resumable)."""
    store.put_probs(th, ch, result["probs"])
    for kind in ("params", "activations"):
        if kind in result:
            store.put(kind, th, ch, result[kind])
    store.put("outputs", th, ch, result["outputs"])
    store.mark_done(th, ch)


# -- what is missing

def config_spec(config: Config) -> str | None:
    return None if config.task is None else spec_hash(config.task.entry, config.task.options,
                                                      config.task.activation_sample)


def config_task_hash(config: Config, store: SummaryStore) -> str | None:
    """The task hash of the evaluation set last precomputed for this config (None before that)."""
    spec = config_spec(config)
    return None if spec is None else store.get_taskref(spec)


def _kinds(model) -> tuple[str, ...]:
    return ("outputs", "probs", "params", "activations") if model.checkpoint else ("outputs", "probs")


def _with_sources(config: Config, store: SummaryStore):
    """(model, content hash or None when unreadable) for every model with a checkpoint or outputs,
    roots first (they set the shared edges)."""
    exp = config.experiment
    for m in sorted(exp.models.values(), key=lambda m: exp.depth(m.id)):
        source = m.checkpoint or m.outputs
        if source is not None:
            yield m, store.file_hash(source)


def pending_models(config: Config, store: SummaryStore) -> list[str]:
    """Ids of models whose summaries are not yet (successfully) cached."""
    if config.task is None:
        return []
    th = config_task_hash(config, store)
    return [m.id for m, ch in _with_sources(config, store)
            if ch is None or th is None
            or not store.is_complete(th, ch, _kinds(m)) and store.get_error(th, ch) is None]


def prepare_task(spec: TaskSpec, store: SummaryStore) -> str:
    """Make the task, fingerprint its evaluation set and store the task-level data once (labels,
    class names, attributes, the activation sample): returns the task hash."""
    forget_task()  # re-read the data: it may have changed since this process last looked
    task, labels = task_and_labels(spec)
    th = task_hash(spec.spec_hash, evaldata.fingerprint(labels))
    if store.get_task(th) is None:
        n = len(labels)
        attrs = {k: [str(v) for v in vals] for k, vals in (task.attributes() or {}).items()}
        for k, vals in attrs.items():
            if len(vals) != n:
                raise TaskError(f"task attribute '{k}' has {len(vals)} values for {n} instances")
        store.put_task(th, {"labels": labels, "class_names": [str(c) for c in task.class_names],
                            "attributes": attrs, "sample_index": sample_indices(n, spec.activation_sample)})
    store.put_taskref(spec.spec_hash, th)
    return th


def precompute(config: Config, store: SummaryStore, progress: bool = True,
               only: list[str] | None = None, on_model: Callable[[int, int, str], None] | None = None,
               device: str | None = None) -> PrecomputeReport:
    """Summarize every model that has a checkpoint (or precomputed outputs) and is not cached."""
    from tqdm import tqdm

    report = PrecomputeReport()
    spec = TaskSpec.from_config(config, device)
    if spec is None:
        return report
    th = prepare_task(spec, store)
    todo = []
    for m, ch in _with_sources(config, store):
        if only is not None and m.id not in only:
            continue
        if ch is None:
            report.failed[m.id] = f"file not found or unreadable: {m.checkpoint or m.outputs}"
        elif store.is_complete(th, ch, _kinds(m)):
            report.skipped.append(m.id)
        else:
            todo.append((m, ch))
    if not todo:
        return report
    edges = store.get_edges(th) or {"params": {}, "activations": {}}
    bar = tqdm(todo, desc="precompute", unit="model", file=sys.stderr, disable=not progress)
    for i, (m, ch) in enumerate(bar):
        bar.set_postfix_str(m.id)
        if on_model is not None:
            on_model(i, len(todo), m.id)
        entry = ModelEntry(m.id, str(m.checkpoint) if m.checkpoint else None, str(m.outputs) if m.outputs else None)
        try:
            result = summarize_model(spec, entry, edges)
            edges = result["edges"]
            store.put_edges(th, edges)
            write_summaries(store, th, ch, result)
            report.computed.append(m.id)
        except Exception as exc:  # user models fail in arbitrary ways; keep going
            msg = f"{type(exc).__name__}: {exc}"
            store.put_error(th, ch, msg)
            report.failed[m.id] = msg
            bar.write(f"[cnc] model '{m.id}' failed: {msg}", file=sys.stderr)
    return report


def load_outputs_npz(path: str | Path, labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """Precomputed outputs for a model evaluated elsewhere: an .npz with `probs` [N, C]
    (and optionally `preds` [N] and any extra per-instance scalar arrays)."""
    n = len(labels)
    with np.load(path, allow_pickle=False) as data:
        if "probs" not in data:
            raise TaskError(f"{path}: .npz needs an array 'probs' of shape [instances, classes]")
        probs = np.asarray(data["probs"], dtype=np.float32)
        if probs.ndim != 2 or probs.shape[0] != n:
            raise TaskError(f"{path}: 'probs' has shape {probs.shape}; expected [{n}, classes]")
        preds = np.asarray(data["preds"], dtype=np.int64) if "preds" in data else probs.argmax(1)
        scalars = {k: np.asarray(data[k], dtype=np.float32) for k in data.files
                   if k not in ("probs", "preds") and data[k].shape == (n,)}
    rows = np.arange(n)
    outputs = {"shape": probs.shape, "preds": preds.astype(np.int32), "scalars": scalars,
               "p_true": probs[rows, np.clip(labels, 0, probs.shape[1] - 1)],
               "p_pred": probs[rows, np.clip(preds, 0, probs.shape[1] - 1)]}
    return outputs, probs.astype(np.float16)
