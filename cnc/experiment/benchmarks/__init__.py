"""Benchmark result files as efficiency metrics, tagged by hardware (README "Efficiency and CI").

A model's `benchmarks:` entry names result files: a path or glob, or a mapping
`{file: ..., format: ..., device: ..., match: {field: value}}`. The format is recognised from the
content unless given; `device` names where it ran when the tool does not record it (vLLM, guidellm)
or overrides what it recorded; `match` keeps only the records whose top-level fields equal the
given values (one request rate of a vLLM sweep, one thread count of a llama-bench run). One module
per format; `FORMATS` is the registry.
"""
from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any, Callable

import yaml

from cnc.experiment.benchmarks import guidellm, llama_bench, optimum_benchmark, vllm_bench
from cnc.experiment.benchmarks.measurement import METRICS, Measurement, device_label, number
from cnc.experiment.errors import ExperimentError

__all__ = ["FORMATS", "METRICS", "Measurement", "device_label", "read_benchmarks"]

Reader = Callable[[Any, str, Path], list[Measurement]]


def _optimum(data: Any, source: str, path: Path) -> list[Measurement]:
    config = None
    beside = path.with_name("benchmark_config.json")
    if "config" not in data and beside.is_file():
        config = json.loads(beside.read_text(encoding="utf-8"))
    return optimum_benchmark.measurements(data, source, config)


def _rows(data: Any) -> list:
    return data if isinstance(data, list) else [data]


# name -> (recognises parsed content, reads it)
FORMATS: dict[str, tuple[Callable[[Any], bool], Reader]] = {
    "llama-bench": (llama_bench.looks_like, lambda d, s, p: llama_bench.measurements(d, s)),
    "optimum-benchmark": (optimum_benchmark.looks_like, _optimum),
    "vllm": (vllm_bench.looks_like, lambda d, s, p: vllm_bench.measurements(_rows(d), s)),
    "guidellm": (guidellm.looks_like, lambda d, s, p: guidellm.measurements(d, s)),
}


def _parse(path: Path, where: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{where}: cannot read benchmark file {path} ({exc}). Fix: check the path.") from None
    try:
        if path.suffix.lower() == ".csv":
            return llama_bench.records_of_csv(text)
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        try:
            return json.loads(text)
        except json.JSONDecodeError:  # JSON lines (vLLM --append-result)
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{where}: benchmark file {path} is not valid JSON, JSON lines, YAML or CSV ({exc}). "
                              f"Fix: point `benchmarks` at the file the tool wrote.") from None


def _spec(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        return {"file": raw}
    allowed = {"file", "format", "device", "match"}
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str) or set(raw) - allowed:
        raise ExperimentError(f"{where}: benchmark entry {raw!r} is not understood. Fix: give a path, or "
                              f"{{file: path, format: {'|'.join(FORMATS)}, device: name, match: {{field: value}}}}.")
    if raw.get("format") is not None and raw["format"] not in FORMATS:
        raise ExperimentError(f"{where}: benchmark format {raw['format']!r} is unknown. Fix: use one of "
                              f"{', '.join(FORMATS)}, or leave it out to recognise the file.")
    if not isinstance(raw.get("match") or {}, dict):
        raise ExperimentError(f"{where}: benchmark `match` must be a mapping field -> value; got {raw['match']!r}.")
    return raw


def pattern_path(pattern: str, base_dir: Path | None) -> Path:
    """A benchmark entry's file, folder or glob, relative to the experiment file's folder."""
    path = Path(pattern).expanduser()
    return base_dir / path if not path.is_absolute() and base_dir is not None else path


def watched_paths(raw: Any, base_dir: Path | None, where: str) -> list[str]:
    """What a model's `benchmarks:` value names (files, folders, globs), for the live reload."""
    return [str(pattern_path(_spec(e, where)["file"], base_dir)) for e in (raw if isinstance(raw, list) else [raw])]


def files_of(pattern: str, base_dir: Path | None) -> list[Path]:
    path = pattern_path(pattern, base_dir)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in (".json", ".jsonl", ".csv", ".yaml", ".yml")
                      and p.name != "benchmark_config.json")
    return sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())


def _same(a: Any, b: Any) -> bool:
    x, y = number(a), number(b)
    return x == y if x is not None and y is not None else str(a) == str(b)


def _matches(m: Measurement, match: dict[str, Any]) -> bool:
    return all(_same(m.record.get(k), v) for k, v in match.items())


def read_file(path: Path, fmt: str | None, where: str) -> list[Measurement]:
    data = _parse(path, where)
    if fmt is None:
        fmt = next((name for name, (looks, _) in FORMATS.items() if looks(data)), None)
        if fmt is None:
            raise ExperimentError(f"{where}: {path} is not a result file of {', '.join(FORMATS)}. Fix: point "
                                  f"`benchmarks` at the tool's output (llama-bench -o json, vllm bench serve "
                                  f"--save-result, ...), or name its `format`.")
    elif not FORMATS[fmt][0](data):
        raise ExperimentError(f"{where}: {path} does not look like {fmt} output. Fix: check the file or its `format`.")
    try:
        return FORMATS[fmt][1](data, str(path), path)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ExperimentError(f"{where}: {path} ({fmt}) has an unexpected structure ({exc!r}). Fix: give the file "
                              f"exactly as the tool wrote it.") from None


def read_benchmarks(raw: Any, base_dir: Path | None, where: str) -> list[Measurement]:
    """Every measurement a model's `benchmarks:` value names, in file order."""
    entries = raw if isinstance(raw, list) else [raw]
    out: list[Measurement] = []
    for entry in entries:
        spec = _spec(entry, where)
        paths = files_of(spec["file"], base_dir)
        if not paths:
            raise ExperimentError(f"{where}: benchmark file {spec['file']!r} not found. Fix: check the path "
                                  f"(relative paths are relative to the experiment file).")
        for path in paths:
            found = [m for m in read_file(path, spec.get("format"), where) if _matches(m, spec.get("match") or {})]
            if spec.get("device"):
                for m in found:
                    m.hardware = {**m.hardware, "device": str(spec["device"])}
            out.extend(found)
    return out
