"""The GGUF reader against llama.cpp's own files and an independent numpy dequantization."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors import safe_open

from cnc.evaluation.quantized import open_quantized
from cnc.evaluation.quantized.gguf import GGUFWeights
from cnc.experiment.errors import ExperimentError, TaskError
from cnc.experiment.gguf_file import read_gguf

HEADS, KV_HEADS = 4, 2


def unpermute(w: np.ndarray, n: int) -> np.ndarray:
    rows, cols = w.shape
    return w.reshape(n, rows // n // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def test_metadata_types_and_shapes(gguf_variants):
    info = read_gguf(gguf_variants["q4_k_m"])
    raw = GGUFReader(gguf_variants["q4_k_m"])
    assert info.file_type == "Q4_K_M" and info.architecture == "llama"
    assert {t.name: t.storage for t in info.tensors} == {t.name: t.tensor_type.name for t in raw.tensors}
    assert {"Q4_K", "Q6_K", "F32"} <= set(info.storage_types)
    assert info.parameters == sum(int(t.n_elements) for t in raw.tensors)
    assert info.vocab_size == 160
    assert 4.5 < info.bits_per_weight < 5.5
    q = next(t for t in info.tensors if t.name == "blk.0.attn_q.weight")
    assert q.shape == (256, 256) and q.storage == "Q4_K" and q.bits_per_weight == pytest.approx(4.5)
    assert read_gguf(gguf_variants["f16"]).file_type == "F16"


def test_bad_files_are_named(tmp_path, gguf_variants):
    text = tmp_path / "notes.gguf"
    text.write_text("hello, not a model")
    with pytest.raises(ExperimentError, match=r"notes\.gguf: not a GGUF file"):
        read_gguf(text)
    data = gguf_variants["q2_k"].read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ExperimentError, match=r"cut\.gguf: (damaged or )?truncated"):
        read_gguf(cut)
    head = tmp_path / "head.gguf"
    head.write_bytes(data[:600])
    with pytest.raises(ExperimentError, match=r"head\.gguf: damaged or truncated"):
        read_gguf(head)
    # an unknown tensor type: the first tensor's type id (after its name, dims and shape) set to 250
    raw = GGUFReader(gguf_variants["q2_k"])
    first = raw.tensors[0]
    pos = data.index(first.name.encode()) + len(first.name) + 4 + 8 * len(first.shape)
    assert int.from_bytes(data[pos:pos + 4], "little") == int(first.tensor_type)
    odd = tmp_path / "odd.gguf"
    odd.write_bytes(data[:pos] + (250).to_bytes(4, "little") + data[pos + 4:])
    with pytest.raises(ExperimentError, match=r"odd\.gguf: holds a tensor type this reader does not know"):
        read_gguf(odd)
    with pytest.raises(TaskError, match=r"odd\.gguf"):
        open_quantized(odd)


@pytest.mark.parametrize("key,kind,low,high", [("f16", "F16", 0, 0.001), ("q8_0", "Q8_0", 0.003, 0.007),
                                               ("q4_k_m", "Q4_K", 0.05, 0.08), ("q2_k", "Q2_K", 0.24, 0.32)])
def test_dequantized_names_and_error(gguf_variants, key, kind, low, high):
    reader = open_quantized(gguf_variants[key])
    assert isinstance(reader, GGUFWeights) and reader.format == "gguf"
    raw = {t.name: t for t in GGUFReader(gguf_variants[key]).tensors}
    base = safe_open(str(gguf_variants["base"] / "model.safetensors"), "np")
    seen, types = {}, {}
    for storage, load in reader.tensors():
        types[storage.name] = storage.storage
        w, b = load(), base.get_tensor(storage.name).astype(np.float32)
        assert w.shape == b.shape == storage.shape
        seen[storage.name] = float(np.linalg.norm(w - b) / np.linalg.norm(b))
    assert set(seen) == set(base.keys())
    # the Q projection against a direct dequantization with the converter's permutation undone
    layer = raw["blk.1.attn_q.weight"]
    direct = unpermute(dequantize(layer.data, layer.tensor_type), HEADS)
    ref = base.get_tensor("model.layers.1.self_attn.q_proj.weight")
    assert seen["model.layers.1.self_attn.q_proj.weight"] == pytest.approx(
        float(np.linalg.norm(direct - ref) / np.linalg.norm(ref)), rel=1e-5)
    k = raw["blk.0.attn_k.weight"]
    permuted = dequantize(k.data, k.tensor_type)
    kref = base.get_tensor("model.layers.0.self_attn.k_proj.weight")
    assert np.linalg.norm(permuted - kref) / np.linalg.norm(kref) > 1.0  # still permuted: looks broken
    weights = [v for n, v in seen.items() if types[n] == kind]  # K-quant mixes keep some layers in Q6_K
    assert len(weights) >= 9 and low <= min(weights) and max(weights) <= high, seen
    assert reader.describe() == f"GGUF {read_gguf(gguf_variants[key]).file_type}"
