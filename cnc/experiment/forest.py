"""The experiment: a forest of models with metrics, and its loaders.

One parser serves our experiment files (YAML or JSON) and, unchanged, the model-info JSON of the
original Compress and Compare server: both are `metrics` / `operations` / `models` lists. Structural
faults raise `ExperimentError` naming the file, the model and the fix; soft faults become warnings.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from cnc.experiment.benchmarks import Measurement, read_benchmarks, watched_paths
from cnc.experiment.benchmarks.attach import attach_measurements
from cnc.experiment.bounded_load import load_data_file
from cnc.experiment.checkpoints import is_url
from cnc.experiment.errors import ExperimentError
from cnc.experiment.eval_settings import harness_settings
from cnc.experiment.fidelity_reports import read_report
from cnc.experiment.lm_eval import read_run

# Names that suggest "lower is better" when a metric does not say (the original format has no
# direction field).
_LOWER_IS_BETTER = re.compile(
    r"latency|size|loss|error|time|memory|params|parameter|flops|macs|bytes|mb\b|kb\b|energy|"
    r"perplexity|wer\b|cer\b|mse|mae|rmse|disk",
    re.IGNORECASE,
)


@dataclass
class Metric:
    name: str
    format: str | None = None  # d3 format string, e.g. ".1%", ".3f", ",d"
    unit: str = ""
    min: float | None = None
    max: float | None = None
    higher_is_better: bool = True
    primary: bool = False
    description: str = ""


@dataclass
class Operation:
    name: str
    parameters: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class AppliedOperation:
    """The operation that produced a model from its base, with its parameter values."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class Model:
    id: str
    base: str | None = None
    operation: AppliedOperation | None = None
    tag: str = ""
    metrics: dict[str, float | None] = field(default_factory=dict)
    checkpoint: str | None = None  # absolute path once loaded
    outputs: str | None = None  # optional .npz of precomputed outputs (non-PyTorch models)
    lm_eval: str | None = None  # an lm-evaluation-harness output folder / glob / results file
    lm_eval_files: list[str] = field(default_factory=list)  # the harness results files it names
    lm_eval_samples: list[str] = field(default_factory=list)  # and their samples files (part of its content hash)
    stderr: dict[str, float] = field(default_factory=dict)  # standard errors of metrics, when known
    measurements: list[Measurement] = field(default_factory=list)  # benchmark results, each with its device
    eval_settings: dict[str, Any] = field(default_factory=dict)  # how lm-eval evaluated it (eval_settings.py)

    @property
    def label(self) -> str:
        return self.tag or self.id

    @property
    def source(self) -> str | None:
        """What precompute reads for this model (None: metrics only)."""
        return self.checkpoint or self.outputs or (self.lm_eval_files[-1] if self.lm_eval_files else None)


@dataclass
class Experiment:
    """The forest. `models` keeps file order; parent/child links are precomputed for speed."""

    metrics: dict[str, Metric]
    operations: dict[str, Operation]
    models: dict[str, Model]
    source: str = "<memory>"
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # problems with values the app shows in its header
    lm_eval_attributes: list[str] = field(default_factory=list)  # document fields that become subgroups
    devices: list[str] = field(default_factory=list)  # where benchmarks ran, first = the default
    device: str | None = None  # the device whose measurements `metrics` hold (None: no benchmarks)
    watched: list[str] = field(default_factory=list)  # result files / folders read (benchmarks, fidelity)
    children: dict[str, list[str]] = field(default_factory=dict, repr=False)
    roots: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.relink()

    def relink(self) -> None:
        self.children = {mid: [] for mid in self.models}
        self.roots = []
        for m in self.models.values():
            if m.base is None:
                self.roots.append(m.id)
            else:
                self.children[m.base].append(m.id)

    def path_to_root(self, model_id: str) -> list[str]:
        """Ids from the root down to `model_id` (inclusive)."""
        path = []
        cur: str | None = model_id
        while cur is not None:
            path.append(cur)
            cur = self.models[cur].base
        return path[::-1]

    def depth(self, model_id: str) -> int:
        return len(self.path_to_root(model_id)) - 1

    def subtree(self, model_id: str) -> list[str]:
        out, stack = [], [model_id]
        while stack:
            cur = stack.pop()
            out.append(cur)
            stack.extend(reversed(self.children[cur]))
        return out

    def metric_values(self, name: str) -> list[float | None]:
        return [m.metrics.get(name) for m in self.models.values()]


