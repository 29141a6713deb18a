"""Fill the summary store: evaluate each model once, resumably, with a progress bar.

`precompute` decides what is missing and has each model summarized (cnc.evaluation.summarize: here, or on a
Dask cluster via cnc.precompute.cluster), then writes what comes back. A failure on one model is recorded
(and shown in the UI) and the rest go on.
"""
from __future__ import annotations

import sys
from typing import Callable

from cnc.evaluation import evaldata, weights_task
from cnc.evaluation.gguf_runtime import runtime_key
from cnc.evaluation.keys import combined_hash, config_spec, task_hash
from cnc.evaluation.summarize import (
    TaskSpec,
    evalset_fingerprint,
    forget_task,
    model_entry,
    sample_indices,
    summarize_model,
    task_and_labels,
)
from cnc.experiment.config import Config
from cnc.experiment.errors import TaskError
from cnc.precompute.lm_eval import harness_hash, lm_eval_pending, precompute_lm_eval
from cnc.precompute.results import PrecomputeReport, Results
from cnc.precompute.store import GENERATIVE_KINDS, SummaryStore

# -- what is missing

def config_task_hash(config: Config, store: SummaryStore) -> str | None:
    """The task hash of the evaluation set last precomputed for this config (None before that)."""
    spec = config_spec(config)
    return None if spec is None else store.get_taskref(spec)


def _kinds(model, generative: bool = False, weights: bool = False) -> tuple[str, ...]:
    if weights:  # a weights-only task (Layers alone): nothing is run
        return ("params",)
    if generative:  # a root keeps the top-k its descendants' KL is measured against
        return (GENERATIVE_KINDS + (("topk",) if model.base is None else ())) if model.checkpoint else ("outputs",)
    return ("outputs", "probs", "params", "activations") if model.checkpoint else ("outputs", "probs")


def model_hash(store: SummaryStore, model) -> str | None:
    """Content hash of what precompute reads for a model: its checkpoint, .npz or harness results;
    for a GGUF run by llama.cpp, with that runtime and its version (never served as transformers')."""
    if model.lm_eval_files and not (model.checkpoint or model.outputs):
        return harness_hash(store, model)
    digest = store.file_hash(model.source) if model.source else None
    runtime = runtime_key(model.checkpoint)
    return combined_hash([digest, runtime]) if digest and runtime else digest


def _task_kind(store: SummaryStore, th: str | None) -> str | None:
    task = None if th is None else store.get_task(th)
    return task.get("kind") if task else None


def _is_generative(store: SummaryStore, th: str | None) -> bool:
    return _task_kind(store, th) == "generative"


def _with_sources(config: Config, store: SummaryStore):
    """(model, content hash or None when unreadable) for every model with a checkpoint or outputs,
    roots first (they set the shared edges). A source that fetches model files on demand (MLflow)
    fetches them now."""
    if config.fetch_sources is not None:
        config.fetch_sources()
    exp = config.experiment
    for m in sorted(exp.models.values(), key=lambda m: exp.depth(m.id)):
        if m.checkpoint or m.outputs:
            yield m, model_hash(store, m)


def pending_models(config: Config, store: SummaryStore) -> list[str]:
    """Ids of models whose summaries are not yet (successfully) cached."""
    if config.task is None:
        return lm_eval_pending(config, store)
    th = config_task_hash(config, store)
    generative, weights = _is_generative(store, th), _task_kind(store, th) == "weights"
    return [m.id for m, ch in _with_sources(config, store)
            if ch is None or th is None
            or not store.is_complete(th, ch, _kinds(m, generative, weights)) and store.get_error(th, ch) is None]


def prepare_task(spec: TaskSpec, store: SummaryStore) -> str:
    """Make the task, fingerprint its evaluation set and store the task-level data once (labels,
    class names, attributes, the activation sample): returns the task hash."""
    forget_task()  # re-read the data: it may have changed since this process last looked
    task, labels = task_and_labels(spec)
    th = task_hash(spec.spec_hash, evalset_fingerprint(labels))
    if store.get_task(th) is None:
        n = len(labels)
        attrs = {k: [str(v) for v in vals] for k, vals in (task.attributes() or {}).items()}
        for k, vals in attrs.items():
            if len(vals) != n:
                raise TaskError(f"task attribute '{k}' has {len(vals)} values for {n} instances")
        sample = sample_indices(n, spec.activation_sample)
        if evaldata.is_generative(task) or weights_task.is_weights_only(task):
            store.put_task(th, labels.task_data(attrs, sample))
        else:
            store.put_task(th, {"labels": labels, "class_names": [str(c) for c in task.class_names],
                                "attributes": attrs, "sample_index": sample})
    store.put_taskref(spec.spec_hash, th)
    return th


