"""Read lm-evaluation-harness output folders (standard library only; the harness is not needed).

`lm_eval --log_samples --output_path out/` writes, per model, `out/<model name>/results_<date>.json`
(task-level metrics keyed "metric,filter", their "_stderr" twins, each task's config and
`higher_is_better`) and beside it one `samples_<task>_<date>.jsonl` per task: one line per document
and filter with the document, the target, the request arguments (the prompt), the raw and filtered
responses and each metric's value for that document. docs/lm_eval.md maps these fields to the app.

A model's `lm_eval` entry names a folder, a glob or one results file. Several runs found there (for
example one run per task) are merged, the newest run of each task winning.
"""
from __future__ import annotations

import fnmatch
import glob
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from cnc.experiment.bounded_load import parse_json, read_bounded_text
from cnc.experiment.errors import ExperimentError
from cnc.experiment.files import files_stamp

# Keys of a task's entry in "results" that are not metrics.
_NOT_METRICS = {"alias", "name", "sample_len", " ", "samples"}


@dataclass
class TaskRun:
    """One task as one run saw it."""

    name: str
    output_type: str  # generate_until, multiple_choice, loglikelihood, loglikelihood_rolling
    samples: Path | None  # None for a group (its subtasks have the samples) or without --log_samples
    results: Path
    date: str


@dataclass
class HarnessRun:
    """What one model's `lm_eval` entry points at: metrics per task and where the samples are."""

    where: str  # the experiment file and model, for error messages
    results: list[Path]  # the results files read (newest last)
    model_name: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # "task/metric[,filter]" -> value
    stderr: dict[str, float] = field(default_factory=dict)  # same keys
    higher_is_better: dict[str, bool] = field(default_factory=dict)  # same keys
    non_finite: dict[str, str] = field(default_factory=dict)  # metrics logged as NaN / inf -> how (shown missing)
    tasks: dict[str, TaskRun] = field(default_factory=dict)
    subtasks: set[str] = field(default_factory=set)  # members of a group (mmlu_anatomy of mmlu)

    def metric_names(self, patterns: list[str] | None = None) -> list[str]:
        """The metrics an experiment shows: those matching `patterns` (fnmatch, e.g. "mmlu*/acc"),
        by default those of tasks that are no group's member (MMLU: its groups, not 57 subjects)."""
        return [n for n in self.metrics if self.shows(n, patterns)]

    def shows(self, name: str, patterns: list[str] | None) -> bool:
        if patterns is not None:
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)
        return name.split("/", 1)[0] not in self.subtasks


def metric_key(task: str, key: str) -> str:
    """The app's name for a harness metric: "task/acc" (filter "none" dropped) or
    "task/exact_match,strict-match"."""
    return f"{task}/{key.removesuffix(',none')}"


def _date_of(results_file: Path) -> str:
    return results_file.stem[results_file.stem.rfind("_") + 1:]


def find_results(spec: str, base_dir: Path | None, where: str) -> list[Path]:
    """Results files named by a model's `lm_eval` value (folder, glob or file), oldest first."""
    raw = Path(spec).expanduser()
    path = raw if raw.is_absolute() or base_dir is None else base_dir / raw
    if path.is_file():
        found = [path]
    elif path.is_dir():
        found = sorted(path.rglob("results_*.json"))
    else:
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        found = [q for p in found for q in ([p] if p.is_file() else sorted(p.rglob("results_*.json")))]
    found = [p for p in found if p.suffix == ".json"]
    if not found:
        raise ExperimentError(
            f"{where}: lm_eval '{spec}' matches no harness results file (looked for results_*.json under "
            f"{path}). Fix: point at the folder given to lm_eval --output_path (run with --log_samples).")
    folders = sorted({str(p.parent) for p in found})
    if len(folders) > 1:
        raise ExperimentError(
            f"{where}: lm_eval '{spec}' holds results of {len(folders)} models ({', '.join(folders[:4])}). "
            f"Fix: point each model at its own subfolder (the harness nests results by model name).")
    return sorted(found, key=_date_of)


def harness_stamp(models) -> tuple:
    """Results files (with mtime and size) that the models' `lm_eval` entries name now: a new run
    written into a watched folder changes it, so the server reloads the experiment."""
    paths = []
    for m in models:
        if getattr(m, "lm_eval", None):
            try:
                found = find_results(m.lm_eval, None, "")
            except ExperimentError:
                found = []
            paths.extend(str(p) for p in found)
    return files_stamp(paths)


