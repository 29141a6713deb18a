"""Fidelity reports people already have, read as model metrics: a model entry names the file
(`fidelity: kld-q4_k_m.log`).

- llama.cpp's `llama-perplexity --kl-divergence` printed report (its log, as captured from the
  terminal, with or without llama.cpp's log prefixes; also the markdown table of the same lines
  quoted in its docs). Metrics keep llama.cpp's names: "Mean PPL(Q)/PPL(base)", "Mean KLD",
  "99.0% KLD", "Same top p", "RMS Δp", ... Percentages (Δp, same top p) become shares (0.967 for
  96.7 %), as every rate in the app; the "±" uncertainty becomes the metric's standard error.
- llm-compressor's KL tool JSON: `mean_kl`, `median_kl`, `max_kl` and `per_sample_kl` (from which
  the 90th and 99th percentiles are taken), named as the tool names them.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnc.experiment.errors import ExperimentError

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# label, then ":" (the printed report) or "|" (the docs' table), a value, an optional "± err", an optional "%"
_LINE = re.compile(r"(?P<label>Mean PPL\(Q\)/PPL\(base\)|Mean PPL\(Q\)-PPL\(base\)|Mean ln\(PPL\(Q\)/PPL\(base\)\)"
                   r"|Mean PPL\(Q\)|Mean PPL\(base\)|Cor\(ln\(PPL\(Q\)\), ln\(PPL\(base\)\)\)"
                   r"|(?:Mean|Maximum|Median|Minimum|RMS|\d+\.\d%)\s*(?:KLD|Δp)|Same top p)"
                   rf"\s*\|?\s*:?\s*\|?\s*(?P<value>{_NUMBER})\s*(?:±\s*(?P<err>{_NUMBER}))?\s*(?P<pct>%)?")

# the llama.cpp statistics that become metrics: (format, higher is better)
LLAMA_METRICS = {
    "Mean PPL(Q)": (".4g", False), "Mean PPL(Q)/PPL(base)": (".4f", False), "Mean KLD": (".4g", False),
    "Median KLD": (".4g", False), "90.0% KLD": (".4g", False), "99.0% KLD": (".4g", False),
    "99.9% KLD": (".4g", False), "Maximum KLD": (".4g", False), "Mean Δp": ("+.2%", True),
    "RMS Δp": (".2%", False), "Same top p": (".2%", True),
}
KL_TOOL_METRICS = {"mean_kl": ".4g", "median_kl": ".4g", "p90_kl": ".4g", "p99_kl": ".4g", "max_kl": ".4g"}


@dataclass
class FidelityReport:
    """Every statistic the file gives (`values`, by llama.cpp's or the tool's name), their
    uncertainties, and per-sample values when the file has them."""

    source: str
    kind: str  # "llama.cpp" or "llm-compressor"
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    per_sample: np.ndarray | None = None

    def metrics(self) -> dict[str, float]:
        names = LLAMA_METRICS if self.kind == "llama.cpp" else KL_TOOL_METRICS
        return {k: v for k, v in self.values.items() if k in names}

    def metric_defs(self) -> list[dict]:
        """Metric fields (name, format, higher_is_better, description) of `metrics()`: forest.py
        makes them Metrics (this module stays below it)."""
        note = f"Imported from a {self.kind} fidelity report ({Path(self.source).name})."
        if self.kind == "llama.cpp":
            return [{"name": k, "format": LLAMA_METRICS[k][0], "higher_is_better": LLAMA_METRICS[k][1],
                     "description": f"llama-perplexity --kl-divergence: {k}. {note}"} for k in self.metrics()]
        return [{"name": k, "format": KL_TOOL_METRICS[k], "higher_is_better": False,
                 "description": f"llm-compressor KL tool: {k}. {note}"} for k in self.metrics()]


def _label(raw: str) -> str:
    return " ".join(raw.split())


def parse_llama_report(text: str, source: str = "<text>") -> FidelityReport:
    """The statistics of a `llama-perplexity --kl-divergence` report; the last value of a label
    wins (a log holding two runs reads as its last)."""
    report = FidelityReport(source, "llama.cpp")
    for line in text.splitlines():
        m = _LINE.search(line)
        if m is None:
            continue
        label = _label(m["label"])
        scale = 0.01 if m["pct"] or label.startswith("Cor(") else 1.0
        if "Δp" in label or label == "Same top p":
            scale = 0.01  # llama.cpp prints them in percent, with the sign where the "%" may be far
        report.values[label] = float(m["value"]) * scale
        if m["err"] is not None:
            report.errors[label] = float(m["err"]) * scale
    if "Mean KLD" not in report.values:
        raise ExperimentError(f"{source}: no 'Mean    KLD:' line: this is not the report of `llama-perplexity "
                              "--kl-divergence-base BASE.kld --kl-divergence`. Fix: name the file its output was "
                              "saved to (e.g. llama-perplexity ... > kld-q4_k_m.log 2>&1).")
    return report


def parse_kl_tool_json(data: object, source: str = "<json>") -> FidelityReport:
    """llm-compressor's KL tool output: `mean_kl` (required), `median_kl`, `max_kl`, `per_sample_kl`."""
    if not isinstance(data, dict) or "mean_kl" not in data:
        raise ExperimentError(f"{source}: expected llm-compressor's KL JSON with a 'mean_kl' number (and "
                              "optionally median_kl, max_kl, per_sample_kl). Fix: name the JSON file the KL tool "
                              "wrote, or a llama-perplexity --kl-divergence log.")
    report = FidelityReport(source, "llm-compressor")
    for key in ("mean_kl", "median_kl", "max_kl"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ExperimentError(f"{source}: '{key}' is {value!r}; expected a finite number. Fix: regenerate the file.")
        report.values[key] = float(value)
    samples = data.get("per_sample_kl")
    if samples is not None:
        try:
            arr = np.asarray(samples, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.array([np.nan])
        if arr.ndim != 1 or not np.isfinite(arr).all():
            raise ExperimentError(f"{source}: 'per_sample_kl' must be a list of finite numbers (one per sample). "
                                  "Fix: regenerate the file.")
        report.per_sample = arr
        if arr.size:
            report.values["p90_kl"], report.values["p99_kl"] = (float(v) for v in np.percentile(arr, [90, 99]))
    return report


def read_report(path: str | Path, where: str) -> FidelityReport:
    """The report in `path` (JSON: llm-compressor's KL tool; else a llama.cpp log)."""
    p = Path(path)
    if not p.is_file():
        raise ExperimentError(f"{where}: fidelity report {p} not found. Fix: give the path of a "
                              "llama-perplexity --kl-divergence log or an llm-compressor KL JSON, relative to the "
                              "experiment file.")
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ExperimentError(f"{where}: fidelity report {p} cannot be read ({exc}).") from None
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExperimentError(f"{where}: fidelity report {p} is not valid JSON ({exc}). Fix: name the KL "
                                  "tool's JSON file, or a llama-perplexity --kl-divergence log.") from None
        report = parse_kl_tool_json(data, f"{where}: fidelity report {p}")
    else:
        report = parse_llama_report(text, f"{where}: fidelity report {p}")
    report.source = str(p)
    return report
