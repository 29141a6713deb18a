"""Quantized Hugging Face checkpoints (compressed-tensors, GPTQ, AWQ): what the config says, what
the readers list and dequantize, and what HFTask runs.

The checkpoints are real: a tiny Llama built here, quantized by llm-compressor's `oneshot`
(compressed-tensors W8A16 / W4A16, RTN and GPTQ) and exported by AutoRound in the GPTQ and AWQ
formats, in a virtualenv of their own (tests/llmcompressor_models.py). Dequantization is checked
against compressed-tensors' own decompression (GPTQ / AWQ: no package here decodes them on the
CPU, so against the float base, within one quantization step of round-to-nearest).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_experiments  # noqa: E402  (tests/ is on sys.path)
import hf_models  # noqa: E402
import llmcompressor_models  # noqa: E402

from cnc.evaluation.quantized import open_quantized  # noqa: E402
from cnc.evaluation.quantized.hf_checkpoint import unpack_bits  # noqa: E402
from cnc.experiment.errors import ModelNotRunnable, TaskError  # noqa: E402
from cnc.experiment.hf_quantization import parse_quantization_config, read_quantization  # noqa: E402

CT = ("w8a16-rtn", "w4a16-gptq", "w4a16-asym-rtn", "w8a8-int", "fp8-dynamic")


@pytest.fixture(scope="module")
def made():
    """(base directory, {variant: directory}), built once per machine."""
    return llmcompressor_models.artifacts()


@pytest.fixture(scope="module")
def base_weights(made):
    from safetensors.torch import load_file

    return {k: v.float().numpy() for k, v in load_file(str(made[0] / "model.safetensors")).items()}


def _layers(path: Path) -> dict:
    return {s.name: (s, load) for s, load in open_quantized(path).tensors()}


def _quantized(storage) -> bool:
    return "bits" in storage.scheme


def _rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


# -- what the config says


def test_describe_names_the_operation(made):
    _, variants = made
    assert open_quantized(variants["w8a16-rtn"]).describe() == "compressed-tensors W8A16, group 128"
    assert open_quantized(variants["w4a16-gptq"]).describe() == "compressed-tensors W4A16, group 128"
    assert open_quantized(variants["w4a16-asym-rtn"]).describe() == "compressed-tensors W4A16 asym, group 128"
    assert open_quantized(variants["w8a8-int"]).describe() == "compressed-tensors W8A8, per channel"
    assert open_quantized(variants["fp8-dynamic"]).describe() == "compressed-tensors FP8 W8A8, per channel"
    assert open_quantized(variants["gptq-autoround"]).describe() == "GPTQ 4-bit g128"
    assert open_quantized(variants["awq-autoround"]).describe() == "AWQ 4-bit g128"
    assert open_quantized(made[0]) is None  # float weights: no reader claims them


@pytest.mark.parametrize("variant", CT)
def test_storage_per_layer_is_what_config_and_file_say(made, base_weights, variant):
    from safetensors import safe_open

    path = made[1][variant]
    config = json.loads((path / "config.json").read_text())["quantization_config"]
    weights = config["config_groups"]["group_0"]["weights"]
    ignore = set(config["ignore"])
    where = f"g{weights['group_size']}" if weights["strategy"] == "group" else weights["strategy"]
    expected = f"{weights['type']}{weights['num_bits']} {where} {'sym' if weights['symmetric'] else 'asym'}"
    layers = _layers(path)
    assert set(layers) == set(base_weights)  # named after the float model's parameters
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        stored = set(f.keys())
        for name, (s, _) in layers.items():
            module = name.rsplit(".", 1)[0]
            assert s.shape == base_weights[name].shape
            if f"{module}.weight_scale" in stored:
                parts = [f.get_tensor(k) for k in stored if k.rsplit(".", 1)[0] == module
                         and k.rsplit(".", 1)[1] in ("weight", "weight_packed", "weight_scale", "weight_zero_point")]
                assert s.storage == expected
                assert s.bits_per_weight == pytest.approx(sum(t.numel() * t.element_size() * 8 for t in parts)
                                                          / np.prod(s.shape))
                assert s.scheme["bits"] == weights["num_bits"] and s.scheme["group_size"] == weights["group_size"]
                assert s.scheme["symmetric"] == weights["symmetric"] and not s.scheme["ignored"]
            else:
                assert s.scheme["ignored"] == (module in ignore)
                assert s.storage == ("F32 (ignored)" if module in ignore else "F32")
                assert s.bits_per_weight == 32
    quantized = [s for s, _ in layers.values() if _quantized(s)]
    # every Linear of the decoder layers but the ones the recipe ignored
    assert len(quantized) == 2 * 7 - sum(1 for i in ignore if "layers" in i)
    expected_bits = {"w8a16-rtn": 8 + 32 / 128, "w4a16-gptq": 4 + 32 / 128, "w4a16-asym-rtn": 4 + 32 / 128 + 4 / 128}
    if variant in expected_bits:
        assert {round(s.bits_per_weight, 4) for s in quantized} == {round(expected_bits[variant], 4)}
    else:  # one float32 scale per output channel
        assert {round(s.bits_per_weight, 4) for s in quantized} == {round(8 + 32 / s.shape[1], 4) for s in quantized}


def test_ignored_layer_of_the_recipe_is_marked(made):
    layers = _layers(made[1]["w4a16-gptq"])
    down = layers["model.layers.0.mlp.down_proj.weight"][0]
    assert down.scheme["ignored"] and down.storage == "F32 (ignored)"
    assert layers["model.layers.1.mlp.down_proj.weight"][0].storage == "int4 g128 sym"


# -- dequantization


@pytest.mark.parametrize("variant", CT)
def test_dequantized_equals_compressed_tensors_decompression(made, base_weights, variant):
    """Tensor by tensor, and so is each layer's relative error against the float base."""
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationConfig
    from safetensors import safe_open

    path = made[1][variant]
    block = json.loads((path / "config.json").read_text())["quantization_config"]
    scheme = QuantizationConfig.model_validate(block).config_groups["group_0"]
    compressor = BaseCompressor.get_value_from_registry(block["format"])
    checked = 0
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        for name, (s, load) in _layers(path).items():
            module = name.rsplit(".", 1)[0]
            if not _quantized(s):
                continue
            local = {k.rsplit(".", 1)[1]: f.get_tensor(k) for k in f.keys() if k.rsplit(".", 1)[0] == module}
            theirs = compressor.decompress(local, scheme)["weight"].float().numpy()
            ours = load()
            np.testing.assert_array_equal(ours, theirs)
            assert _rel_error(ours, base_weights[name]) == _rel_error(theirs, base_weights[name])
            checked += 1
    assert checked >= 13


