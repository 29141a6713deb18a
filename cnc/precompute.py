"""Fill the summary store: evaluate each model once, resumably, with a progress bar.

A failure on one model is recorded (and shown in the UI) and the rest go on.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cnc.config import Config
from cnc.store import SummaryStore, task_hash
from cnc.task import Task, TaskError, make_task


@dataclass
class PrecomputeReport:
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def config_task_hash(config: Config) -> str | None:
    if config.task is None:
        return None
    t = config.task
    return task_hash(t.entry, t.options, t.activation_sample)


def _models_in_order(config: Config) -> list:
    exp = config.experiment
    return sorted(exp.models.values(), key=lambda m: exp.depth(m.id))  # roots set shared edges


def _kinds(model) -> tuple[str, ...]:
    return ("outputs", "params", "activations") if model.checkpoint else ("outputs",)


def _with_sources(config: Config, store: SummaryStore):
    """(model, content hash or None when unreadable) for every model with a checkpoint or outputs,
    roots first."""
    for m in _models_in_order(config):
        source = m.checkpoint or m.outputs
        if source is not None:
            yield m, store.file_hash(source)


def pending_models(config: Config, store: SummaryStore) -> list[str]:
    """Ids of models whose summaries are not yet (successfully) cached."""
    th = config_task_hash(config)
    if th is None:
        return []
    return [m.id for m, ch in _with_sources(config, store)
            if ch is None or not store.is_complete(th, ch, _kinds(m)) and store.get_error(th, ch) is None]


def precompute(config: Config, store: SummaryStore, progress: bool = True,
               only: list[str] | None = None, on_model: Callable[[int, int, str], None] | None = None,
               ) -> PrecomputeReport:
    """Summarize every model that has a checkpoint (or precomputed outputs) and is not cached."""
    from tqdm import tqdm

    report = PrecomputeReport()
    th = config_task_hash(config)
    if th is None:
        return report
    todo = []
    for m, ch in _with_sources(config, store):
        if only is not None and m.id not in only:
            continue
        if ch is None:
            report.failed[m.id] = f"file not found or unreadable: {m.checkpoint or m.outputs}"
            continue
        if store.is_complete(th, ch, _kinds(m)):
            report.skipped.append(m.id)
        else:
            todo.append((m, ch))
    if not todo:
        return report

    task = make_task(config.task.entry, config.task.options, search_path=config.folder)
    inputs, labels = task.eval_data()
    _ensure_task_data(store, th, task, inputs, labels, config.task.activation_sample)
    sample_index = store.get_task(th)["sample_index"]
    edges = store.get_edges(th) or {"params": {}, "activations": {}}
    bar = tqdm(todo, desc="precompute", unit="model", file=sys.stderr, disable=not progress)
    for i, (m, ch) in enumerate(bar):
        bar.set_postfix_str(m.id)
        if on_model is not None:
            on_model(i, len(todo), m.id)
        try:
            if m.checkpoint is not None:
                _summarize_checkpoint(store, th, ch, task, m.checkpoint, inputs, sample_index, edges)
            else:
                store.put("outputs", th, ch, load_outputs_npz(m.outputs, len(labels)))
            store.mark_done(th, ch)
            report.computed.append(m.id)
        except Exception as exc:  # user models fail in arbitrary ways; keep going
            msg = f"{type(exc).__name__}: {exc}"
            store.put_error(th, ch, msg)
            report.failed[m.id] = msg
            bar.write(f"[cnc] model '{m.id}' failed: {msg}", file=sys.stderr)
    store.put_edges(th, edges)
    return report


def _summarize_checkpoint(store: SummaryStore, th: str, ch: str, task: Task, checkpoint: str,
                          inputs, sample_index: np.ndarray, edges: dict) -> None:
    from cnc import inspect

    model = task.load_model(checkpoint)
    probs = inspect.evaluate(model, inputs)
    if probs.ndim != 2 or probs.shape[0] != len(inputs):
        raise TaskError(f"model outputs have shape {probs.shape}; expected [{len(inputs)}, classes]")
    store.put("outputs", th, ch, {"probs": probs, "preds": probs.argmax(1).astype(np.int64), "scalars": {}})
    store.put("params", th, ch, inspect.summarize_all(inspect.module_parameters(model), edges["params"]))
    acts = inspect.module_activations(model, inputs[sample_index])
    store.put("activations", th, ch, inspect.summarize_all(acts, edges["activations"]))
    store.put_edges(th, edges)


def _ensure_task_data(store: SummaryStore, th: str, task: Task, inputs, labels, n_sample: int) -> None:
    if store.get_task(th) is not None:
        return
    n = len(labels)
    rng = np.random.default_rng(0)
    sample_index = np.sort(rng.choice(n, size=min(n, n_sample), replace=False))
    attrs = {k: [str(v) for v in vals] for k, vals in (task.attributes() or {}).items()}
    for k, vals in attrs.items():
        if len(vals) != n:
            raise TaskError(f"task attribute '{k}' has {len(vals)} values for {n} instances")
    store.put_instances(th, [task.render_instance(i) for i in range(n)])
    store.put_task(th, {
        "labels": np.asarray(labels, dtype=np.int64),
        "class_names": [str(c) for c in task.class_names],
        "attributes": attrs,
        "sample_index": sample_index.astype(np.int64),
    })


def load_outputs_npz(path: str | Path, n: int) -> dict:
    """Precomputed outputs for a model evaluated elsewhere: an .npz with `probs` [N, C]
    (and optionally `preds` [N] and any extra per-instance scalar arrays)."""
    with np.load(path, allow_pickle=False) as data:
        if "probs" not in data:
            raise TaskError(f"{path}: .npz needs an array 'probs' of shape [instances, classes]")
        probs = np.asarray(data["probs"], dtype=np.float32)
        if probs.ndim != 2 or probs.shape[0] != n:
            raise TaskError(f"{path}: 'probs' has shape {probs.shape}; expected [{n}, classes]")
        preds = np.asarray(data["preds"], dtype=np.int64) if "preds" in data else probs.argmax(1)
        scalars = {k: np.asarray(data[k], dtype=np.float32) for k in data.files
                   if k not in ("probs", "preds") and data[k].shape == (n,)}
    return {"probs": probs, "preds": preds, "scalars": scalars}