# ---------------------------------------------------------------- parsing

def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)  # NaN is the only float unequal to itself


def _metric_value(raw: Any, where: str, model_id: str, metric: str) -> float | None:
    """A finite number, or None (missing) for null. NaN, infinities and text are errors: a scale,
    legend or Pareto front fed one of them is silently wrong."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "null", "none")):
        return None
    value: float | None = None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond any float
            value = math.inf
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            value = None
    if value is None or not math.isfinite(value):
        what = "not a number" if value is None else "not a finite number"
        raise ExperimentError(
            f"{where}: model '{model_id}' has metric '{metric}' = {raw!r}, which is {what}. "
            f"Fix: give a finite number, or null when the value is missing."
        )
    return value


def _guess_direction(name: str) -> bool:
    return not _LOWER_IS_BETTER.search(name)


def _parse_metric(raw: Any, where: str) -> Metric:
    if isinstance(raw, str):
        return Metric(name=raw, higher_is_better=_guess_direction(raw))
    if not isinstance(raw, dict) or "name" not in raw:
        raise ExperimentError(f"{where}: each entry of 'metrics' needs a 'name'; got {raw!r}.")
    name = str(raw["name"])
    hib = raw.get("higher_is_better", raw.get("higherIsBetter"))
    return Metric(
        name=name,
        format=raw.get("format") or None,
        unit=str(raw.get("unit") or ""),
        min=_bound(raw.get("min"), where, name, "min"),
        max=_bound(raw.get("max"), where, name, "max"),
        higher_is_better=_guess_direction(name) if hib is None else bool(hib),
        primary=bool(raw.get("primary", False)),
        description=str(raw.get("description") or ""),
    )


def _bound(raw: Any, where: str, metric: str, key: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        return float(raw)
    raise ExperimentError(f"{where}: metric '{metric}' has {key} = {raw!r}; Fix: give a finite number or omit it.")


def _parse_operation(raw: Any, where: str) -> Operation:
    if isinstance(raw, str):
        return Operation(name=raw)
    if not isinstance(raw, dict) or "name" not in raw:
        raise ExperimentError(f"{where}: each entry of 'operations' needs a 'name'; got {raw!r}.")
    params = raw.get("parameters") or []
    if isinstance(params, dict):  # name -> spec ({"type": "continuous", ...})
        names = [str(k) for k in params]
    elif isinstance(params, list):
        names = [str(p["name"]) if isinstance(p, dict) and "name" in p else str(p) for p in params]
    else:
        raise ExperimentError(
            f"{where}: operation '{raw['name']}' has parameters {params!r}; "
            f"give a list of names or a mapping from name to spec."
        )
    return Operation(name=str(raw["name"]), parameters=names, description=str(raw.get("description") or ""))


def _parse_applied(raw: Any, where: str, model_id: str) -> AppliedOperation | None:
    if raw is None or raw == {}:
        return None
    if isinstance(raw, str):
        return AppliedOperation(name=raw)
    if not isinstance(raw, dict) or not raw.get("name"):
        raise ExperimentError(
            f"{where}: model '{model_id}' has operation {raw!r}; "
            f"Fix: write operation: {{name: ..., parameters: {{...}}}}."
        )
    params = raw.get("parameters") or {}
    if not isinstance(params, dict):
        raise ExperimentError(
            f"{where}: model '{model_id}' operation '{raw['name']}' has parameters {params!r}; "
            f"Fix: give a mapping from parameter name to value."
        )
    return AppliedOperation(name=str(raw["name"]), parameters=dict(params))


def parse_experiment(data: Any, where: str = "<memory>", base_dir: Path | None = None) -> Experiment:
    """Build and validate an experiment from parsed YAML/JSON data."""
    if not isinstance(data, dict):
        raise ExperimentError(f"{where}: expected a mapping with 'metrics', 'operations' and 'models'.")
    raw_models = data.get("models")
    if not isinstance(raw_models, list):
        raise ExperimentError(f"{where}: 'models' must be a list of models; found {type(raw_models).__name__}.")
    warnings: list[str] = []
    metrics: dict[str, Metric] = {}
    for section in ("metrics", "operations"):
        if not isinstance(data.get(section) or [], list):
            raise ExperimentError(f"{where}: '{section}' must be a list; found {type(data[section]).__name__}.")
    for raw in data.get("metrics") or []:
        m = _parse_metric(raw, where)
        metrics[m.name] = m
    operations: dict[str, Operation] = {}
    for raw in data.get("operations") or []:
        op = _parse_operation(raw, where)
        operations[op.name] = op

    harness_attributes, harness_metrics = _harness_settings(data.get("lm_eval"), where)
    notices: list[str] = []
    bench_folder = _benchmarks_folder(data.get("benchmarks"), where, base_dir)
    watched = [] if bench_folder is None else [str(bench_folder)]
    models: dict[str, Model] = {}
    for i, raw in enumerate(raw_models):
        if not isinstance(raw, dict) or raw.get("id") in (None, ""):
            raise ExperimentError(f"{where}: model #{i + 1} has no 'id'. Fix: give every model a unique id.")
        mid = str(raw["id"])
        if mid in models:
            raise ExperimentError(
                f"{where}: duplicate model id '{mid}' (model #{i + 1}). Fix: make every id unique."
            )
        raw_metrics = raw.get("metrics") or {}
        if not isinstance(raw_metrics, dict):
            raise ExperimentError(f"{where}: model '{mid}' metrics must be a mapping name -> number.")
        values = {str(k): _metric_value(v, where, mid, str(k)) for k, v in raw_metrics.items()}
        base = raw.get("base")
        model = Model(
            id=mid,
            base=None if base in (None, "") else str(base),
            operation=_parse_applied(raw.get("operation"), where, mid),
            tag=str(raw.get("tag") or ""),
            metrics=values,
            checkpoint=_resolve(raw.get("checkpoint"), base_dir),
            outputs=_resolve(raw.get("outputs"), base_dir),
        )
        if raw.get("lm_eval") not in (None, ""):
            notices += _read_harness(model, str(raw["lm_eval"]), metrics, where, base_dir, harness_metrics)
        if raw.get("fidelity") not in (None, ""):
            _read_fidelity(model, str(raw["fidelity"]), metrics, f"{where}: model '{mid}' (fidelity)", base_dir)
            watched.append(_resolve(str(raw["fidelity"]), base_dir))
        if raw.get("benchmarks"):
            watched.extend(watched_paths(raw["benchmarks"], base_dir, f"{where}: model '{mid}'"))
        bench = raw.get("benchmarks") or _files_in_folder(bench_folder, mid)
        if bench:
            model.measurements = read_benchmarks(bench, base_dir, f"{where}: model '{mid}'")
        models[mid] = model

    for m in models.values():
        if m.base is not None and m.base not in models:
            raise ExperimentError(
                f"{where}: model '{m.id}' has base '{m.base}', which is not a model in this file. "
                f"Fix: add model '{m.base}' or correct the base id."
            )
        if m.base is not None and m.operation is None:
            warnings.append(f"model '{m.id}' has base '{m.base}' but no operation; shown as 'unknown'.")
            m.operation = AppliedOperation(name="unknown")
        if m.operation is not None and m.operation.name not in operations:
            operations[m.operation.name] = Operation(m.operation.name, list(m.operation.parameters))
            warnings.append(f"operation '{m.operation.name}' is used but not declared; inferred.")
        elif m.operation is not None:
            declared = operations[m.operation.name].parameters
            declared.extend(p for p in m.operation.parameters if p not in declared)
        for name in m.metrics:
            if name not in metrics:
                metrics[name] = Metric(name=name, higher_is_better=_guess_direction(name))
                warnings.append(f"metric '{name}' is used but not declared; inferred.")
    _check_cycles(models, where)
    devices = attach_measurements(models.values(), metrics, Metric, warnings)
    _fill_ranges(metrics, models.values())
    return Experiment(metrics=metrics, operations=operations, models=models, source=where, warnings=warnings,
                      notices=notices, lm_eval_attributes=harness_attributes, devices=devices,
                      device=devices[0] if devices else None, watched=watched)


def _benchmarks_folder(raw: Any, where: str, base_dir: Path | None) -> Path | None:
    """The experiment's `benchmarks: {folder: path}`: result files named after the model
    (`<folder>/<model id>.json`, or anything under `<folder>/<model id>/`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"folder"} or not isinstance(raw["folder"], str):
        raise ExperimentError(f"{where}: top-level 'benchmarks' is {raw!r}. Fix: write benchmarks: {{folder: bench}} "
                              f"(result files named <model id>.json or kept in a folder <model id>/).")
    return Path(_resolve(raw["folder"], base_dir) or ".")


