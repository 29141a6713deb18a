"""How an lm-evaluation-harness run evaluated: the settings that must match before two models'
numbers are comparable (task version, few-shot count, sample limit, chat template, generation
settings, harness version), read from its results files. cnc/analysis/eval_settings.py compares them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GLOBAL = {"lm_eval_version": "harness version", "chat_template_sha": "chat template",
          "system_instruction_sha": "system instruction", "fewshot_as_multiturn": "few-shot as multi-turn"}


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 64:  # a sha256: its head is enough to tell them apart
        return value[:12]
    return value


def harness_settings(results_files: list[str | Path]) -> dict[str, Any]:
    """Setting label -> value; "<task>: ..." for per-task ones. Later files win (newest run of a task)."""
    out: dict[str, Any] = {}
    for path in results_files:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # read_run reports unreadable files
        for key, label in GLOBAL.items():
            out[label] = _short(data.get(key))
        out["sample limit"] = (data.get("config") or {}).get("limit")
        configs = data.get("configs") or {}
        for task, version in (data.get("versions") or {}).items():
            out[f"{task}: task version"] = version
        for task, shots in (data.get("n-shot") or {}).items():
            out[f"{task}: few-shot"] = shots
        for task, counts in (data.get("n-samples") or {}).items():
            if isinstance(counts, dict):
                out[f"{task}: samples"] = counts.get("effective")
        for task, config in configs.items():
            if isinstance(config, dict) and config.get("generation_kwargs") is not None:
                out[f"{task}: generation settings"] = json.dumps(config["generation_kwargs"], sort_keys=True)
    return out