@pytest.mark.parametrize("variant", [*CT, "gptq-autoround", "awq-autoround"])
def test_per_layer_error_is_that_of_its_bits(made, base_weights, variant):
    """Relative weight error ‖W_deq − W‖ / ‖W‖ per layer: int8 about 0.005, float8 0.02, int4 0.1; the
    layers left in float are the base's (AutoRound stores them in bfloat16)."""
    errors = {}
    for name, (s, load) in _layers(made[1][variant]).items():
        w, base = load(), base_weights[name]
        assert w.dtype == np.float32 and w.shape == base.shape
        errors[name] = (s, _rel_error(w, base))
    quantized = {n: e for n, (s, e) in errors.items() if _quantized(s)}
    floats = {n: e for n, (s, e) in errors.items() if not _quantized(s)}
    low, high = {"w8a16-rtn": (0.001, 0.01), "w8a8-int": (0.001, 0.02), "fp8-dynamic": (0.005, 0.06)}.get(variant,
                                                                                                      (0.03, 0.2))
    assert all(low < e < high for e in quantized.values()), quantized
    assert max(floats.values()) < (0.01 if "autoround" in variant else 1e-7)  # AutoRound saves bf16


@pytest.mark.parametrize("variant", ["gptq-autoround", "awq-autoround"])
def test_gptq_awq_dequantize_within_one_step_of_the_base(made, base_weights, variant):
    """Round-to-nearest puts a weight within half a step (its group's scale) of the float one; a
    symmetric range clips the largest ones by up to a step; the float16 scales add a little. A wrong
    unpacking order or zero-point convention puts weights many steps away."""
    reader = open_quantized(made[1][variant])
    checked = 0
    for s, load in reader.tensors():
        if not s.storage.startswith("int"):
            continue
        module = s.name.rsplit(".", 1)[0]
        scales = np.abs(reader.files.get(f"{module}.scales").float().numpy())  # [groups, out]; GPTQ's may be < 0
        steps = np.abs(load() - base_weights[s.name]) / np.repeat(scales.T, 128, axis=1)[:, : s.shape[1]]
        assert steps.max() < 1.05 and (steps > 0.51).mean() < 0.01, (s.name, steps.max())
        checked += 1
    assert checked == 14