def _files_in_folder(folder: Path | None, model_id: str) -> list[str]:
    if folder is None:
        return []
    inside = folder / model_id
    if inside.is_dir():
        return [str(inside)]
    return [str(p) for p in sorted(folder.glob("*")) if p.is_file() and p.stem == model_id]


def _read_harness(model: Model, spec: str, metrics: dict[str, Metric], where: str, base_dir: Path | None,
                  patterns: list[str] | None) -> list[str]:
    """Metrics of an lm-evaluation-harness run (values the file gives win); the harness's own
    `higher_is_better` sets a new metric's direction, else the name rules do. A metric the harness
    logged as NaN or inf (it does so when it could not compute one) is missing, with a notice."""
    run = read_run(spec, base_dir, f"{where}: model '{model.id}' (lm_eval)")
    model.lm_eval = _resolve(spec, base_dir)
    model.lm_eval_files = [str(p) for p in run.results]
    model.lm_eval_samples = sorted(str(t.samples) for t in run.tasks.values() if t.samples is not None)
    model.eval_settings = harness_settings(run.results)
    names = run.metric_names(patterns)
    model.stderr = {n: run.stderr[n] for n in names if n in run.stderr}
    for name in names:
        value = run.metrics[name]
        model.metrics.setdefault(name, value)
        if name not in metrics:
            metrics[name] = Metric(name=name, higher_is_better=run.higher_is_better.get(name, _guess_direction(name)),
                                   format=".1%" if 0 <= value <= 1 else None)
    bad = [n for n in run.non_finite if run.shows(n, patterns)]
    for name in bad:
        model.metrics.setdefault(name, None)
        metrics.setdefault(name, Metric(name=name, higher_is_better=run.higher_is_better.get(name, _guess_direction(name))))
    return [f"model '{model.id}': the harness logged {name} = {run.non_finite[name]}; shown as missing."
            for name in bad if model.metrics.get(name) is None]


