"""Quantized models' Layers columns (pure): exact parent aggregation, error / bits orders, storage filter;
and the operation names a folder of variants gives quantized Hugging Face checkpoints."""
from __future__ import annotations

import numpy as np
import pytest

from cnc.analysis import layer_quant as Q
from cnc.analysis import layers as L
from cnc.experiment.errors import ExperimentError
from cnc.experiment.variant_folder import describe_quantization


def entry(storage: str, bits: float, base: np.ndarray, deq: np.ndarray) -> dict:
    d = deq - base
    return {"count": base.size, "storage": storage, "bits": bits, "diff_sq": float(d @ d),
            "ref_sq": float(base @ base), "own_sq": float(deq @ deq), "dot": float(deq @ base)}


def test_parents_aggregate_the_exact_error_and_weighted_bits():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(100) * 5
    qa, qb = a + rng.standard_normal(300) * 0.1, b + rng.standard_normal(100) * 1.0
    tree = L.build_tree([["blk.a", "blk.b"]])
    module = np.array([[-1], [0], [1]])  # blk, blk.a, blk.b
    quant = Q.quant_columns(3, module, [[entry("Q4_K", 4.5, a, qa), entry("Q6_K", 6.5625, b, qb)]], tree.aggregate)
    both, ref = np.concatenate([qa, qb]), np.concatenate([a, b])
    assert quant.error[0, 0] == pytest.approx(np.linalg.norm(both - ref) / np.linalg.norm(ref))
    assert quant.cosine[0, 0] == pytest.approx(both @ ref / np.linalg.norm(both) / np.linalg.norm(ref))
    assert quant.bits[0, 0] == pytest.approx((4.5 * 300 + 6.5625 * 100) / 400)
    assert quant.storage == [[""], ["Q4_K"], ["Q6_K"]] and quant.quantized.tolist() == [True]
    assert quant.sqnr_db(1, 0) == pytest.approx(-20 * np.log10(quant.error[1, 0]))
    assert quant.types() == ["Q4_K", "Q6_K"]
    order = Q.scores(quant, "error", [0])
    assert order[2] > 0.15 > order[1]  # b: 0.2 relative error, a: 0.1
    assert Q.with_storage(quant, [1, 2], {"Q6_K"}, [0]) == [2]
    assert Q.with_storage(quant, [1, 2], set(), [0]) == [1, 2]
    assert Q.scores(quant, "bits", [0])[1] > Q.scores(quant, "bits", [0])[2]  # fewest bits first


def test_float_summaries_have_no_columns():
    tree = L.build_tree([["fc"]])
    assert Q.quant_columns(1, np.array([[0]]), [[{"count": 4, "hist": []}]], tree.aggregate) is None


def test_quantization_configs_are_named():
    ct = {"quant_method": "compressed-tensors", "config_groups": {"group_0": {"targets": ["Linear"],
        "weights": {"num_bits": 4, "group_size": 128, "strategy": "group"}, "input_activations": None}}}
    assert describe_quantization(ct, "x") == "compressed-tensors W4A16, group 128"
    assert describe_quantization({"quant_method": "gptq", "bits": 4, "group_size": 128}, "x") == "GPTQ 4-bit g128"
    assert describe_quantization({"quant_method": "awq", "bits": 4, "group_size": 64}, "x") == "AWQ 4-bit g64"
    with pytest.raises(ExperimentError, match="cfg.json: quantization_config.config_groups"):
        describe_quantization({"quant_method": "compressed-tensors"}, "cfg.json")
