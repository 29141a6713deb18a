"""guidellm's benchmark report (`guidellm benchmark --output-path report.json`, JSON or YAML): a
`benchmarks` list, one per strategy of the run (synchronous, throughput, constant rates ...).

Each metric is a distribution per request status; only `successful` requests are read: `mean`,
`median` and `percentiles.p99`. Latencies are in ms (`time_to_first_token_ms`,
`inter_token_latency_ms`); `output_tokens_per_second` is the generation rate of all requests
together. guidellm records the backend but no hardware: name the device in the experiment.
docs/benchmarks/guidellm.md.
"""
from __future__ import annotations

from typing import Any

from cnc.experiment.benchmarks.measurement import Measurement, number

DISTRIBUTIONS = {
    "requests_per_second": {"mean": "Request throughput"},
    "output_tokens_per_second": {"mean": "Generation tokens/s"},
    "time_to_first_token_ms": {"mean": "TTFT mean", "median": "TTFT p50", "p99": "TTFT p99"},
    "inter_token_latency_ms": {"mean": "ITL mean", "median": "ITL p50", "p99": "ITL p99"},
}


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and all(
        isinstance(b, dict) and isinstance(b.get("metrics"), dict) for b in data["benchmarks"])


def _stat(distribution: dict[str, Any], key: str) -> float | None:
    if key == "p99":
        return number((distribution.get("percentiles") or {}).get("p99"))
    return number(distribution.get(key))


def _settings(bench: dict[str, Any]) -> dict[str, Any]:
    args = bench.get("args") or bench.get("config") or {}
    strategy = args.get("strategy") or {}
    loader = bench.get("request_loader") or {}
    settings = {"strategy": strategy.get("type_"), "rate": strategy.get("rate"),
                "max_concurrency": strategy.get("max_concurrency") or strategy.get("streams"),
                "data": loader.get("data")}
    return {k: v for k, v in settings.items() if v is not None}


def measurements(report: dict[str, Any], source: str) -> list[Measurement]:
    out: list[Measurement] = []
    for i, bench in enumerate(report["benchmarks"]):
        worker = bench.get("worker") or bench.get("backend") or {}
        hardware = {"backend": worker.get("backend_type") or worker.get("type_")}
        settings = _settings(bench)
        scalars = {**settings, "index": i, "model": worker.get("backend_model")}
        where = f"{source} (benchmark {i + 1}: {settings.get('strategy', '?')})"
        for name, stats in DISTRIBUTIONS.items():
            successful = (bench["metrics"].get(name) or {}).get("successful") or {}
            for key, metric in stats.items():
                value = _stat(successful, key)
                if value is not None:
                    out.append(Measurement(metric, value, hardware, settings, where, "guidellm", scalars))
    return out
