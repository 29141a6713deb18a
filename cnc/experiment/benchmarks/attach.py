"""Benchmark metrics on a model: declared once, each model's value taken on one device.

`attach_measurements` fills them for the first device seen (the default); `devices.on_device` shows
the experiment from another device. A model not measured on a device has no value there (None:
drawn as missing, never as zero). When one model has several measurements of a metric on one
device (say two prompt lengths), the last one counts. Models are typed loosely here because the
forest module imports this one.
"""
from __future__ import annotations

from typing import Any, Iterable

from cnc.experiment.benchmarks.measurement import METRICS, Measurement


def devices_of(models: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for m in models:
        for x in m.measurements:
            if METRICS[x.metric].per_device:
                seen.setdefault(x.device)
    return list(seen)


def measured(model: Any, device: str | None) -> dict[str, Measurement]:
    """metric -> the measurement that counts for `model` on `device` (device-independent ones from any)."""
    out: dict[str, Measurement] = {}
    for x in model.measurements:
        if not METRICS[x.metric].per_device or x.device == device:
            out[x.metric] = x
    return out


def attach_measurements(models: Iterable[Any], metrics: dict[str, Any], metric_cls: type,
                        warnings: list[str]) -> list[str]:
    """Declare the measured metrics and give every model its value on the default device."""
    models = list(models)
    devices = devices_of(models)
    names = {x.metric for m in models for x in m.measurements}
    for name in (n for n in METRICS if n in names):
        spec = METRICS[name]
        tools = sorted({x.tool for m in models for x in m.measurements if x.metric == name})
        where = "on the device chosen above the map" if spec.per_device and len(devices) > 1 else "benchmarked"
        metrics[name] = metric_cls(name=name, unit=spec.unit, format=spec.format, higher_is_better=spec.higher_is_better,
                                   description=f"{name} ({spec.unit}), {where}; from {', '.join(tools)} results")
    for m in models:
        if m.measurements:
            set_values(m, names, devices[0] if devices else None)
        several = {x.metric for x in m.measurements if sum(y.metric == x.metric and y.device == x.device
                                                            for y in m.measurements) > 1}
        for name in sorted(several):
            warnings.append(f"model '{m.id}' has several '{name}' measurements on one device; the last one is shown.")
    return devices


def set_values(model: Any, names: set[str], device: str | None) -> None:
    values = measured(model, device)
    for name in names:
        model.metrics[name] = values[name].value if name in values else None
