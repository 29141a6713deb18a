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


def spec_hash(entry: str, options: dict, activation_sample: int) -> str:
    """What the config says about the task (no data read): the key of its `taskref`."""
    return _digest({"entry": entry, "options": options, "sample": activation_sample, "schema": SCHEMA})


def task_hash(spec: str, labels_fingerprint: str) -> str:
    """The key of every summary: the task spec plus the evaluation set it was computed on."""
    return _digest({"spec": spec, "labels": labels_fingerprint})


def config_spec(config: Config) -> str | None:
    """The spec hash of a config's task (None without a task)."""
    return None if config.task is None else spec_hash(config.task.entry, config.task.options,
                                                      config.task.activation_sample)
