"""Behaviors of GGUF variants: a folder with a prompt file runs HFTask, which loads each .gguf through
transformers (weights dequantized) and feeds every model the base tokenizer's token ids. This file
runs the float path (`CNC_GGUF_RUNTIME=transformers`, as without llama-cpp-python);
tests/test_llama_cpp_behaviors.py runs llama.cpp's own kernels."""
from __future__ import annotations

import pytest

from cnc.app.cli import load
from cnc.evaluation.hf_task import HFTask
from cnc.experiment.errors import TaskError
from tests import gguf_models
from tests.gguf_session import prompted_folder

IDS = ["tiny-llama", "tiny-llama-Q8_0", "tiny-llama-Q2_K"]


@pytest.fixture(scope="module", autouse=True)
def float_kernels():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNC_GGUF_RUNTIME", "transformers")
        yield


@pytest.fixture(scope="module")
def prompted_ctx(gguf_variants, tmp_path_factory):
    folder = prompted_folder(gguf_variants, tmp_path_factory.mktemp("gguf-prompted"), n=8)
    return load(str(folder), str(folder / "cache"), progress=False)


def test_prompt_file_makes_a_generative_task(prompted_ctx):
    assert prompted_ctx.config.task.entry == "cnc.evaluation.hf_task:HFTask"
    assert all(prompted_ctx.status(m) == "ready" for m in IDS), [prompted_ctx.status(m) for m in IDS]
    assert prompted_ctx.task_data()["kind"] == "generative"
    assert "storage" in prompted_ctx.params("tiny-llama-Q2_K")["lm_head"]  # Layers from the GGUF reader


def test_transformers_loaded_gguf_outputs_equal_the_stored_ones(prompted_ctx, gguf_variants):
    opts = prompted_ctx.config.task.options
    task = HFTask(**opts)
    prompts, _ = task.eval_data()
    for mid, key in (("tiny-llama-Q8_0", "q8_0"), ("tiny-llama-Q2_K", "q2_k")):
        model = task.load_model(str(gguf_variants[key]))
        assert model.cnc_runtime == "transformers, dequantized to float"
        assert prompted_ctx.outputs(mid)["runtime"] == model.cnc_runtime
        texts = task.generate(model, prompts, 16)
        stored = prompted_ctx.outputs(mid)["texts"]
        assert texts == list(stored)
    base = prompted_ctx.outputs("tiny-llama")["texts"]
    q8 = prompted_ctx.outputs("tiny-llama-Q8_0")["texts"]
    assert sum(a == b for a, b in zip(base, q8)) >= len(base) // 2  # Q8_0 mostly answers as the float base


def test_a_gguf_with_another_vocabulary_is_refused_with_the_reason(gguf_variants, tmp_path):
    base = tmp_path / "other-base"
    base.mkdir()
    import json
    import shutil

    for f in gguf_variants["base"].iterdir():
        shutil.copy(f, base / f.name)
    config = json.loads((base / "config.json").read_text())
    config["vocab_size"] = 170
    (base / "config.json").write_text(json.dumps(config))
    task = HFTask(model_dir=str(base), data=str(gguf_models.instances_file(tmp_path, 4)))
    with pytest.raises(TaskError, match="vocabulary has 160 tokens, the base .* has 170"):
        task.load_model(str(gguf_variants["q8_0"]))


def test_behaviors_says_which_runtime_ran(prompted_ctx):
    from cnc.ui import behaviors

    notes = behaviors.missing_notes(prompted_ctx, IDS, None)
    text = " ".join(str(n.children) for n in notes)
    assert "tiny-llama-Q8_0, tiny-llama-Q2_K: run through transformers, dequantized to float (float kernels" in text
    assert "llama.cpp kernels (" not in text
