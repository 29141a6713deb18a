"""MLflow runs -> our experiment data (pure: no MLflow import, unit-testable).

One run is one model. Its id is the run name (the run id where names repeat); its base is the tag
`cnc.base` (a run name or id), else MLflow's parent run, else none; its operation is the tag
`cnc.operation` with the params listed in `cnc.parameters`, or else the params that differ from
the base's; its metrics are the latest values. A run whose base cannot be resolved, or that closes
a cycle, becomes a root with one notice naming the run and the fix; the other runs load as usual.
"""
from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

BASE_TAG, OPERATION_TAG, PARAMETERS_TAG, LABEL_TAG = "cnc.base", "cnc.operation", "cnc.parameters", "cnc.tag"
PARENT_TAG = "mlflow.parentRunId"


@dataclass
class RunRecord:
    """What we read of one MLflow run (plus local paths of its downloaded artifacts)."""

    run_id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    outputs: str | None = None


def param_value(text: str) -> Any:
    """MLflow stores params as strings; numbers become numbers so charts order them."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def _listed(text: str) -> list[str]:
    """`cnc.parameters` as a JSON list or comma-separated names."""
    try:
        names = json.loads(text)
    except ValueError:
        names = text.split(",")
    return [str(n).strip() for n in (names if isinstance(names, list) else [names]) if str(n).strip()]


def model_ids(runs: list[RunRecord]) -> dict[str, str]:
    """run id -> model id: the run name, or the run id where names repeat or are empty."""
    counts = Counter(r.name for r in runs)
    return {r.run_id: r.name if r.name and counts[r.name] == 1 else r.run_id for r in runs}


def _bases(runs: list[RunRecord], ids: dict[str, str], notices: list[str]) -> dict[str, str | None]:
    by_name: dict[str, list[str]] = {}
    for r in runs:
        by_name.setdefault(r.name, []).append(r.run_id)
    bases: dict[str, str | None] = {}
    for r in runs:
        mid, ref, parent = ids[r.run_id], r.tags.get(BASE_TAG, "").strip(), r.tags.get(PARENT_TAG)
        base = None
        if ref:
            if ref in ids:
                base = ref
            elif len(by_name.get(ref, [])) == 1:
                base = by_name[ref][0]
            elif ref in by_name:
                notices.append(f"run '{mid}': tag {BASE_TAG} = '{ref}' names {len(by_name[ref])} runs; shown as "
                               f"a root. Fix: set {BASE_TAG} to the base's run id.")
            else:
                notices.append(f"run '{mid}': tag {BASE_TAG} = '{ref}' is not a run of this experiment; shown as "
                               f"a root. Fix: set {BASE_TAG} to the name or run id of its base run.")
        elif parent:
            if parent in ids:
                base = parent
            else:
                notices.append(f"run '{mid}': its parent run {parent} is not an active run of this experiment "
                               f"(deleted or elsewhere); shown as a root. Fix: restore the parent or set {BASE_TAG}.")
        bases[r.run_id] = base
    _break_cycles(bases, ids, notices)
    return bases


def _break_cycles(bases: dict[str, str | None], ids: dict[str, str], notices: list[str]) -> None:
    """Cut each cycle at the run where the walk entered it (earliest logged first)."""
    settled: set[str] = set()
    for start in bases:
        trail: list[str] = []
        cur = start
        while cur is not None and cur not in settled:
            if cur in trail:
                loop = trail[trail.index(cur):]
                names = " -> ".join(ids[r] for r in loop + [cur])
                notices.append(f"runs {names} form a cycle through their bases; '{ids[cur]}' is shown as a root. "
                               f"Fix: correct the {BASE_TAG} tag of one of them.")
                bases[cur] = None
                break
            trail.append(cur)
            cur = bases[cur]
        settled.update(trail)


def _operation(run: RunRecord, base: RunRecord | None, mid: str, notices: list[str]) -> dict | None:
    name = run.tags.get(OPERATION_TAG, "").strip()
    if base is None and not name:
        return None
    if PARAMETERS_TAG in run.tags:
        names = _listed(run.tags[PARAMETERS_TAG])
        missing = [n for n in names if n not in run.params]
        if missing:
            notices.append(f"run '{mid}': {PARAMETERS_TAG} lists {', '.join(missing)}, which the run did not log "
                           f"as params; left out. Fix: log them with mlflow.log_param or drop them from the tag.")
        chosen = {n: run.params[n] for n in names if n in run.params}
    else:
        before = base.params if base is not None else {}
        chosen = {k: v for k, v in run.params.items() if before.get(k) != v}
    return {"name": name or "unknown", "parameters": {k: param_value(v) for k, v in chosen.items()}}


def _finite(metrics: dict[str, float], mid: str, notices: list[str]) -> dict[str, float | None]:
    """MLflow accepts NaN and inf as metric values (a diverged loss, a failed measurement); here
    they are missing values, each with a notice, never a point a scale or Pareto front sees. Its
    SQL store keeps ±inf as ±1.8e308 (the largest float), which is read back as inf."""
    out: dict[str, float | None] = {}
    for name, value in metrics.items():
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if abs(number) >= sys.float_info.max:
            number = math.copysign(math.inf, number)
        out[name] = number if math.isfinite(number) else None
        if out[name] is None:
            notices.append(f"run '{mid}': metric '{name}' was logged as {number!r}; shown as missing.")
    return out


def experiment_from_runs(runs: list[RunRecord], declared_metrics: list[dict] | None = None,
                    ) -> tuple[dict, list[str]]:
    """(experiment data for `parse_experiment`, notices) from runs in logging order."""
    notices: list[str] = []
    ids = model_ids(runs)
    bases = _bases(runs, ids, notices)
    by_id = {r.run_id: r for r in runs}
    metrics: list[Any] = list(declared_metrics or [])
    seen = {m["name"] for m in metrics}
    operations: dict[str, list[str]] = {}
    models = []
    for r in runs:
        base = bases[r.run_id]
        op = _operation(r, by_id.get(base) if base else None, ids[r.run_id], notices)
        if op is not None:
            known = operations.setdefault(op["name"], [])
            known.extend(p for p in op["parameters"] if p not in known)
        for name in r.metrics:
            if name not in seen:
                seen.add(name)
                metrics.append(name)  # direction inferred from the name
        label = r.tags.get(LABEL_TAG) or (r.name if ids[r.run_id] != r.name else "")
        models.append({"id": ids[r.run_id], "base": ids[base] if base else None, "operation": op, "tag": label,
                       "metrics": _finite(r.metrics, ids[r.run_id], notices), "checkpoint": r.checkpoint,
                       "outputs": r.outputs})
    ops = [{"name": n, "parameters": p} for n, p in operations.items()]
    return {"metrics": metrics, "operations": ops, "models": models}, notices
