"""The content-hash keys of precomputed summaries, in one place: what the config says about a task
(`spec_hash`, no data read) and the task plus the evaluation set it ran on (`task_hash`). The
checkpoint's own hash comes from the store (`SummaryStore.file_hash`), which memoizes it."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from cnc.experiment.config import Config

SCHEMA = 3  # bump when a summary format changes: old entries are then simply not found


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def spec_hash(entry: str, options: dict, activation_sample: int, generation: dict | None = None) -> str:
    """What the config says about the task (no data read): the key of its `taskref`. A config's
    `task.generation` (generative tasks) joins only when given, so classifier keys never change."""
    value = {"entry": entry, "options": options, "sample": activation_sample, "schema": SCHEMA}
    return _digest(value if not generation else {**value, "generation": generation})


def generation_settings(task: Any) -> dict | None:
    """The keys a config's task.generation sets (None when it sets none)."""
    return (task.generation.model_dump(exclude_none=True) or None) if task.generation is not None else None


def task_hash(spec: str, labels_fingerprint: str) -> str:
    """The key of every summary: the task spec plus the evaluation set it was computed on."""
    return _digest({"spec": spec, "labels": labels_fingerprint})


def config_spec(config: Config) -> str | None:
    """The spec hash of a config's task, else of its lm-evaluation-harness runs (None: neither)."""
    t = config.task
    if t is not None:
        return spec_hash(t.entry, t.options, t.activation_sample, generation_settings(t))
    return lm_eval_spec(config)


def lm_eval_spec(config: Config) -> str | None:
    """What names the instances of an experiment of harness runs: each model's results files and the
    document fields that become subgroups (None when no model has `lm_eval`)."""
    exp = config.experiment
    runs = sorted((m.id, m.lm_eval_files) for m in exp.models.values() if m.lm_eval_files)
    return _digest({"lm_eval": runs, "attributes": exp.lm_eval_attributes, "schema": SCHEMA}) if runs else None


def combined_hash(hashes: list[str]) -> str:
    """One key for several content hashes (a model whose harness results span several files)."""
    return hashes[0] if len(hashes) == 1 else _digest(hashes)
