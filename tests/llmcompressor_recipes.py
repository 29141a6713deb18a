"""Run inside the llm-compressor virtualenv (tests/llmcompressor_models.py builds it): quantizes
one float model directory with llm-compressor's `oneshot` into compressed-tensors directories, and
with AutoRound (installed with llm-compressor) into GPTQ and AWQ checkpoints (its round-to-nearest
mode, exported in the auto_gptq and auto_awq formats).

    python llmcompressor_recipes.py BASE_DIR OUT_ROOT

Each variant goes to OUT_ROOT/<name>/ (see RECIPES). Not imported by the tests themselves: the
test environment's transformers is newer than llm-compressor accepts.
"""
from __future__ import annotations

import sys
from pathlib import Path

CALIBRATION = [
    "Question: what color is the cat\nAnswer: red cat",
    "Question: what color is the dog on the mat\nAnswer: blue",
    "Question: what color is the bird\nAnswer: green",
    "the cat sat on the mat under the tree",
    "where is the capital of france paris",
    "the dog ran under the blue sky",
    "what is the color of the big red bird",
    "who sat on the small green mat",
]


def recipes():
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

    return {
        # round-to-nearest, int8 per output channel, symmetric
        "w8a16-rtn": [QuantizationModifier(targets="Linear", scheme="W8A16", ignore=["lm_head"])],
        # GPTQ, int4 in groups of 128, symmetric; one layer left in float through `ignore`
        "w4a16-gptq": [GPTQModifier(targets="Linear", scheme="W4A16", block_size=128, dampening_frac=0.01,
                                    ignore=["lm_head", "re:.*layers\\.0\\.mlp\\.down_proj$"])],
        # round-to-nearest, int4 in groups of 128 with zero points
        "w4a16-asym-rtn": [QuantizationModifier(targets="Linear", scheme="W4A16_ASYM", ignore=["lm_head"])],
        # int8 weights per channel and int8 activations per token, quantized as they come (int-quantized)
        "w8a8-int": [QuantizationModifier(targets="Linear", scheme="W8A8", ignore=["lm_head"])],
        # float8 weights per channel, float8 activations per token (float-quantized)
        "fp8-dynamic": [QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=["lm_head"])],
    }


def main(base: Path, out_root: Path) -> None:
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    encoded = tokenizer(CALIBRATION)
    calibration = Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})
    for name, recipe in recipes().items():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
        needs_data = any(type(m).__name__ == "GPTQModifier" for m in recipe)
        oneshot(model=model, recipe=recipe, dataset=calibration if needs_data else None,
                num_calibration_samples=len(CALIBRATION), max_seq_length=64)
        out = out_root / name
        model.save_pretrained(out, save_compressed=True)
        tokenizer.save_pretrained(out)
        print(out)
    autoround_exports(base, out_root)


def autoround_exports(base: Path, out_root: Path) -> None:
    import shutil

    import torch
    from auto_round import AutoRound
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name, fmt, sym in (("gptq-autoround", "auto_gptq", True), ("awq-autoround", "auto_awq", False)):
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        work = out_root / f".{name}"
        AutoRound(model, tokenizer, bits=4, group_size=128, sym=sym, iters=0, disable_opt_rtn=True) \
            .quantize_and_save(str(work), format=fmt)
        written = next(p.parent for p in work.rglob("config.json"))  # AutoRound adds a subfolder
        shutil.move(str(written), str(out_root / name))
        shutil.rmtree(work, ignore_errors=True)
        print(out_root / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
