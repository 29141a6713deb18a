"""Colour and size encodings of metrics, and hover text, shared by the map and the scatterplot.

Colour is oriented by the metric's direction so "better" is always the bright end of the scale;
missing values get a neutral grey (never the colour of zero). A missing size value gets the middle
size (never the size of the smallest value) and renderers draw it hollow (`size_missing`). Ranges
are the data's, so a metric
declared 0..1 whose models span 0.90..0.95 still uses the whole scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cnc.analysis.map_positions import per_experiment
from cnc.analysis.recipe_text import model_name, step_text
from cnc.experiment.forest import Experiment, Metric, is_missing
from cnc.experiment.formatting import format_metric

# Viridis, stopping short of its palest yellow (too faint on white).
_STOPS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b"]
MISSING_COLOR = "#c8c8c8"
# Colours are quantized to this many levels: indistinguishable by eye, and WebGL scatter traces
# keep one shared palette of a few hundred colours (beyond it they draw wrong colours).
LEVELS = 64


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def _rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


def palette(t: float) -> str:
    """The colour at t in [0, 1] (clamped, quantized), interpolated between the stops."""
    return _level(round(min(1.0, max(0.0, t)) * LEVELS))


@lru_cache(maxsize=LEVELS + 1)
def _level(level: int) -> str:
    t = level / LEVELS * (len(_STOPS) - 1)
    i = min(int(t), len(_STOPS) - 2)
    a, b, f = _rgb(_STOPS[i]), _rgb(_STOPS[i + 1]), t - i
    return _hex(tuple(x + (y - x) * f for x, y in zip(a, b)))


@per_experiment
def data_range(exp: Experiment, metric: str) -> tuple[float, float] | None:
    vals = [v for v in exp.metric_values(metric) if not is_missing(v)]
    return (min(vals), max(vals)) if vals else None


@dataclass(frozen=True)
class ColorScale:
    metric: Metric
    lo: float
    hi: float

    def t(self, value: float) -> float:
        t = 0.5 if self.hi == self.lo else (value - self.lo) / (self.hi - self.lo)
        return t if self.metric.higher_is_better else 1.0 - t

    def color(self, value: float | None) -> str:
        return MISSING_COLOR if is_missing(value) else palette(self.t(value))

    def gradient(self, steps: int = 9) -> list[str]:
        """Colours from `lo` to `hi` (for the legend bar)."""
        return [self.color(self.lo + (self.hi - self.lo) * i / (steps - 1)) for i in range(steps)]


@dataclass(frozen=True)
class SizeScale:
    metric: Metric
    lo: float
    hi: float
    min_px: float = 14.0
    max_px: float = 40.0

    @property
    def missing_px(self) -> float:
        return round((self.min_px + self.max_px) / 2, 1)

    def size(self, value: float | None) -> float:
        if is_missing(value):
            return self.missing_px
        t = 0.5 if self.hi == self.lo else (value - self.lo) / (self.hi - self.lo)
        return round(self.min_px + (self.max_px - self.min_px) * min(1.0, max(0.0, t)), 1)


def color_scale(exp: Experiment, metric: str | None) -> ColorScale | None:
    rng = data_range(exp, metric) if metric in exp.metrics else None
    return ColorScale(exp.metrics[metric], *rng) if rng else None


def size_scale(exp: Experiment, metric: str | None, min_px: float = 14.0, max_px: float = 40.0) -> SizeScale | None:
    rng = data_range(exp, metric) if metric in exp.metrics else None
    return SizeScale(exp.metrics[metric], *rng, min_px, max_px) if rng else None


@per_experiment
def colors(exp: Experiment, metric: str | None) -> list[str]:
    """One colour per model (experiment order); memoized per experiment, like the other
    encodings: callers must not modify the lists."""
    scale = color_scale(exp, metric)
    if scale is None:
        return ["#4c78a8"] * len(exp.models)
    return [scale.color(m.metrics.get(metric)) for m in exp.models.values()]


@per_experiment
def sizes(exp: Experiment, metric: str | None, min_px: float = 14.0, max_px: float = 40.0) -> list[float]:
    scale = size_scale(exp, metric, min_px, max_px)
    if scale is None:
        return [(min_px + max_px) / 2] * len(exp.models)
    return [scale.size(m.metrics.get(metric)) for m in exp.models.values()]


@per_experiment
def size_missing(exp: Experiment, metric: str | None) -> list[bool]:
    """Per model: is its size value missing (drawn hollow)? All False when nothing is sized."""
    if size_scale(exp, metric) is None:
        return [False] * len(exp.models)
    return [is_missing(m.metrics.get(metric)) for m in exp.models.values()]


def shown_metrics(exp: Experiment) -> list[Metric]:
    """Metrics for hover text: the primary ones, or all when none is marked primary."""
    primary = [m for m in exp.metrics.values() if m.primary]
    return primary or list(exp.metrics.values())


@per_experiment
def model_index(exp: Experiment) -> dict[str, int]:
    """Model id -> position in experiment order (the order of every per-model list here)."""
    return {mid: i for i, mid in enumerate(exp.models)}


def tooltip(exp: Experiment, model_id: str) -> list[str]:
    """One model's hover text as plain-text lines — label/id, primary metrics, and the operation
    that produced it from its base — built when hovered (building all 5,000 up front cost more
    than the rest of the first page). Callers escape as their renderer needs."""
    m = exp.models[model_id]
    name = model_name(m)
    lines = [f"{name} ({m.id})" if name != m.id else m.id]
    lines += [f"{metric.name}: {format_metric(metric, m.metrics.get(metric.name))}"
              + (f" ± {format_metric(metric, m.stderr[metric.name])}" if metric.name in m.stderr else "")
              for metric in shown_metrics(exp)]  # ± the standard error a harness reported
    if m.base is not None and m.operation is not None:
        lines.append(f"{step_text(m.operation.name, m.operation.parameters)} from {model_name(exp.models[m.base])}")
    else:
        lines.append("root model")
    return lines
