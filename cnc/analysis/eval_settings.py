"""Apples-to-oranges guard: were the models being compared evaluated the same way?

lm-eval runs must agree on harness version, chat template, sample limit and, per task, its
version, few-shot count, evaluated samples and generation settings; benchmark measurements of one
metric on one device must agree on the tool and its workload (threads, batch, prompt / generation
lengths, request rate ...). Each difference becomes one sentence naming the setting and who used
what, shown next to the affected numbers (Selection Details) and in `cnc check`'s report.
"""
from __future__ import annotations

from typing import Any, Iterable

from cnc.experiment.benchmarks.attach import measured
from cnc.experiment.forest import Experiment

SHOWN = 4  # models named per value before "and N more"


def _who(groups: dict[str, list[str]]) -> str:
    parts = []
    for value, ids in groups.items():
        names = ", ".join(ids[:SHOWN]) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
        parts.append(f"{value} ({names})")
    return "; ".join(parts)


def _differing(values: dict[str, Any]) -> dict[str, list[str]] | None:
    groups: dict[str, list[str]] = {}
    for mid, value in values.items():
        groups.setdefault("not recorded" if value is None else str(value), []).append(mid)
    return groups if len(groups) > 1 else None


def harness_differences(exp: Experiment, model_ids: list[str], tasks: set[str] | None = None) -> list[str]:
    """Settings of lm-eval runs that differ between the models (those of `tasks` and global ones)."""
    runs = {m: exp.models[m].eval_settings for m in model_ids if exp.models[m].eval_settings}
    if len(runs) < 2:
        return []
    keys = dict.fromkeys(k for s in runs.values() for k in s)
    out = []
    for key in keys:
        task = key.split(": ", 1)[0] if ": " in key else None
        if task is not None and tasks is not None and task not in tasks:
            continue
        groups = _differing({m: s.get(key) for m, s in runs.items()})
        if groups:
            out.append(f"lm-eval {key} differs: {_who(groups)}")
    return out


def benchmark_differences(exp: Experiment, model_ids: list[str], metrics: Iterable[str] | None = None) -> list[str]:
    """Benchmark metrics on the experiment's device measured with different tools or workloads."""
    counted = {m: measured(exp.models[m], exp.device) for m in model_ids if exp.models[m].measurements}
    names = dict.fromkeys(n for c in counted.values() for n in c)
    wanted = None if metrics is None else set(metrics)
    out = []
    for name in names:
        if wanted is not None and name not in wanted:
            continue
        taken = {m: c[name] for m, c in counted.items() if name in c}
        groups = _differing({m: x.tool for m, x in taken.items()})
        if groups:
            out.append(f"{name} measured by different tools: {_who(groups)}")
            continue
        for key in dict.fromkeys(k for x in taken.values() for k in x.settings):
            groups = _differing({m: x.settings.get(key) for m, x in taken.items()})
            if groups:
                out.append(f"{name} measured with different {key}: {_who(groups)}")
    return out


def differences(exp: Experiment, model_ids: list[str], metrics: Iterable[str] | None = None) -> list[str]:
    """Every way the models were evaluated differently (only what bears on `metrics` when given)."""
    metrics = None if metrics is None else list(metrics)
    tasks = None if metrics is None else {m.split("/", 1)[0] for m in metrics if "/" in m}
    return harness_differences(exp, model_ids, tasks) + benchmark_differences(exp, model_ids, metrics)


def metric_differences(exp: Experiment, model_ids: list[str]) -> dict[str, list[str]]:
    """metric -> the differences that bear on it, for the metrics shown next to the numbers."""
    out: dict[str, list[str]] = {}
    for name in exp.metrics:
        found = differences(exp, model_ids, [name]) if ("/" in name or any(
            name in {x.metric for x in exp.models[m].measurements} for m in model_ids)) else []
        if found:
            out[name] = found
    return out


def metric_notes(exp: Experiment, model_ids: list[str], metric: str) -> list[str]:
    """What to say next to `metric`'s numbers for these models: the device they were measured on
    (when there are several) and every way they were evaluated differently."""
    notes = []
    measured_here = any(x.metric == metric for m in model_ids for x in exp.models[m].measurements)
    if measured_here and len(exp.devices) > 1:
        notes.append(f"{metric} as measured on {exp.device}; models not measured there have no value.")
    found = differences(exp, model_ids, [metric])
    if found:
        notes.append("Not evaluated the same way: " + " | ".join(found))
    return notes