def _read_fidelity(model: Model, spec: str, metrics: dict[str, Metric], where: str, base_dir: Path | None) -> None:
    """Metrics of a fidelity report (cnc.experiment.fidelity_reports); logged values win."""
    report = read_report(_resolve(spec, base_dir) or spec, where)
    for name, value in report.metrics().items():
        model.metrics.setdefault(name, value)
        if name in report.errors:
            model.stderr.setdefault(name, report.errors[name])
    for d in report.metric_defs():
        metrics.setdefault(d["name"], Metric(**d))


def _harness_settings(raw: Any, where: str) -> tuple[list[str], list[str] | None]:
    """The experiment's `lm_eval: {attributes: [field, ...], metrics: [pattern, ...]}`: document
    fields that become subgroups, and which harness metrics the experiment shows."""
    if raw is None:
        return [], None
    lists = {k: raw.get(k) for k in ("attributes", "metrics")} if isinstance(raw, dict) else {}
    if not isinstance(raw, dict) or set(raw) - set(lists) or not all(isinstance(v or [], list) for v in lists.values()):
        raise ExperimentError(f"{where}: top-level 'lm_eval' is {raw!r}. Fix: write lm_eval: {{attributes: [subject]}} "
                              f"(document fields of the harness samples that become subgroups; optional "
                              f"metrics: [\"mmlu*/acc\"] picks the harness metrics shown).")
    patterns = lists["metrics"]
    return [str(a) for a in lists["attributes"] or []], None if patterns is None else [str(p) for p in patterns]


