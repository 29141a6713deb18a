"""What every benchmark importer returns: named efficiency measurements, each with its hardware.

Importers map their tool's fields onto one vocabulary of metrics (`METRICS`: name, unit,
direction), so a llama-bench run and a vLLM run of two variants land on the same axes. A
measurement keeps the hardware as the tool recorded it (`hardware`), the device label the app
groups by (`device`), and the workload settings that must match before two numbers are
comparable (`settings`: threads, batch, prompt / generation lengths, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    higher_is_better: bool
    format: str
    per_device: bool = True  # False: the same on every device (a file's size)


# The efficiency vocabulary, in display order.
METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("Prompt tokens/s", "tokens/s", True, ",.1f"),
    MetricSpec("Generation tokens/s", "tokens/s", True, ",.1f"),
    MetricSpec("TTFT mean", "ms", False, ",.1f"),
    MetricSpec("TTFT p50", "ms", False, ",.1f"),
    MetricSpec("TTFT p99", "ms", False, ",.1f"),
    MetricSpec("ITL mean", "ms", False, ",.2f"),
    MetricSpec("ITL p50", "ms", False, ",.2f"),
    MetricSpec("ITL p99", "ms", False, ",.2f"),
    MetricSpec("Request throughput", "requests/s", True, ",.2f"),
    MetricSpec("Forward latency", "ms", False, ",.1f"),
    MetricSpec("Peak memory", "MB", False, ",.1f"),
    MetricSpec("Model file size", "MB", False, ",.1f", per_device=False),
)}

# Hardware fields a device label is made of, in order (absent ones are skipped).
DEVICE_FIELDS = ("gpu", "cpu", "backend", "threads")


@dataclass
class Measurement:
    metric: str  # a key of METRICS
    value: float
    hardware: dict[str, Any]  # as the tool recorded it: gpu, cpu, backend, threads, batch, ...
    settings: dict[str, Any] = field(default_factory=dict)  # workload: what must match to compare
    source: str = ""  # the result file (and record) it came from
    tool: str = ""  # the importer's name
    record: dict[str, Any] = field(default_factory=dict)  # the record's top-level scalars (for `match:`)

    @property
    def device(self) -> str:
        return device_label(self.hardware)


def device_label(hardware: dict[str, Any]) -> str:
    """A short, stable name for where a measurement ran: "Tesla T4 · CUDA", "Xeon ... · CPU · 2 threads"."""
    if hardware.get("device"):  # named in the experiment: wins over what the tool recorded
        return str(hardware["device"])
    parts = []
    for key in DEVICE_FIELDS:
        value = hardware.get(key)
        if value in (None, "", []):
            continue
        if key in ("cpu", "threads") and hardware.get("gpu"):
            continue  # a GPU run is named by its GPU
        parts.append((f"{value} thread" + "s" * (str(value) != "1")) if key == "threads" else str(value).strip())
    return " · ".join(parts) or "unknown device"


def number(value: Any) -> float | None:
    """A finite float, or None (tools write null, "", NaN or strings for missing values)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and out not in (float("inf"), float("-inf")) else None
