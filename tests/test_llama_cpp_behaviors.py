"""Behaviors of GGUF variants through llama.cpp's own kernels (llama-cpp-python on the tests' llama.cpp
build): stored greedy outputs against llama-cpp-python called directly, KL against the float base
next to the transformers path's, the runtime in the cache key, and the label in Behaviors."""
from __future__ import annotations

import numpy as np
import pytest

from cnc.app.cli import load
from cnc.evaluation.hf_task import HFTask
from cnc.evaluation.llama_cpp_backend import LlamaCppModel
from cnc.precompute.run import model_hash, pending_models
from cnc.ui import behaviors
from cnc.ui.behaviors_state import state_from_query
from tests.gguf_session import prompted_folder

IDS = ["tiny-llama", "tiny-llama-Q8_0", "tiny-llama-Q2_K"]
FLOAT = "transformers, dequantized to float"


@pytest.fixture(scope="module", autouse=True)
def auto_runtime(llama_cpp_python):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNC_GGUF_RUNTIME", "auto")
        yield


@pytest.fixture(scope="module")
def folder(gguf_variants, tmp_path_factory):
    return prompted_folder(gguf_variants, tmp_path_factory.mktemp("gguf-llama-cpp"), n=12)


@pytest.fixture(scope="module")
def llama_ctx(folder):
    return load(str(folder), str(folder / "cache"), progress=False)


@pytest.fixture(scope="module")
def float_outputs(folder):
    """The same folder precomputed through transformers (another cache): {model id: outputs}."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNC_GGUF_RUNTIME", "transformers")
        ctx = load(str(folder), str(folder / "cache-float"), progress=False)
        return {m: ctx.outputs(m) for m in IDS}


def label(version: str) -> str:
    return f"llama.cpp kernels (llama-cpp-python {version})"


def test_gguf_models_run_through_llama_cpp(llama_ctx, llama_cpp_python):
    assert all(llama_ctx.status(m) == "ready" for m in IDS), [llama_ctx.status(m) for m in IDS]
    assert llama_ctx.outputs("tiny-llama-Q8_0")["runtime"] == label(llama_cpp_python)
    assert llama_ctx.outputs("tiny-llama-Q2_K")["runtime"] == label(llama_cpp_python)
    assert "runtime" not in llama_ctx.outputs("tiny-llama")  # the float base: transformers, not a GGUF
    task = HFTask(**llama_ctx.config.task.options)
    model = task.load_model(str(llama_ctx.experiment.models["tiny-llama-Q8_0"].checkpoint))
    assert isinstance(model, LlamaCppModel)
    assert "storage" in llama_ctx.params("tiny-llama-Q2_K")["lm_head"]  # Layers still from the GGUF reader


def test_greedy_outputs_of_q8_0_match_llama_cpp_python_called_directly(llama_ctx, gguf_variants):
    """llama-cpp-python's own greedy sampler, fed the base tokenizer's ids, gives the stored texts."""
    import llama_cpp

    task = HFTask(**llama_ctx.config.task.options)
    prompts, _ = task.eval_data()
    n_new = llama_ctx.task_data()["generation"]["max_new_tokens"]
    llm = llama_cpp.Llama(str(gguf_variants["q8_0"]), n_ctx=256, verbose=False)
    texts = []
    for ids in task.encode_prompts(prompts):
        new = []
        for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            if token == llm.token_eos() or len(new) == n_new:
                break
            new.append(token)
        texts.append(task.tokenizer.decode(new, skip_special_tokens=True))
    assert texts == list(llama_ctx.outputs("tiny-llama-Q8_0")["texts"]) and all(texts)
    # past the end-of-sequence token too (the tiny model's answers are short): 24 greedy tokens each
    ours = LlamaCppModel(gguf_variants["q8_0"], frozenset(), task.config.vocab_size)
    for ids in task.encode_prompts(prompts[:4]):
        theirs = []
        for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            theirs.append(token)
            if len(theirs) == 24:
                break
        assert ours.run(ids, None, 24)[0] == theirs and len(set(theirs)) > 3
    ours.close()
    llm.close()


def test_kl_of_q8_0_is_small_and_q2_k_larger_as_through_transformers(llama_ctx, float_outputs):
    kl = {m: float(np.mean(llama_ctx.outputs(m)["kl"].astype(np.float64))) for m in IDS[1:]}
    kl_float = {m: float(np.mean(float_outputs[m]["kl"].astype(np.float64))) for m in IDS[1:]}
    assert kl["tiny-llama-Q8_0"] < 1e-3 and kl["tiny-llama-Q2_K"] > 10 * kl["tiny-llama-Q8_0"], kl
    # the same rounded weights either way: the quantized arithmetic moves KL, not its size
    for m in IDS[1:]:
        assert kl_float[m] / 3 < kl[m] < kl_float[m] * 3 + 1e-5, (m, kl, kl_float)
    q8, q8_float = llama_ctx.outputs("tiny-llama-Q8_0"), float_outputs["tiny-llama-Q8_0"]
    assert np.array_equal(q8["ntokens"], q8_float["ntokens"])  # the same token ids went in
    assert np.abs(q8["nll"] - q8_float["nll"]).max() < 0.05
    top1 = llama_ctx.outputs("tiny-llama-Q8_0")["top1"]
    assert top1.mean() > 0.9


def test_one_runtime_is_never_served_as_the_other(llama_ctx, llama_cpp_python):
    """The runtime is in a GGUF model's cache key: under the float path the llama.cpp outputs are
    not found (the GGUF models are pending), the float base's key does not change."""
    exp, store = llama_ctx.experiment, llama_ctx.store
    keys = {m: model_hash(store, exp.models[m]) for m in IDS}
    assert pending_models(llama_ctx.config, store) == []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNC_GGUF_RUNTIME", "transformers")
        floats = {m: model_hash(store, exp.models[m]) for m in IDS}
        assert sorted(pending_models(llama_ctx.config, store)) == sorted(IDS[1:])
    assert floats["tiny-llama"] == keys["tiny-llama"]
    assert all(floats[m] != keys[m] for m in IDS[1:])
    assert store.file_hash(exp.models["tiny-llama-Q8_0"].checkpoint) == floats["tiny-llama-Q8_0"]


