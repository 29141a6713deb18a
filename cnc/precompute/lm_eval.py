"""Precompute for models evaluated by lm-evaluation-harness: no model is loaded and nothing is
re-evaluated; their samples files become the stored "task" and "outputs" dicts (reading JSON lines:
seconds even for thousands of documents), keyed like every other summary so views find them."""
from __future__ import annotations

import json

from cnc.evaluation.keys import combined_hash, lm_eval_spec, task_hash
from cnc.evaluation.lm_eval_outputs import align
from cnc.experiment.config import Config
from cnc.experiment.errors import ExperimentError
from cnc.experiment.forest import Model
from cnc.experiment.lm_eval import read_run
from cnc.precompute.results import PrecomputeReport
from cnc.precompute.store import SummaryStore


def harness_hash(store: SummaryStore, model: Model) -> str | None:
    """Content hash of a model's harness results and samples files (None when one is unreadable).
    The samples count: a run folder copied from another run has the same results file, and
    without its samples in the hash its outputs and errors were stored under the other run's key,
    so a model whose samples could not be read showed the other run's answers."""
    hashes = [store.file_hash(f) for f in [*model.lm_eval_files, *model.lm_eval_samples]]
    return None if not model.lm_eval_files or None in hashes else combined_hash(hashes)


def expected_task_hash(config: Config, store: SummaryStore) -> tuple[str | None, dict[str, str | None]]:
    """The task hash these runs must be stored under, and each model's hash."""
    spec = lm_eval_spec(config)
    hashes = {m.id: harness_hash(store, m) for m in config.experiment.models.values() if m.lm_eval_files}
    if spec is None:
        return None, hashes
    return task_hash(spec, json.dumps(sorted((k, v or "") for k, v in hashes.items()))), hashes


def lm_eval_pending(config: Config, store: SummaryStore) -> list[str]:
    """Harness models whose stored outputs are missing or stale."""
    th, hashes = expected_task_hash(config, store)
    if th is None:
        return []
    stale = store.get_taskref(lm_eval_spec(config)) != th
    return [mid for mid, ch in hashes.items()
            if ch is None or stale or not store.is_complete(th, ch, ("outputs",)) and store.get_error(th, ch) is None]


def precompute_lm_eval(config: Config, store: SummaryStore, report: PrecomputeReport) -> PrecomputeReport:
    """Align every harness model's documents and store the task and each model's outputs (all
    models together: the instance list is the union of their documents)."""
    exp = config.experiment
    th, hashes = expected_task_hash(config, store)
    if th is None:
        return report
    if not lm_eval_pending(config, store):
        report.skipped.extend(hashes)
        return report
    runs = {}
    for m in exp.models.values():
        if not m.lm_eval_files:
            continue
        if hashes[m.id] is None:
            report.failed[m.id] = f"harness results file missing or unreadable: {', '.join(m.lm_eval_files)}"
            continue
        try:
            runs[m.id] = read_run(m.lm_eval, None, f"{exp.source}: model '{m.id}' (lm_eval)")
        except ExperimentError as exc:
            report.failed[m.id] = str(exc)
    aligned = align(runs, exp.lm_eval_attributes)
    for mid, msg in aligned.errors.items():
        report.failed[mid] = msg
    for mid, msg in report.failed.items():
        if hashes.get(mid):
            store.put_error(th, hashes[mid], msg)
    store.put_task(th, aligned.task)
    for mid, outputs in aligned.outputs.items():
        store.put("outputs", th, hashes[mid], outputs)
        store.mark_done(th, hashes[mid])
        report.computed.append(mid)
    store.put_taskref(lm_eval_spec(config), th)
    return report