def _read_json(path: Path, where: str) -> dict:
    try:
        data = parse_json(read_bounded_text(path))
    except (ExperimentError, ValueError) as exc:
        raise ExperimentError(f"{where}: cannot read harness results {path} ({exc}). "
                              f"Fix: point at an intact results_*.json written by lm_eval.") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ExperimentError(f"{where}: {path} has no 'results' mapping, so it is not an lm_eval results "
                              f"file. Fix: point at the folder given to lm_eval --output_path.")
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def read_run(spec: str, base_dir: Path | None, where: str) -> HarnessRun:
    """Metrics, directions and samples files of one model (later runs override a task's values)."""
    files = find_results(spec, base_dir, where)
    run = HarnessRun(where=where, results=files)
    for path in files:
        data = _read_json(path, where)
        run.model_name = str(data.get("model_name") or run.model_name)
        configs = data.get("configs") or {}
        directions = data.get("higher_is_better") or {}
        date = _date_of(path)
        groups = data.get("groups") if isinstance(data.get("groups"), dict) else {}
        members = data.get("group_subtasks") if isinstance(data.get("group_subtasks"), dict) else {}
        run.subtasks.update(str(t) for subs in members.values() if isinstance(subs, list) for t in subs)
        for task, values in {**groups, **data["results"]}.items():  # groups (e.g. mmlu): metrics, no samples
            if not isinstance(values, dict):
                continue
            sample_file = path.parent / f"samples_{task}_{date}.jsonl"
            config = configs.get(task) if isinstance(configs.get(task), dict) else {}
            run.tasks[task] = TaskRun(task, str(config.get("output_type") or ""),
                                      sample_file if sample_file.is_file() else None, path, date)
            for key in [k for k in (*run.metrics, *run.non_finite) if k.startswith(f"{task}/")]:
                run.metrics.pop(key, None)
                run.non_finite.pop(key, None)
            for key, value in values.items():
                number = _number(value)
                if key in _NOT_METRICS or "," not in key:
                    continue
                metric, _, filt = key.partition(",")
                if number is None and isinstance(value, float) and not metric.endswith("_stderr"):
                    run.non_finite[metric_key(task, key)] = repr(value)  # the harness logged NaN (e.g. no samples)
                if number is None:
                    continue
                if metric.endswith("_stderr"):
                    run.stderr[metric_key(task, f"{metric.removesuffix('_stderr')},{filt}")] = number
                    continue
                name = metric_key(task, key)
                run.metrics[name] = number
                hib = (directions.get(task) or {}).get(metric)
                if isinstance(hib, bool):
                    run.higher_is_better[name] = hib
    return run


# ---------------------------------------------------------------- samples

@dataclass
class Sample:
    """One document as one model answered it (all filters merged)."""

    doc_id: int
    doc: dict
    prompt: str
    target: Any
    output: str  # the first filter's filtered response (multiple choice: the chosen choice's text)
    raw: str  # the unfiltered response
    scores: dict[str, float]  # "metric" (filter none) or "metric,filter" -> value
    choices: list[str] = field(default_factory=list)
    loglikelihoods: list[float] = field(default_factory=list)


def _arguments(raw: Any) -> list[list[Any]]:
    """Request arguments as lists: the file holds {"gen_args_0": {"arg_0": ..}} (0.4.5+) or lists."""
    if isinstance(raw, dict):
        return [[args[k] for k in sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1]))] if isinstance(args, dict)
                else list(args) for _, args in sorted(raw.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[-1]))]
    return [list(a) if isinstance(a, (list, tuple)) else [a] for a in raw or []]


def _first_text(value: Any) -> str:
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return "" if value is None or isinstance(value, (list, tuple)) else str(value)


def _loglikelihood(resp: Any) -> float:
    """A log-likelihood response: [ll, is_greedy] (floats or the strings the tracker writes)."""
    ll = resp[0] if isinstance(resp, (list, tuple)) and resp else resp
    try:
        return float(ll)
    except (TypeError, ValueError):
        return float("nan")


def _sample(line: dict, task: TaskRun, where: str) -> Sample:
    args = _arguments(line.get("arguments"))
    prompt = str(args[0][0]) if args and args[0] else ""
    filtered = line.get("filtered_resps") or []
    scores = {}
    filt = str(line.get("filter") or "none")
    for metric in line.get("metrics") or []:
        number = _number(line.get(metric))
        if number is not None:
            scores[metric if filt == "none" else f"{metric},{filt}"] = number
    sample = Sample(int(line["doc_id"]), line.get("doc") if isinstance(line.get("doc"), dict) else {},
                    prompt, line.get("target"), "", _first_text(line.get("resps")), scores)
    if task.output_type == "multiple_choice":
        sample.choices = [str(a[1]) if len(a) > 1 else "" for a in args]
        delim = _common_prefix_space(sample.choices)
        sample.choices = [c[len(delim):] for c in sample.choices]
        sample.loglikelihoods = [_loglikelihood(r) for r in filtered]
        best = max(range(len(sample.loglikelihoods)), key=lambda i: sample.loglikelihoods[i], default=None)
        sample.output = sample.choices[best] if best is not None and best < len(sample.choices) else ""
        sample.raw = sample.output
    elif task.output_type.startswith("loglikelihood"):
        sample.loglikelihoods = [_loglikelihood(r) for r in filtered]
        sample.output = str(args[0][1]) if args and len(args[0]) > 1 and isinstance(args[0][1], str) else ""
    else:
        sample.output = _first_text(filtered)
    return sample


def _common_prefix_space(choices: list[str]) -> str:
    """The target delimiter the harness put before every choice (a space, usually)."""
    return " " if choices and all(c.startswith(" ") for c in choices) else ""


def read_samples(task: TaskRun, where: str) -> Iterator[Sample]:
    """Every document of one task, its filters merged (the first filter's response is the output)."""
    if task.samples is None:
        return iter(())
    merged: dict[int, Sample] = {}
    try:
        with open(task.samples, encoding="utf-8") as fh:
            for number, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                    sample = _sample(line, task, where)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise ExperimentError(
                        f"{where}: {task.samples} line {number} is not a harness sample "
                        f"({type(exc).__name__}: {exc}; each line needs doc_id, doc, target, arguments, "
                        f"filtered_resps). Fix: re-run lm_eval with --log_samples.") from None
                if sample.doc_id in merged:
                    merged[sample.doc_id].scores.update(sample.scores)
                else:
                    merged[sample.doc_id] = sample
    except OSError as exc:
        raise ExperimentError(f"{where}: cannot read {task.samples} ({exc}).") from None
    return iter(merged.values())
