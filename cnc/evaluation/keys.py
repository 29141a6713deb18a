"""The content-hash keys of precomputed summaries, in one place: what the config says about a task
(`spec_hash`, no data read) and the task plus the evaluation set it ran on (`task_hash`). The
checkpoint's own hash comes from the store (`SummaryStore.file_hash`), which memoizes it."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from cnc.experiment.config import Config

SCHEMA = 2  # bump when a summary format changes: old entries are then simply not found


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
    """The spec hash of a config's task (None without a task)."""
    t = config.task
    return None if t is None else spec_hash(t.entry, t.options, t.activation_sample, generation_settings(t))
