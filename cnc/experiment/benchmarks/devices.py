"""Hardware as a dimension: the experiment seen from one device (README "Efficiency and CI").

Benchmark metrics hold the default device's measurements (`attach.py`); `on_device` gives the same
experiment with every benchmark metric taken on another device, memoized on the experiment.
"""
from __future__ import annotations

import copy

from cnc.experiment.benchmarks.attach import set_values
from cnc.experiment.forest import Experiment


def on_device(exp: Experiment, device: str) -> Experiment:
    """`exp` with every benchmark metric taken on `device` (memoized on `exp`); `exp` itself
    when it has no such device or already shows it."""
    if device == exp.device or device not in exp.devices:
        return exp
    cache = exp.__dict__.setdefault("_on_device", {})
    if device not in cache:
        names = {x.metric for m in exp.models.values() for x in m.measurements}
        models = {}
        for mid, m in exp.models.items():
            copy_m = copy.copy(m)
            copy_m.metrics = dict(m.metrics)
            if m.measurements:
                set_values(copy_m, names, device)
            else:
                copy_m.metrics.update({n: None for n in names if n in m.metrics})
            models[mid] = copy_m
        metrics = {n: copy.copy(x) for n, x in exp.metrics.items()}
        for n in names:
            values = [mm.metrics.get(n) for mm in models.values() if mm.metrics.get(n) is not None]
            metrics[n].min, metrics[n].max = (min(values), max(values)) if values else (None, None)
        view = copy.copy(exp)
        view.models, view.metrics, view.device = models, metrics, device
        view.__dict__.pop("_on_device", None)
        view.relink()
        cache[device] = view
    return cache[device]