def test_unpack_bits_reverses_compressed_tensors_packing():
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32

    rng = np.random.default_rng(0)
    for bits in range(1, 9):
        values = torch.tensor(rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(5, 70)), dtype=torch.int8)
        packed = pack_to_int32(values, bits)
        np.testing.assert_array_equal(unpack_bits(packed, bits, 70) - (1 << (bits - 1)), values.numpy())


def test_listing_reads_no_weights(made, monkeypatch):
    """Storage comes from the file's header; values are read only by each tensor's loader, one layer
    at a time."""
    reader = open_quantized(made[1]["w4a16-asym-rtn"])
    read: list[str] = []
    get = type(reader.files).get
    monkeypatch.setattr(type(reader.files), "get", lambda self, name: read.append(name) or get(self, name))
    listed = list(reader.tensors())
    assert all(n.endswith("weight_shape") for n in read)
    read.clear()
    listed[3][1]()
    module = listed[3][0].name.rsplit(".", 1)[0]
    assert {n.rsplit(".", 1)[0] for n in read if not n.endswith("weight_shape")} <= {module}


# -- HFTask: running the checkpoints


@pytest.fixture(scope="module")
def task(made, tmp_path_factory):
    from cnc.evaluation.hf_task import HFTask

    data = hf_models.write_jsonl(tmp_path_factory.mktemp("data") / "data.jsonl", hf_models.instances(6))
    return HFTask(model_dir=str(made[0]), data=str(data), prompt_template="Question: {question}\nAnswer:",
                  max_new_tokens=6)