def precompute(config: Config, store: SummaryStore, progress: bool = True,
               only: list[str] | None = None, on_model: Callable[[int, int, str], None] | None = None,
               device: str | None = None, scheduler: str | None = None,
               workers: int | None = None) -> PrecomputeReport:
    """Summarize every model that has a checkpoint (or precomputed outputs) and is not cached.
    With a Dask scheduler address or a worker count (arguments, else the config's `precompute`
    section) each model is one task on a Dask cluster (cnc.precompute.cluster)."""
    from tqdm import tqdm

    from cnc.precompute import cluster  # Dask itself is imported only when a cluster is used

    report = PrecomputeReport()
    spec = TaskSpec.from_config(config, device)
    if spec is None:  # no task: maybe models evaluated by lm-evaluation-harness
        return precompute_lm_eval(config, store, report)
    th = prepare_task(spec, store)
    generative, weights = _is_generative(store, th), _task_kind(store, th) == "weights"
    sources = list(_with_sources(config, store))
    wanted = None if only is None else set(only) | (_roots_of(config, only) if generative else set())
    todo = []
    for m, ch in sources:
        if wanted is not None and m.id not in wanted:
            continue
        if ch is None:
            report.failed[m.id] = f"file not found or unreadable: {m.checkpoint or m.outputs}"
        elif store.is_complete(th, ch, _kinds(m, generative, weights)):
            report.skipped.append(m.id)
        else:
            todo.append((m, ch))
    hashes, exp = dict((m.id, ch) for m, ch in sources), config.experiment
    # classifiers: MSE / KL against each model's root, stored as each model is (generative: top-k KL)
    roots = {} if generative or weights else {m.id: hashes.get(exp.path_to_root(m.id)[0]) for m, _ in sources}
    if not todo:  # a run killed after its last model may still owe divergences
        Results(store, th, report, None, None, 0, roots=roots).fill_divergences(hashes)
        return report
    edges = store.get_edges(th) or {"params": {}, "activations": {}}
    refs = References(config, store, th, {m.id: ch for m, ch in sources}) if generative else None
    bar = tqdm(total=len(todo), desc="precompute", unit="model", file=sys.stderr, disable=not progress)
    with bar:
        results = Results(store, th, report, bar, on_model, len(todo), roots=roots, experiment=exp)
        opts = cluster.options(config.precompute, scheduler, workers)
        if opts.enabled:
            cluster.run_on_cluster(opts, spec, results, todo, edges, refs)
            results.fill_divergences(hashes)
            return report
        buffer = None  # the last model's probabilities, once stored: the next model's are written into it
        for m, ch in todo:
            results.starting(m.id)
            try:
                entry = model_entry(m, refs.root(m.id) if refs else None, config.experiment)
                result = summarize_model(spec, entry, edges, refs.topk(entry) if refs else None, buffer)
            except Exception as exc:  # user models fail in arbitrary ways; keep going
                results.failed(m.id, ch, f"{type(exc).__name__}: {exc}")
                continue
            edges = result["edges"]
            results.finished(m.id, ch, result)
            buffer = result.get("probs")  # stored now; run_model reuses it only if shape and dtype fit
        results.fill_divergences(hashes)
    return report


def _roots_of(config: Config, ids: list[str]) -> set[str]:
    """Roots of the given models: their top-k must exist before the models' KL can (on demand)."""
    exp = config.experiment
    return {exp.path_to_root(i)[0] for i in ids if i in exp.models}


class References:
    """The KL reference of each generative model (the root of its tree) and its stored top-k.
    Roots are summarized first (sources come roots first), so their top-k is in the store by then."""

    def __init__(self, config: Config, store: SummaryStore, th: str, hashes: dict[str, str | None]):
        self.exp, self.store, self.th, self.hashes = config.experiment, store, th, hashes
        self._found: dict[str, dict] = {}

    def root(self, model_id: str) -> str:
        return self.exp.path_to_root(model_id)[0]

    def topk(self, entry) -> dict | None:
        """The stored top-k of `entry`'s root (None for a root itself, or a root without one)."""
        ch = self.hashes.get(entry.root)
        if entry.root == entry.id or ch is None:
            return None
        if entry.root not in self._found:
            found = self.store.get("topk", self.th, ch)
            if found is None:
                return None
            self._found[entry.root] = found
        return self._found[entry.root]


