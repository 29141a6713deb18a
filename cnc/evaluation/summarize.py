"""Summarize one model: a pure, picklable function of the task spec, the model entry and the shared
bin edges (`summarize_model`), which returns the summaries and writes nothing, so it can run in
this process, another one, or on a cluster worker (cnc.precompute.cluster); and `Results`, where the cache
owner writes what came back."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnc.analysis.output_checks import probability_problem
from cnc.evaluation import evaldata, weights_task
from cnc.evaluation.keys import generation_settings, spec_hash
from cnc.evaluation.task import Task, make_task
from cnc.experiment.config import Config
from cnc.experiment.errors import ModelNotRunnable, TaskError


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to evaluate models of a task (picklable, no live objects)."""

    entry: str
    options: dict
    search_path: str | None = None
    activation_sample: int = 256
    loading: evaldata.Loading = evaldata.Loading()
    device: str = "auto"
    generation: dict | None = None  # the config's task.generation (generative tasks)

    @property
    def spec_hash(self) -> str:
        return spec_hash(self.entry, self.options, self.activation_sample, self.generation)

    @classmethod
    def from_config(cls, config: Config, device: str | None = None) -> "TaskSpec | None":
        t = config.task
        if t is None:
            return None
        return cls(entry=t.entry, options=dict(t.options), activation_sample=t.activation_sample,
                   search_path=str(config.folder) if config.folder else None,
                   loading=evaldata.Loading(t.batch_size, t.num_workers), device=device or t.device,
                   generation=generation_settings(t))


@dataclass(frozen=True)
class ModelEntry:
    """A model to summarize: a checkpoint for the task to load, or an .npz of outputs (a JSON of
    texts for a generative task); `root` is the root of its tree (the KL reference of generative models)."""

    id: str
    checkpoint: str | None = None
    outputs: str | None = None
    root: str | None = None
    reference: str | None = None  # the root's checkpoint: quantization error is measured against it


# -- the task, once per process

_TASKS: dict[str, tuple[Task, Any]] = {}
_TASKS_LOCK = threading.Lock()


def task_and_labels(spec: TaskSpec) -> tuple[Task, Any]:
    """The task object and its evaluation set, built once per process and spec: the labels
    (int64[N]) of a classifier, the prompts and references (`generation.TextSet`) of a generative task."""
    with _TASKS_LOCK:
        if spec.spec_hash not in _TASKS:
            task = make_task(spec.entry, spec.options, search_path=spec.search_path)
            _TASKS.clear()  # one task at a time: a changed config replaces it
            if weights_task.is_weights_only(task):
                evalset = weights_task.NoInstances()
            elif evaldata.is_generative(task):
                from cnc.evaluation import generation

                evalset = generation.text_set(task, spec.loading, spec.generation)
            else:
                evalset = evaldata.eval_labels(task, spec.loading)
            _TASKS[spec.spec_hash] = (task, evalset)
        return _TASKS[spec.spec_hash]


def evalset_fingerprint(evalset: Any) -> str:
    """What the task hash covers of the evaluation set (labels, or prompts + references + settings)."""
    return evalset.fingerprint if hasattr(evalset, "fingerprint") else evaldata.fingerprint(evalset)


def forget_task() -> None:
    """Drop the per-process task (a dataset may have changed behind the same entry point)."""
    with _TASKS_LOCK:
        _TASKS.clear()


def sample_indices(n: int, size: int) -> np.ndarray:
    """The fixed activation sample: the same instances for every model of a task."""
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, size=min(n, size), replace=False)).astype(np.int64)


def summarize_model(spec: TaskSpec, entry: ModelEntry, edges: dict, reference: dict | None = None,
                    probs_buffer: np.ndarray | None = None) -> dict[str, Any]:
    """Evaluate one model: {"outputs", "probs"} and, for checkpoints, {"params", "activations"};
    "edges" holds the shared bin edges with any this model had to create (the first model of a
    task creates them for every later one). A generative model has no "probs"; `reference` is
    the stored top-k of its root, and a root returns its own as "topk". Writes nothing;
    `probs_buffer` (a previous result's "probs", already stored) is filled again if it fits."""
    from cnc.evaluation import inspection

    task, labels = task_and_labels(spec)
    if weights_task.is_weights_only(task):
        if entry.checkpoint is None:
            raise TaskError(f"model '{entry.id}': Layers needs a checkpoint (weights), it has outputs only.")
        from cnc.evaluation.quantized.weights import summarize_weights

        edges = {kind: dict(edges.get(kind, {})) for kind in ("params", "activations")}
        return {"params": summarize_weights(entry.checkpoint, edges["params"], entry.reference), "edges": edges}
    if evaldata.is_generative(task):
        return _summarize_generative(spec, task, labels, entry, edges, reference)
    if entry.checkpoint is None:
        outputs, probs = load_outputs_npz(entry.outputs, labels)
        return {"outputs": _flagged(outputs, probs, labels), "probs": probs, "edges": edges}
    edges = {kind: dict(edges.get(kind, {})) for kind in ("params", "activations")}
    model = task.load_model(entry.checkpoint)
    device = inspection.resolve_device(spec.device)
    sample = sample_indices(len(labels), spec.activation_sample)
    acts = inspection.ActivationSummaries(len(sample), edges["activations"])  # streamed once bins are known
    outputs, probs, _ = inspection.run_model(model, evaldata.iter_batches(task, spec.loading), labels, sample,
                                             device, acts, probs_buffer)
    outputs.update(shape=probs.shape, scalars={})
    return {"outputs": _flagged(outputs, probs, labels), "probs": probs,
            "params": inspection.summarize_all(inspection.module_parameters(model), edges["params"]),
            "activations": acts.finish(), "edges": edges}