def test_behaviors_says_llama_cpp_ran(llama_ctx, llama_cpp_python):
    """The Behaviors callback's status lines and the model column headers name the kernels."""
    state, _ = state_from_query(llama_ctx, {}, [], IDS)
    children, status = behaviors.render_table(llama_ctx, IDS, state, 0)
    text = " ".join(str(s.children) for s in status)
    assert f"tiny-llama-Q8_0, tiny-llama-Q2_K: run through {label(llama_cpp_python)} (the real quantized" in text
    assert FLOAT not in text
    assert f"ran on {label(llama_cpp_python)}" in str(children)


def test_without_llama_cpp_the_float_path_and_its_label(folder, float_outputs, monkeypatch):
    """As on a machine without llama-cpp-python: transformers runs the GGUF, and Behaviors says so."""
    from cnc.evaluation import gguf_runtime

    monkeypatch.setattr(gguf_runtime, "llama_cpp_version", lambda: None)
    assert gguf_runtime.runtime_key(folder / "tiny-llama-Q8_0.gguf") is None
    ctx = load(str(folder), str(folder / "cache-float"), progress=False)  # found in the float cache
    assert pending_models(ctx.config, ctx.store) == []
    assert ctx.outputs("tiny-llama-Q8_0")["runtime"] == FLOAT
    task = HFTask(**ctx.config.task.options)
    assert task.load_model(str(folder / "tiny-llama-Q8_0.gguf")).cnc_runtime == FLOAT
    notes = " ".join(str(n.children) for n in behaviors.missing_notes(ctx, IDS, None))
    assert f"tiny-llama-Q8_0, tiny-llama-Q2_K: run through {FLOAT} (float kernels" in notes
