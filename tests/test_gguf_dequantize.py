"""cnc's GGUF dequantization (gguf's own per-type code, a run of rows at a time) equals
`gguf.quants.dequantize` bit for bit, for every tensor type llama-quantize wrote into the variants."""
from __future__ import annotations

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize as gguf_dequantize

from cnc.evaluation.quantized import gguf as reader


def test_equals_gguf_dequantize_for_every_tensor_type(gguf_variants, monkeypatch):
    monkeypatch.setattr(reader, "ROWS_ELEMENTS", 1000)  # runs of a few rows, a short last one
    seen = set()
    for key in ("f16", "q8_0", "q4_k_m", "q2_k"):
        for t in GGUFReader(gguf_variants[key]).tensors:
            ours, theirs = reader.dequantize(t.data, t.tensor_type), gguf_dequantize(t.data, t.tensor_type)
            assert ours.dtype == np.float32 and ours.shape == theirs.shape, t.name
            assert np.array_equal(ours, theirs), (key, t.name, t.tensor_type.name)
            seen.add(t.tensor_type.name)
    assert {"F32", "F16", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q6_K"} <= seen, seen
