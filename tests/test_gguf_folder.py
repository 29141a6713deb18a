"""A folder of GGUF variants opened with no YAML: the tree, the metrics, precompute and the Layers
answer (storage types, per-layer error against a direct numpy dequantization, most damaged first)."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors import safe_open

from cnc.app.cli import load
from cnc.experiment.config import load_config
from cnc.experiment.errors import ConfigError
from cnc.ui import layers
from tests.test_gguf_reader import HEADS, KV_HEADS, unpermute

IDS = ["tiny-llama", "tiny-llama-Q8_0", "tiny-llama-Q4_K_M", "tiny-llama-Q2_K"]


@pytest.fixture(scope="module")
def folder_ctx(gguf_folder, tmp_path_factory):
    return load(str(gguf_folder), str(tmp_path_factory.mktemp("gguf-cache")), progress=False)


def test_folder_builds_the_tree_metrics_and_task(gguf_folder):
    config = load_config(gguf_folder)
    exp = config.experiment
    assert sorted(exp.models) == sorted(IDS)
    assert exp.models["tiny-llama"].base is None
    for q in ("Q8_0", "Q4_K_M", "Q2_K"):
        m = exp.models[f"tiny-llama-{q}"]
        assert m.base == "tiny-llama" and m.operation.name == f"GGUF {q}"
        assert m.metrics["File size"] == pytest.approx(os.path.getsize(gguf_folder / f"tiny-llama-{q}.gguf") / 1e6)
    assert exp.models["tiny-llama-Q2_K"].metrics["Bits per weight"] < exp.models["tiny-llama-Q4_K_M"].metrics[
        "Bits per weight"] < exp.models["tiny-llama-Q8_0"].metrics["Bits per weight"] < 9
    assert exp.models["tiny-llama"].metrics["Parameters"] == exp.models["tiny-llama-Q2_K"].metrics["Parameters"]
    assert config.task.entry == "cnc.evaluation.weights_task:WeightsTask"  # no prompt file: Layers alone
    assert any("base guessed from the file name: tiny-llama" in n for n in config.notices)


def test_bad_files_get_notices_and_the_rest_opens(gguf_variants, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    os.symlink(gguf_variants["base"], folder / "tiny-llama")
    os.symlink(gguf_variants["q8_0"], folder / "tiny-llama-Q8_0.gguf")
    (folder / "broken.gguf").write_bytes(gguf_variants["q2_k"].read_bytes()[:700])
    (folder / "notes.gguf").write_text("not a model")
    quant = folder / "gptq-dir"
    quant.mkdir()
    (quant / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "mystery"}}))
    shutil.copy(gguf_variants["base"] / "model.safetensors", quant / "model.safetensors")
    card = folder / "card-child"
    card.mkdir()
    shutil.copy(gguf_variants["base"] / "config.json", card / "config.json")
    shutil.copy(gguf_variants["base"] / "model.safetensors", card / "model.safetensors")
    (card / "README.md").write_text("---\nbase_model: someone/tiny-llama\nbase_model_relation: finetune\n---\n# card\n")
    config = load_config(folder)
    assert sorted(config.experiment.models) == ["card-child", "tiny-llama", "tiny-llama-Q8_0"]
    notes = " | ".join(config.notices)
    assert "broken.gguf: damaged or truncated GGUF file" in notes
    assert "notes.gguf: not a GGUF file" in notes
    assert 'gptq-dir/config.json: quantization_config.quant_method is "mystery"; expected one of' in notes
    assert config.experiment.models["card-child"].base == "tiny-llama"  # from the model card, not guessed
    assert not any("card-child" in n for n in config.notices)


def test_a_tracker_directory_still_opens(tmp_path):
    from cnc import Tracker

    run = tmp_path / "run"
    t = Tracker(run)
    t.log_model("base", metrics={"Accuracy": 0.9})
    assert list(load_config(run).experiment.models) == ["base"]
    with pytest.raises(ConfigError, match="no model found"):
        from cnc.experiment import variant_folder

        variant_folder.scan(tmp_path / "run")


def direct_error(variants, gguf_name: str, hf_name: str) -> float:
    """‖W_deq − W‖ / ‖W‖ by gguf's dequantize and the converter's permutation undone by hand."""
    t = next(t for t in GGUFReader(variants["q2_k"]).tensors if t.name == gguf_name)
    w = dequantize(t.data, t.tensor_type)
    if ".attn_q." in gguf_name or ".attn_k." in gguf_name:
        w = unpermute(w, HEADS if ".attn_q." in gguf_name else KV_HEADS)
    ref = safe_open(str(variants["base"] / "model.safetensors"), "np").get_tensor(hf_name)
    return float(np.linalg.norm(w - ref) / np.linalg.norm(ref))


def test_precompute_stores_storage_and_exact_error(folder_ctx, gguf_variants):
    assert all(folder_ctx.status(m) == "ready" for m in IDS)
    params = folder_ctx.params("tiny-llama-Q2_K")
    raw = {t.name: t.tensor_type.name for t in GGUFReader(gguf_variants["q2_k"]).tensors}
    assert params["model.layers.0.self_attn.k_proj"]["storage"] == raw["blk.0.attn_k.weight"]
    assert params["lm_head"]["storage"] == raw["output.weight"]
    assert params["model.norm"]["storage"] == raw["output_norm.weight"] == "F32"
    for gguf_name, module in [("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj"),
                              ("blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj"),
                              ("token_embd.weight", "model.embed_tokens"),
                              ("blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj")]:
        e = params[module]
        assert np.sqrt(e["diff_sq"] / e["ref_sq"]) == pytest.approx(
            direct_error(gguf_variants, gguf_name, module + ".weight"), rel=1e-5)
    assert "storage" in folder_ctx.params("tiny-llama")["lm_head"]  # the float root: F32, no error sums
    assert "diff_sq" not in folder_ctx.params("tiny-llama")["lm_head"]


def test_layers_sorted_by_error_puts_the_most_damaged_first(folder_ctx, gguf_variants):
    sel = {"models": IDS, "base": "tiny-llama"}
    state = layers.checked_state("weights", "error", "tiny-llama-Q2_K", "sqrt", None)
    table, rows, _, _ = layers.current_view(folder_ctx, sel, state)
    q = table.quant
    col = IDS.index("tiny-llama-Q2_K")
    errors = [q.error[r, col] for r in rows if np.isfinite(q.error[r, col])]
    assert errors == sorted(errors, reverse=True) and 0.26 <= errors[0] <= 0.30
    params = folder_ctx.params("tiny-llama-Q2_K")
    worst = max(params, key=lambda m: params[m].get("diff_sq", 0) / max(params[m].get("ref_sq", 1), 1e-30))
    assert table.tree.names[rows[0]] == worst
    for c, kind in zip(range(1, 4), ("Q8_0", "Q4_K", "Q2_K")):
        assert q.storage[table.tree.index["model.layers.0.self_attn.q_proj"]][c] == kind
    parent = table.tree.index["model.layers.0"]
    assert 0.2 < q.error[parent, col] < 0.3 and q.bits[parent, 1] == pytest.approx(8.5, abs=0.2)
    body, _ = layers.render_body(folder_ctx, sel, state)
    text = json.dumps(body.to_plotly_json(), default=str, ensure_ascii=False)
    assert "Storage" in text and "Q2_K · 2.62 b" in text and "err 2" in text
    # the storage filter: only layers kept in Q6_K by the Q2_K mix
    state = layers.checked_state("weights", "error", "tiny-llama-Q2_K", "sqrt", None, 0, ["Q6_K", "bogus"])
    table, rows, state, _ = layers.current_view(folder_ctx, sel, state)
    assert state["storage"] == ["Q6_K"] and [table.tree.names[r] for r in rows] == ["lm_head"]
    assert layers.url_params(state)["lstore"] == "Q6_K"
    csv_text = layers.view_csv(folder_ctx, sel, state)
    assert "tiny-llama-Q2_K relative error" in csv_text.splitlines()[0] and csv_text.count("\n") == 2
