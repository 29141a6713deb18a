"""A tiny Llama and its real GGUF variants, made offline with llama.cpp's own converter and quantizer.

The float model (hidden 256, 2 layers, grouped-query attention: 4 heads, 2 KV heads; a SentencePiece
BPE tokenizer trained here in code) is trained for a few steps on the question/answer instances of
`tests.hf_models`, saved with `save_pretrained`, converted to GGUF F16 by `convert_hf_to_gguf.py` and
quantized by `llama-quantize` (tests/llama_cpp_tools.py builds both from the llama-cpp-python sdist).
Row lengths are multiples of 256, so K-quants (Q4_K_M, Q2_K) really use K-quant blocks.

`build_variants(folder)` returns {"base": model dir, "f16": gguf, "q8_0": gguf, ...}; it is cached per
folder (a second call reuses the files). `shared_variants()` builds them once per machine (beside the
llama.cpp build, keyed by this file's and tests/hf_models.py's text), so every test session and
every test module reuses one set: training and quantizing cost minutes on a busy 2-core machine.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from filelock import FileLock

from tests import hf_models
from tests.llama_cpp_tools import VERSION, LlamaCpp, cache_root, ensure_built

QUANTS = {"q8_0": "Q8_0", "q4_k_m": "Q4_K_M", "q2_k": "Q2_K"}


def corpus() -> list[str]:
    items = hf_models.instances(12)
    return hf_models.corpus() + [f"Question: {it['question']}\nAnswer: {it['answers'][0]}" for it in items]


def sentencepiece_tokenizer(folder: Path):
    """A SentencePiece BPE model trained on the corpus, as a Llama tokenizer (BOS <s>, EOS </s>, UNK <unk>)."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "corpus.txt"
    text.write_text("\n".join(corpus() * 4) + "\n")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "tokenizer"), model_type="bpe",
                                   vocab_size=160, character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0,
                                   pad_id=-1, byte_fallback=False, num_threads=1, minloglevel=2)
    text.unlink()
    (folder / "tokenizer.vocab").unlink()
    return LlamaTokenizer.from_pretrained(folder, legacy=False)  # converted from tokenizer.model


def build_base(folder: Path, seed: int = 0, steps: int = 60) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    if (folder / "config.json").exists():
        return folder
    tokenizer = sentencepiece_tokenizer(folder / "_tok")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False, rms_norm_eps=1e-5)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    tokenizer.pad_token = tokenizer.eos_token
    hf_models._train(model, tokenizer, steps=steps)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "tokenizer.model").write_bytes((folder / "_tok" / "tokenizer.model").read_bytes())
    for f in (folder / "_tok").iterdir():
        f.unlink()
    (folder / "_tok").rmdir()
    return folder


def build_variants(folder: Path, quants: dict[str, str] = QUANTS, tools: LlamaCpp | None = None) -> dict[str, Path]:
    """The base model directory, its F16 GGUF and each quantization of it (real converter, real quantizer)."""
    folder = Path(folder)
    tools = tools or ensure_built()
    out = {"base": build_base(folder / "tiny-llama")}
    out["f16"] = folder / "tiny-llama-f16.gguf"
    if not out["f16"].exists():
        tools.convert(out["base"], out["f16"], "f16")
    for key, qtype in quants.items():
        out[key] = folder / f"tiny-llama-{qtype}.gguf"
        if not out[key].exists():
            tools.quantize(out["f16"], out[key], qtype)
    return out


def shared_variants() -> dict[str, Path]:
    """`build_variants` into the machine's cache (read-only for tests: copy or link, never write there)."""
    sources = b"".join(Path(m.__file__).read_bytes() for m in (hf_models,)) + Path(__file__).read_bytes()
    folder = cache_root() / VERSION / f"tiny-llama-{hashlib.sha256(sources).hexdigest()[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        return build_variants(folder)


def instances_file(folder: Path, n: int = 12) -> Path:
    path = Path(folder) / "questions.jsonl"
    if not path.exists():
        path.write_text("\n".join(json.dumps(it) for it in hf_models.instances(n)) + "\n")
    return path


if __name__ == "__main__":
    import sys

    for k, v in build_variants(Path(sys.argv[1])).items():
        print(k, v)
