"""Real compressed-tensors checkpoints for tests, written by llm-compressor's `oneshot`.

`llmcompressor==0.14.0.1` requires `transformers<=5.17.0` while the app pins a newer one, so it runs
in a virtualenv of its own, built once per machine (file-locked, keyed by the pinned versions) under
``$CNC_LLMCOMPRESSOR_CACHE`` (default ``~/.cache/cnc-llmcompressor``)/<key>/venv. The venv sees the
system site-packages (torch, the CPU build) and installs llm-compressor with its own transformers
and compressed-tensors over them; building it took about 30 s here. ``python -m
tests.llmcompressor_models`` builds it ahead of the tests (``.ci/run`` does).

A tiny Llama (hidden 256, so groups of 128 fit; grouped-query attention) is built, trained and
saved by our code, then `tests/llmcompressor_recipes.py` quantizes it in the venv: compressed-tensors
directories from llm-compressor, GPTQ and AWQ checkpoints from AutoRound (an llm-compressor
dependency; GPTQModel and AutoAWQ need CUDA builds).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from filelock import FileLock

PINS = ("llmcompressor==0.14.0.1", "transformers==5.17.0")
KEY = "-".join(p.replace("==", "") for p in PINS)
RECIPES = Path(__file__).with_name("llmcompressor_recipes.py")
VARIANTS = ("w8a16-rtn", "w4a16-gptq", "w4a16-asym-rtn", "w8a8-int", "fp8-dynamic", "gptq-autoround",
            "awq-autoround")


def cache_root() -> Path:
    return Path(os.environ.get("CNC_LLMCOMPRESSOR_CACHE", Path.home() / ".cache" / "cnc-llmcompressor"))


def ensure_venv() -> Path:
    """The venv's python; built once per machine (parallel test processes wait for one build)."""
    folder = cache_root() / KEY
    folder.mkdir(parents=True, exist_ok=True)
    python = folder / "venv" / "bin" / "python"
    done = folder / "built.ok"
    with FileLock(str(folder / ".lock")):
        if done.exists() and python.exists():
            return python
        venv.EnvBuilder(system_site_packages=True, clear=True, with_pip=True).create(folder / "venv")
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True,
                       env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        done.write_text(" ".join(PINS))
    return python


def build_llama(folder: Path, seed: int = 0) -> Path:
    """A tiny Llama with the tests' byte-level BPE tokenizer, trained a few steps and saved (float32)."""
    import hf_models
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = hf_models.bpe_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False)
    return hf_models._trained_and_saved(LlamaForCausalLM, config, tokenizer, folder, seed)


def quantized_variants(base: Path, out_root: Path) -> dict[str, Path]:
    """Each recipe's compressed-tensors directory, written by llm-compressor from `base`."""
    python = ensure_venv()
    out_root.mkdir(parents=True, exist_ok=True)
    # PYTHONPATH would let the test environment's packages shadow the venv's
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")  # nothing is downloaded
    run = subprocess.run([str(python), str(RECIPES), str(base), str(out_root)], env=env, capture_output=True,
                         text=True)
    if run.returncode:
        raise RuntimeError(f"llm-compressor failed ({run.returncode}):\n{run.stderr[-4000:]}")
    return {name: out_root / name for name in VARIANTS}


def artifacts() -> tuple[Path, dict[str, Path]]:
    """The tiny Llama and its quantized variants, made once per machine and kept beside the venv,
    keyed by the sources that make them (a changed recipe or model makes new ones)."""
    here = Path(__file__).resolve().parent
    sources = b"".join((here / f).read_bytes() for f in ("hf_models.py", "llmcompressor_models.py", RECIPES.name))
    folder = cache_root() / KEY / f"models-{hashlib.sha256(sources).hexdigest()[:12]}"
    base, variants = folder / "base", {name: folder / name for name in VARIANTS}
    ensure_venv()
    with FileLock(str(folder) + ".lock"):
        if not (folder / "built.ok").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build_llama(base)
            quantized_variants(base, folder)
            (folder / "built.ok").write_text("")
    return base, variants


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    made, _ = artifacts()
    print(ensure_venv())
    print(made.parent)
