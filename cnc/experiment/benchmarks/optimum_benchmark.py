"""Hugging Face optimum-benchmark's `benchmark.json` (config + report) and `benchmark_report.json`
(the report alone; its hardware then comes from a `benchmark_config.json` beside it, else from
the experiment).

Report sections (`load`, `forward`, `prefill`, `decode`, `per_token`, `generate`) each hold
`latency` (seconds: mean, p50, p99), `throughput` (`value` with its `unit`) and `memory` (MB).
Text generation: `prefill` throughput is prompt tokens/s and its latency the time to first token,
`decode` throughput generation tokens/s, `per_token` latency the inter-token latency. Other tasks:
`forward` latency. Peak memory: the largest `max_ram` (CPU) or `max_process_vram` / `max_global_vram`
(GPU) of any section. docs/benchmarks/optimum-benchmark.md.
"""
from __future__ import annotations

from typing import Any

from cnc.experiment.benchmarks.measurement import Measurement, number

SECTIONS = ("load", "forward", "prefill", "decode", "per_token", "generate", "call")
LATENCIES = {"prefill": ("TTFT mean", "TTFT p50", "TTFT p99"), "per_token": ("ITL mean", "ITL p50", "ITL p99"),
             "forward": ("Forward latency", None, None)}
THROUGHPUTS = {"prefill": "Prompt tokens/s", "decode": "Generation tokens/s"}


def looks_like(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    report = data.get("report", data)
    return isinstance(report, dict) and any(isinstance(report.get(s), dict) for s in SECTIONS)


def _hardware(config: dict[str, Any]) -> dict[str, Any]:
    backend, env = config.get("backend") or {}, config.get("environment") or {}
    device = str(backend.get("device") or "")
    gpus = env.get("gpu") or []
    gpu = gpus[0] if device.startswith(("cuda", "rocm", "mps")) and gpus else None
    return {"cpu": str(env.get("cpu") or "").strip() or None, "gpu": gpu,
            "backend": " ".join(str(x) for x in (backend.get("name"), device) if x) or None,
            "threads": backend.get("intra_op_num_threads"),
            "batch": ((config.get("scenario") or {}).get("input_shapes") or {}).get("batch_size")}


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    scenario, backend = config.get("scenario") or {}, config.get("backend") or {}
    shapes = scenario.get("input_shapes") or {}
    generate = scenario.get("generate_kwargs") or {}
    settings = {"batch_size": shapes.get("batch_size"), "sequence_length": shapes.get("sequence_length"),
                "new_tokens": scenario.get("new_tokens") or generate.get("max_new_tokens"),
                "dtype": backend.get("torch_dtype") or backend.get("dtype"),
                "threads": backend.get("intra_op_num_threads")}
    return {k: v for k, v in settings.items() if v is not None}


def _peak_memory(report: dict[str, Any], gpu: bool) -> float | None:
    keys = ("max_process_vram", "max_global_vram") if gpu else ("max_ram",)
    peaks = [number((report[s].get("memory") or {}).get(k)) for s in report
             if isinstance(report.get(s), dict) for k in keys]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) if peaks else None


def _seconds_to_ms(latency: dict[str, Any], key: str) -> float | None:
    value = number(latency.get(key))
    unit = latency.get("unit", "s")
    return None if value is None else value * (1000.0 if unit == "s" else 1.0)


def measurements(data: dict[str, Any], source: str, config: dict[str, Any] | None = None) -> list[Measurement]:
    report = data.get("report", data) if "report" in data else data
    config = data.get("config") or config or {}
    hardware, settings = _hardware(config), _settings(config)
    scalars = {"name": config.get("name"), **settings}
    out: list[Measurement] = []

    def add(metric: str, value: float | None, section: str) -> None:
        if value is not None:
            out.append(Measurement(metric, value, hardware, settings, f"{source} ({section})", "optimum-benchmark",
                                   scalars))

    for section, names in LATENCIES.items():
        latency = (report.get(section) or {}).get("latency") or {}
        for name, key in zip(names, ("mean", "p50", "p99")):
            if name:
                add(name, _seconds_to_ms(latency, key), section)
    for section, name in THROUGHPUTS.items():
        add(name, number(((report.get(section) or {}).get("throughput") or {}).get("value")), section)
    add("Peak memory", _peak_memory(report, bool(hardware["gpu"])), "memory")
    return out