@pytest.mark.parametrize("variant", ["w8a16-rtn", "w4a16-gptq", "w8a8-int", "fp8-dynamic"])
def test_hftask_generation_equals_transformers_own(made, task, variant, one_thread):
    """HFTask loads compressed-tensors on the CPU (weights decompressed at load; W8A8 and FP8 keep
    quantizing activations in the forward); transformers' default route keeps the weights
    compressed and decompresses them in the first forward: same tokens, same weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = made[1][variant]
    model = task.load_model(str(path))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # dense float weights
    prompts = task.eval_data()[0]
    ours = task.generate(model, prompts, 6)
    theirs_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    theirs = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")
        out = theirs_model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        theirs.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    assert ours == theirs
    # the task's model holds exactly the weights the reader dequantizes (what Layers compares)
    params = dict(model.named_parameters())
    for s, load in open_quantized(path).tensors():
        np.testing.assert_allclose(params[s.name].detach().numpy(), load(), rtol=0, atol=1e-6)


def test_hftask_runs_asymmetric_checkpoints(made, task, one_thread):
    """transformers 5.23's compressed route cannot load asymmetric pack-quantized weights (packed
    zero points); HFTask's load-time decompression can."""
    model = task.load_model(str(made[1]["w4a16-asym-rtn"]))
    texts = task.generate(model, task.eval_data()[0][:2], 4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


@pytest.mark.parametrize("variant", ["gptq-autoround", "awq-autoround"])
def test_gptq_awq_say_they_cannot_run_here_and_still_list_layers(made, task, variant):
    with pytest.raises(ModelNotRunnable, match=r"cannot run here.*gptqmodel.*not installed"):
        task.load_model(str(made[1][variant]))
    assert sum(s.storage == "int4 g128 " + ("sym" if "gptq" in variant else "asym")
               for s, _ in open_quantized(made[1][variant]).tensors()) == 14


# -- bad configs


BAD = [
    (["config_groups", "group_0", "weights", "num_bits"], "four",
     "config_groups.group_0.weights.num_bits is \"four\"; expected an integer from 1 to 16"),
    (["config_groups", "group_0", "weights", "strategy"], "token", "weights.strategy is \"token\""),
    (["config_groups", "group_0", "format"], "marlin-24", "config_groups.group_0.format is \"marlin-24\""),
    (["config_groups", "group_0", "targets"], [], "config_groups.group_0.targets is []"),
    (["config_groups", "group_0", "weights", "group_size"], None, "weights.group_size is null"),
    (["ignore"], "lm_head", "quantization_config.ignore is \"lm_head\""),
    (["quant_method"], "bitsandbytes", "quant_method is \"bitsandbytes\"; expected one of compressed-tensors"),
]


@pytest.mark.parametrize("keys,value,message", BAD)
def test_bad_quantization_config_names_file_and_field(made, task, tmp_path, keys, value, message):
    path = tmp_path / "broken"
    shutil.copytree(made[1]["w4a16-asym-rtn"], path)
    config = json.loads((path / "config.json").read_text())
    node = config["quantization_config"]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    (path / "config.json").write_text(json.dumps(config))
    for attempt in (lambda: open_quantized(path), lambda: task.load_model(str(path))):
        with pytest.raises(TaskError) as info:
            attempt()
        assert str(path / "config.json") in str(info.value) and message in str(info.value)


def test_config_that_is_not_json_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(TaskError, match=r"config\.json: not readable JSON"):
        read_quantization(tmp_path)


# quantization_config blocks as public checkpoints ship them: TheBloke/Llama-2-7B-Chat-GPTQ
# (AutoGPTQ; Intel neural-compressor writes the same block, see its change_config_to_hf_format),
# a GPTQModel v2 export with a dynamic rule, AutoAWQ's gemm block, and llm-compressor's FP8 block.
PUBLIC = [
    ({"bits": 4, "group_size": 128, "damp_percent": 0.01, "desc_act": True, "sym": True, "true_sequential": True,
      "model_name_or_path": None, "model_file_base_name": "model", "quant_method": "gptq"},
     "GPTQ 4-bit g128", "int4 g128 sym"),
    ({"bits": 8, "group_size": -1, "desc_act": False, "sym": False, "quant_method": "gptq",
      "checkpoint_format": "gptq_v2", "dynamic": {"-:.*lm_head": {}}},
     "GPTQ 8-bit per channel", "int8 channel asym"),
    ({"quant_method": "awq", "zero_point": True, "group_size": 128, "bits": 4, "version": "gemm",
      "modules_to_not_convert": ["visual"]}, "AWQ 4-bit g128", "int4 g128 asym"),
    ({"quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
      "ignore": ["lm_head"], "config_groups": {"group_0": {
          "targets": ["Linear"], "input_activations": {"num_bits": 8, "type": "float", "strategy": "token",
                                                       "dynamic": True, "symmetric": True},
          "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True,
                      "dynamic": False}}}},
     "compressed-tensors FP8 W8A8, per channel", "float8 channel sym"),
]


@pytest.mark.parametrize("block,described,storage", PUBLIC)
def test_public_configs_parse(block, described, storage, tmp_path):
    quant = parse_quantization_config(block, tmp_path / "config.json")
    assert quant.describe() == described
    assert quant.scheme_for("model.layers.3.self_attn.q_proj").weights.storage == storage
    if quant.method == "awq":
        assert quant.is_ignored("model.visual.blocks.0.attn") and not quant.is_ignored("model.layers.0.mlp")
    if quant.method == "gptq" and quant.extra["checkpoint_format"] == "gptq_v2":
        assert quant.is_ignored("lm_head") and not quant.is_ignored("model.layers.0.mlp.up_proj")


# -- through the app's precompute, and the Layers view built from what it stored