def _flagged(outputs: dict, probs: np.ndarray, labels: np.ndarray) -> dict:
    """Outputs that cannot be right (NaN, infinite) carry why, for a "suspect" status in the app,
    and the evaluated accuracy, which the app compares with the one the model's file states."""
    problem = probability_problem(probs)
    accuracy = float(np.mean(np.asarray(outputs["preds"]) == labels)) if len(labels) else None
    return {**outputs, "accuracy": accuracy, **({"suspect": problem} if problem else {})}


def _summarize_generative(spec: TaskSpec, task: Task, data: Any, entry: ModelEntry, edges: dict,
                          reference: dict | None) -> dict[str, Any]:
    from cnc.evaluation import generation, inspection
    from cnc.evaluation.llama_cpp_backend import LlamaCppModel

    if entry.checkpoint is None:
        return {"outputs": generation.outputs_file(entry.outputs, data), "edges": edges}
    edges = {kind: dict(edges.get(kind, {})) for kind in ("params", "activations")}
    try:
        model = task.load_model(entry.checkpoint)
    except ModelNotRunnable as exc:
        return _weights_only(entry, edges, exc)
    captured: dict = {}
    torch_model = not isinstance(model, LlamaCppModel)  # llama.cpp's kernels: no modules to hook
    sample = sample_indices(len(data), spec.activation_sample) if torch_model else np.zeros(0, np.int64)
    try:
        outputs, topk = generation.evaluate(
            task, model, data, spec.loading.batch_size, inspection.resolve_device(spec.device), entry.id, entry.root,
            reference, sample, lambda: inspection.leaf_hooks(model, captured))
    finally:
        if not torch_model:
            model.close()
    if getattr(model, "cnc_runtime", None):  # which kernels ran (GGUF): shown in Behaviors
        outputs["runtime"] = model.cnc_runtime
    acts = {name: (kind, np.concatenate(parts)) for name, (kind, parts) in captured.items()}
    result = {"outputs": outputs, "edges": edges, "params": _params(model, entry, edges["params"]),
              "activations": inspection.summarize_all(acts, edges["activations"])}
    if topk is not None:
        result["topk"] = topk
    return result


def _weights_only(entry: ModelEntry, edges: dict, why: ModelNotRunnable) -> dict[str, Any]:
    """A quantized model the task cannot run here: its Layers summaries from its files (storage
    types, error against the root), no outputs, and the reason as the model's notice."""
    from cnc.evaluation.quantized.weights import is_quantized, summarize_weights

    if not is_quantized(entry.checkpoint):
        raise why
    return {"params": summarize_weights(entry.checkpoint, edges["params"], entry.reference), "edges": edges,
            "notice": str(why)}


def _params(model: Any, entry: ModelEntry, edges: dict) -> dict:
    """Layer summaries: a quantized checkpoint's from its reader (storage types, error against the
    root), any other from the loaded model's parameters."""
    from cnc.evaluation import inspection
    from cnc.evaluation.quantized.weights import is_quantized, summarize_weights

    if is_quantized(entry.checkpoint):
        return summarize_weights(entry.checkpoint, edges, entry.reference)
    return inspection.summarize_all(inspection.module_parameters(model), edges)


def model_entry(m, root: str | None = None, exp: Any = None) -> ModelEntry:
    """`exp` (the experiment) names the root whose checkpoint is the quantization-error reference."""
    reference = None
    if exp is not None and m.checkpoint:
        first = exp.models[exp.path_to_root(m.id)[0]]
        reference = str(first.checkpoint) if first.id != m.id and first.checkpoint else None
    return ModelEntry(m.id, str(m.checkpoint) if m.checkpoint else None, str(m.outputs) if m.outputs else None, root,
                      reference)


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
