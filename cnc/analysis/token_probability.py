"""llama.cpp's Δp: how a model changed the probability of each reference token against its KL reference.

Per reference token, Δp = p_model(token) − p_reference(token), from the log-probabilities precompute
stores per token ("target_logprob", float32, flat like "kl"). The statistics follow
`llama-perplexity --kl-divergence` (tools/perplexity/perplexity.cpp): the mean with its standard
error, percentiles interpolated linearly between sorted values (numpy's default, as llama.cpp's
`percentile`), the median, the extremes, and RMS Δp = sqrt(mean Δp²). Values are shares
(llama.cpp prints them times 100, in %).

Outputs precomputed before these log-probabilities were stored have a KL reference but no
"target_logprob": they are `outdated_outputs`, which precompute redoes and the views say.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

FIELD = "target_logprob"
# (name as llama.cpp prints it, percentile; None: not a percentile), in llama.cpp's order
PERCENTILE_ROWS = (("Maximum Δp", 100.0), ("99.9% Δp", 99.9), ("99.0% Δp", 99.0), ("95.0% Δp", 95.0),
                   ("90.0% Δp", 90.0), ("75.0% Δp", 75.0), ("Median Δp", 50.0), ("25.0% Δp", 25.0),
                   ("10.0% Δp", 10.0), ("5.0% Δp", 5.0), ("1.0% Δp", 1.0), ("0.1% Δp", 0.1),
                   ("Minimum Δp", 0.0))
NAMES = ("Mean Δp", *(name for name, _ in PERCENTILE_ROWS), "RMS Δp")


def outdated_outputs(outputs: Mapping[str, Any] | None) -> bool:
    """A teacher-forced generative model's outputs from before per-token log-probabilities were stored."""
    return (isinstance(outputs, Mapping) and outputs.get("kind") == "generative"
            and outputs.get("kl_reference") is not None and FIELD not in outputs)


def delta_p(model_logprob: np.ndarray, reference_logprob: np.ndarray) -> np.ndarray:
    """float64 [T]: p_model − p_reference per reference token, from log-probabilities [T]."""
    a, b = np.asarray(model_logprob, np.float64), np.asarray(reference_logprob, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} log-probabilities for the model, {b.size} for its reference")
    return np.exp(a) - np.exp(b)


def delta_p_statistics(model_logprob: np.ndarray, reference_logprob: np.ndarray) -> dict[str, float]:
    """llama.cpp's "Token probability statistics" by its names (shares, not %), plus
    "Mean Δp err" (the mean's standard error as llama.cpp computes it); {} without tokens."""
    d = delta_p(model_logprob, reference_logprob)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {}
    mean = float(d.mean())
    var = float((d * d).mean()) - mean * mean
    out = {"Mean Δp": mean,
           "Mean Δp err": float(np.sqrt(var / (d.size - 1))) if var > 0 and d.size > 10 else 0.0}
    names, qs = zip(*PERCENTILE_ROWS)
    out.update(zip(names, (float(v) for v in np.percentile(d, qs))))
    out["RMS Δp"] = float(np.sqrt((d * d).mean()))
    return out
