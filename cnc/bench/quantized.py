"""Layers of quantized models at 1B parameters: a Llama-shaped model with random weights, written as
a float16 Hugging Face directory, as GGUF F16 (with `gguf`'s writer, Q/K rows permuted as llama.cpp's
converter does) and as GGUF Q8_0 / Q4_K_M (llama.cpp's `llama-quantize`, from the build that
tests/llama_cpp_tools.py caches; found through $CNC_LLAMA_QUANTIZE or that cache), opened as a folder
of variants. Each model is summarized for Layers in its own process (`precompute --only`), which
reports its CPU time and peak RSS; then the Layers view of the summarized models is timed.
`CNC_BENCH_QUANT_DIR=<folder>` reuses the models an earlier run wrote there (writing and quantizing
1B parameters takes minutes).

Beside them a compressed-tensors W4A16 directory (int4, groups of 128, symmetric; `lm_head` left in
float16 as llm-compressor's W4A16 recipe leaves it): scales from compressed-tensors' own
`calculate_qparams`, weights quantized and packed by its `PackedQuantizationCompressor`, the
`quantization_config` llm-compressor writes (no llm-compressor needed for random weights).

Targets (issue 30): CPU time per parameter within 2x the float path's, peak RSS under 1.5 GB, the
Layers view in <= 300 ms once summarized.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cnc.bench import median_ms

FULL = {"hidden": 2048, "intermediate": 5632, "layers": 22, "heads": 32, "kv_heads": 4, "vocab": 32000}  # 1.1B
QUICK = {"hidden": 256, "intermediate": 512, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 512}


def quantize_tool() -> Path | None:
    found = os.environ.get("CNC_LLAMA_QUANTIZE")
    if found:
        return Path(found)
    cache = Path(os.environ.get("CNC_LLAMA_CPP_CACHE", Path.home() / ".cache" / "cnc-llama-cpp"))
    hits = sorted(cache.glob("*/llama_cpp_python-*/vendor/llama.cpp/build/bin/llama-quantize"))
    return hits[-1] if hits else None


def _tensors(shape: dict, rng: np.random.Generator):
    """(HF name, GGUF name, float16 array) of a Llama with these sizes, one tensor at a time."""
    h, f, v = shape["hidden"], shape["intermediate"], shape["vocab"]
    kv = h // shape["heads"] * shape["kv_heads"]

    def rand(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * 0.02).astype(np.float16)

    yield "model.embed_tokens.weight", "token_embd.weight", rand(v, h)
    for i in range(shape["layers"]):
        p, g = f"model.layers.{i}.", f"blk.{i}."
        yield p + "input_layernorm.weight", g + "attn_norm.weight", np.ones(h, np.float16)
        yield p + "self_attn.q_proj.weight", g + "attn_q.weight", rand(h, h)
        yield p + "self_attn.k_proj.weight", g + "attn_k.weight", rand(kv, h)
        yield p + "self_attn.v_proj.weight", g + "attn_v.weight", rand(kv, h)
        yield p + "self_attn.o_proj.weight", g + "attn_output.weight", rand(h, h)
        yield p + "post_attention_layernorm.weight", g + "ffn_norm.weight", np.ones(h, np.float16)
        yield p + "mlp.gate_proj.weight", g + "ffn_gate.weight", rand(f, h)
        yield p + "mlp.up_proj.weight", g + "ffn_up.weight", rand(f, h)
        yield p + "mlp.down_proj.weight", g + "ffn_down.weight", rand(h, f)
    yield "model.norm.weight", "output_norm.weight", np.ones(h, np.float16)
    yield "lm_head.weight", "output.weight", rand(v, h)


def _permuted(w: np.ndarray, n: int) -> np.ndarray:
    """llama.cpp's converter's Q/K row order (the reader undoes it)."""
    return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_models(folder: Path, shape: dict) -> dict[str, Path]:
    """The float directory and GGUF F16 (Q8_0 / Q4_K_M when llama-quantize is found) in `folder`."""
    import gguf
    from safetensors.numpy import save_file

    base = folder / "llama-1b"
    base.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": shape["hidden"],
              "intermediate_size": shape["intermediate"], "num_hidden_layers": shape["layers"],
              "num_attention_heads": shape["heads"], "num_key_value_heads": shape["kv_heads"],
              "vocab_size": shape["vocab"], "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
              "tie_word_embeddings": False, "torch_dtype": "float16"}
    (base / "config.json").write_text(json.dumps(config))
    writer = gguf.GGUFWriter(str(folder / "llama-1b-F16.gguf"), "llama")
    writer.add_name("llama-1b")
    writer.add_block_count(shape["layers"])
    writer.add_context_length(2048)
    writer.add_embedding_length(shape["hidden"])
    writer.add_feed_forward_length(shape["intermediate"])
    writer.add_head_count(shape["heads"])
    writer.add_head_count_kv(shape["kv_heads"])
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(shape["hidden"] // shape["heads"])
    writer.add_vocab_size(shape["vocab"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    shard: dict[str, np.ndarray] = {}
    n_shard = 0
    for hf, name, w in _tensors(shape, np.random.default_rng(0)):
        shard[hf] = w
        if ".attn_q." in name or ".attn_k." in name:
            w = _permuted(w, shape["heads"] if ".attn_q." in name else shape["kv_heads"])
        writer.add_tensor(name, w if w.ndim > 1 else w.astype(np.float32))
        if sum(a.nbytes for a in shard.values()) > 1 << 29:
            save_file(shard, str(base / f"model-{n_shard:05d}.safetensors"))
            shard, n_shard = {}, n_shard + 1
    if shard:
        save_file(shard, str(base / f"model-{n_shard:05d}.safetensors"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = {"float": base, "F16": folder / "llama-1b-F16.gguf", "W4A16": write_w4a16(base, folder / "llama-1b-W4A16")}
    tool = quantize_tool()
    for qtype in ("Q8_0", "Q4_K_M") if tool else ():
        out[qtype] = folder / f"llama-1b-{qtype}.gguf"
        subprocess.run([str(tool), str(out["F16"]), str(out[qtype]), qtype], check=True, capture_output=True)
    return out


W4A16_CONFIG = {"config_groups": {"group_0": {"format": "pack-quantized", "targets": ["Linear"], "weights": {
    "num_bits": 4, "type": "int", "symmetric": True, "group_size": 128, "strategy": "group", "dynamic": False,
    "actorder": None, "observer": "minmax"}, "input_activations": None, "output_activations": None}},
    "format": "pack-quantized", "ignore": ["lm_head"], "quant_method": "compressed-tensors",
    "quantization_status": "compressed", "kv_cache_scheme": None, "sparsity_config": {}}
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def write_w4a16(base: Path, out: Path) -> Path:
    """The float directory as compressed-tensors W4A16 (pack-quantized), one shard at a time."""
    import torch
    from compressed_tensors.compressors import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationScheme
    from compressed_tensors.quantization.utils import calculate_qparams
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    group = W4A16_CONFIG["config_groups"]["group_0"]
    scheme = QuantizationScheme(targets=group["targets"], weights={k: v for k, v in group["weights"].items()
                                                                   if k not in ("observer", "actorder")})
    size = scheme.weights.group_size
    for shard in sorted(base.glob("*.safetensors")):
        written: dict[str, torch.Tensor] = {}
        for name, w in load_file(str(shard)).items():
            module, _, leaf = name.rpartition(".")
            if leaf != "weight" or module.rpartition(".")[2] not in LINEAR:
                written[name] = w
                continue
            grouped = w.float().reshape(w.shape[0], -1, size)
            scale, zero = calculate_qparams(grouped.amin(-1), grouped.amax(-1), scheme.weights)
            parts = PackedQuantizationCompressor.compress(
                {"weight": w, "weight_scale": scale.to(w.dtype), "weight_zero_point": zero}, scheme)
            written.update({f"{module}.{k}": v for k, v in parts.items()})
        save_file(written, str(out / shard.name))
    config = json.loads((base / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "quantization_config": W4A16_CONFIG}))
    return out


def _summarize_in_child(folder: Path, cache: Path, model_id: str) -> tuple[float, float, float]:
    """(CPU seconds, peak RSS MB, wall ms) of summarizing one model in a fresh process."""
    code = ("import sys; from cnc.experiment.config import load_config; from cnc.precompute.run import precompute; "
            "from cnc.precompute.store import SummaryStore; c = load_config(sys.argv[1], cache_dir=sys.argv[2]); "
            "r = precompute(c, SummaryStore(c.cache_dir), progress=False, only=[sys.argv[3]]); "
            "sys.exit(1 if r.failed else 0)")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(cache), model_id])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"summarizing {model_id} failed (exit {proc.returncode})")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, wall


def _import_cost(folder: Path, cache: Path) -> float:
    """CPU seconds of a child that loads the folder and has nothing to summarize (imports, config)."""
    code = ("import sys; from cnc.experiment.config import load_config; from cnc.precompute.run import precompute; "
            "from cnc.precompute.store import SummaryStore; import transformers, gguf; "
            "c = load_config(sys.argv[1], cache_dir=sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(cache)])
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def scenarios(quick: bool = False) -> list[dict]:
    from cnc.app.cli import load
    from cnc.ui import layers

    shape = QUICK if quick else FULL
    records = []
    with tempfile.TemporaryDirectory(prefix="cnc-bench-quant-") as tmp:
        folder, cache = Path(tmp) / "models", Path(tmp) / "cache"
        kept = os.environ.get("CNC_BENCH_QUANT_DIR")  # a folder written by an earlier run: skip writing
        if kept and not quick and (Path(kept) / "llama-1b").is_dir():
            folder = Path(kept)
            files = {"float": folder / "llama-1b", **{k: folder / f"llama-1b-{k}.gguf" for k in ("F16", "Q8_0", "Q4_K_M")
                                                       if (folder / f"llama-1b-{k}.gguf").is_file()}}
            if not (folder / "llama-1b-W4A16" / "config.json").is_file():
                write_w4a16(folder / "llama-1b", folder / "llama-1b-W4A16")
            files["W4A16"] = folder / "llama-1b-W4A16"
        else:
            files = write_models(folder, shape)
        params = None
        fixed = _import_cost(folder, cache)
        per_param = {}
        for key in files:
            model_id = files[key].stem if files[key].suffix == ".gguf" else files[key].name
            cpu, rss, wall = _summarize_in_child(folder, cache, model_id)
            if params is None:
                from cnc.experiment.config import load_config

                params = int(load_config(folder, cache_dir=cache).experiment.models[model_id].metrics["Parameters"])
            per_param[key] = (cpu - fixed) / params
            records.append({"scenario": f"quantized.summarize.{key}", "ms": round(wall, 1), "params": params,
                            "cpu_s": round(cpu, 1), "cpu_ns_per_param": round(per_param[key] * 1e9, 2),
                            "x_float": round(per_param[key] / per_param["float"], 2), "peak_rss_mb": round(rss)})
        ctx = load(str(folder), str(cache), precompute=False, progress=False)
        models = [files[k].stem if files[k].suffix == ".gguf" else files[k].name for k in files]
        selection = {"models": models, "base": models[0]}
        state = layers.checked_state("weights", "error", None, "sqrt", None)

        def view() -> None:
            layers._TABLES.clear()
            layers._PACKS.clear()
            layers._COMPARISONS.clear()
            layers.render_body(ctx, selection, state)

        records.append({"scenario": "quantized.layers_view", "ms": median_ms(view, repeat=3), "models": len(models),
                        "params": params, "quantize_tool": "found" if quantize_tool() else "missing (F16 only)"})
    return records