@pytest.fixture(scope="module")
def quant_ctx(made, tmp_path_factory):
    """A base, a compressed-tensors variant (run on the CPU) and a GPTQ one (no kernels here),
    precomputed: (AppContext, precompute report)."""
    from cnc.server.context import AppContext

    base, variants = made
    folder = tmp_path_factory.mktemp("quant-exp")
    data = hf_models.write_jsonl(folder / "data.jsonl", hf_models.instances(4))
    options = {"model_dir": str(base), "data": str(data), "prompt_template": "Question: {question}\nAnswer:",
               "max_new_tokens": 4}
    cfg, store, report = hf_experiments.precomputed(folder, [
        f"{{id: base, checkpoint: {base}}}",
        f"{{id: w4, base: base, checkpoint: {variants['w4a16-asym-rtn']}}}",
        f"{{id: gptq, base: base, checkpoint: {variants['gptq-autoround']}}}"], options, activation_sample=2)
    return AppContext(cfg, store), report


def test_precompute_runs_compressed_tensors_and_keeps_layers_of_what_cannot_run(made, quant_ctx):
    """The GPTQ model's Layers summaries come from its files and its notice says why it has no outputs."""
    ctx, report = quant_ctx
    variants = made[1]
    assert sorted(report.computed) == ["base", "w4"]
    assert "cannot run here" in report.failed["gptq"] and "gptqmodel" in report.failed["gptq"]
    assert ctx.status("w4") == "ready" and ctx.status("gptq").startswith("failed: ")
    assert ctx.outputs("gptq") is None and len(ctx.outputs("w4")["texts"]) == 4
    base_params, gptq_params = ctx.params("base"), ctx.params("gptq")
    assert set(gptq_params) == set(base_params)
    assert {n: s["type"] for n, s in gptq_params.items()} == {n: s["type"] for n, s in base_params.items()}
    for model_id, variant in (("gptq", "gptq-autoround"), ("w4", "w4a16-asym-rtn")):
        stored = ctx.params(model_id)
        for s, load in open_quantized(variants[variant]).tensors():
            module = s.name.rsplit(".", 1)[0]
            if s.name.endswith(".weight") and s.storage.startswith("int"):
                assert stored[module]["l2"] == pytest.approx(float(np.linalg.norm(load().astype(np.float64))),
                                                             rel=1e-5)


def test_layers_view_shows_the_change_of_each_quantized_layer(made, base_weights, quant_ctx):
    """The Layers callback's change per cell (RMS change at the sampled positions, relative to the
    base's RMS) agrees with the layer's relative error computed directly from the dequantized weights."""
    from cnc.ui import layers as ui
    from tests.test_layers_callbacks import as_json, by_class, texts

    ctx, _ = quant_ctx
    notices: list[str] = []
    page = as_json(ui.layout(ctx, {"models": "base,w4,gptq", "tab": "layers", "lmode": "weights", "lopen": "*"},
                             notices))
    assert notices == []
    rows = {by_class(r, "module-name")[0]["props"]["title"]: r for r in by_class(page, "layers-row")}
    errors = {s.name.rsplit(".", 1)[0]: _rel_error(load(), base_weights[s.name])
              for s, load in open_quantized(made[1]["gptq-autoround"]).tensors() if s.storage.startswith("int")}
    assert len(errors) == 14 and set(errors) <= set(rows)
    for module, error in errors.items():
        cells = by_class(rows[module], "layers-cell")
        assert [c["props"]["title"].split(":")[0] for c in cells] == ["base", "w4", "gptq"]
        shown = float(" ".join(texts(cells[2])).split("Δ ")[1].split("%")[0]) / 100
        assert shown == pytest.approx(error, rel=0.25), module  # a sample of positions, not every weight


def test_gptq_per_module_bit_widths_are_named_not_misread(tmp_path):
    block = {"quant_method": "gptq", "bits": 4, "group_size": 128, "dynamic": {"+:.*down_proj": {"bits": 8}}}
    with pytest.raises(TaskError, match=r'config\.json: quantization_config\.dynamic is "\+:\.\*down_proj"'):
        parse_quantization_config(block, tmp_path / "config.json")
