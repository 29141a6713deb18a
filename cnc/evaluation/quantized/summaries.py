"""Layers summaries of a quantized model read from its files, for a model the task cannot run
here (e.g. a GPTQ checkpoint without its kernels): the same per-module summaries the float path
stores, computed one module at a time from the dequantized tensors."""
from __future__ import annotations

import numpy as np

from cnc.evaluation.inspection import shared_edges, summarize
from cnc.evaluation.quantized.base import QuantizedWeights


def weight_summaries(weights: QuantizedWeights, kinds: dict[str, str], edges: dict[str, np.ndarray]) -> dict:
    """Per module (its parameters' dotted prefix): the summary of its own tensors, as
    `inspection.summarize_all` makes it from a loaded model; modules without shared edges get
    them from these values (`edges` is updated in place). Peak memory: one module's tensors."""
    modules: dict[str, list] = {}
    for storage, load in weights.tensors():
        module, _, leaf = storage.name.rpartition(".")
        modules.setdefault(module, []).append((leaf != "weight", leaf, load))  # weight first, as torch lists them
    out = {}
    for name, loaders in modules.items():
        values = np.concatenate([load().reshape(-1) for *_, load in sorted(loaders, key=lambda t: t[:2])])
        if name not in edges:
            edges[name] = shared_edges(values)
        out[name] = summarize(name, kinds.get(name, ""), values, edges[name])
    return out