def _resolve(value: Any, base_dir: Path | None) -> str | None:
    if value in (None, ""):
        return None
    if is_url(str(value)):  # kept as written (README "Precompute on a cluster")
        return str(value)
    p = Path(str(value)).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return str(p)


def _check_cycles(models: dict[str, Model], where: str) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in models:
        path: list[str] = []
        cur: str | None = start
        while cur is not None and state.get(cur) != 2:
            if state.get(cur) == 1:
                cycle = path[path.index(cur):] + [cur]
                raise ExperimentError(
                    f"{where}: models form a cycle through their bases: {' -> '.join(cycle)}. "
                    f"Fix: a model's base must be an earlier model; one of these needs base: null."
                )
            state[cur] = 1
            path.append(cur)
            cur = models[cur].base
        for p in path:
            state[p] = 2


def _fill_ranges(metrics: dict[str, Metric], models: Iterable[Model]) -> None:
    """Give every metric a min/max from the data when the file does not declare one."""
    models = list(models)
    for metric in metrics.values():
        vals = [m.metrics[metric.name] for m in models if m.metrics.get(metric.name) is not None]
        if not vals:
            continue
        if metric.min is None:
            metric.min = min(vals)
        if metric.max is None:
            metric.max = max(vals)


# ---------------------------------------------------------------- files

def read_data_file(path: Path) -> Any:
    """Parse a YAML or JSON file within the size, nesting and alias limits (cnc.experiment.bounded_load),
    turning any fault into one clear message."""
    return load_data_file(path)


def experiment_as_dict(exp: Experiment) -> dict[str, Any]:
    """The experiment in our file format (what `parse_experiment` reads back to an equal
    experiment). Checkpoint and output paths are left out: they are the server's files, meaningless
    on a teammate's machine, so the file carries metrics, operations and provenance only."""
    def drop_empty(d: dict) -> dict:
        return {k: v for k, v in d.items() if v not in (None, "", [], {})}

    return {
        "metrics": [drop_empty({"name": m.name, "format": m.format, "unit": m.unit, "min": m.min, "max": m.max,
                                "higher_is_better": m.higher_is_better, "primary": m.primary or None,
                                "description": m.description}) for m in exp.metrics.values()],
        "operations": [drop_empty({"name": o.name, "parameters": list(o.parameters), "description": o.description})
                       for o in exp.operations.values()],
        "models": [{"id": m.id, "base": m.base,
                    **({"operation": {"name": m.operation.name, "parameters": dict(m.operation.parameters)}}
                       if m.operation else {}),
                    **({"tag": m.tag} if m.tag else {}),
                    "metrics": dict(m.metrics)} for m in exp.models.values()],
    }
