"""The Hugging Face task adapter against transformers itself: tiny causal (GPT-2) and seq2seq (T5)
models built from configs and saved offline, each with two weight-only variants; the adapter's
batched generations and teacher-forced logits must equal what transformers computes one
instance at a time, and bad input must fail with errors that say what to fix."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="transformers is optional: pip install -r requirements-hf.txt")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hf_experiments  # noqa: E402  (tests/ is on sys.path)
import hf_models  # noqa: E402

from cnc.evaluation.hf_task import HFTask, save_weights  # noqa: E402
from cnc.experiment.errors import TaskError  # noqa: E402

MAX_NEW = 6


@pytest.fixture(scope="module", params=["causal", "seq2seq"])
def lm(request, tmp_path_factory):
    """(task, {name: checkpoint}) for a base model directory and two weight-only variants."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp(request.param)
    build = hf_models.build_causal if request.param == "causal" else hf_models.build_seq2seq
    base = build(root / "base")
    data = hf_models.write_jsonl(root / "data.jsonl", hf_models.instances(10))
    task = HFTask(model_dir=str(base), data=str(data), max_new_tokens=MAX_NEW, batch_size=4)
    checkpoints = {"base": str(base)}
    for name, compress in (("pruned", lambda m: hf_models.pruned(m, 0.8)), ("int8", hf_models.int8_rounded)):
        path = root / f"{name}.safetensors"
        save_weights(compress(task.load_model(str(base))), path)
        checkpoints[name] = str(path)
    return task, checkpoints


def direct_generation(task: HFTask, model, prompt: str) -> str:
    """One prompt, no padding, straight through model.generate."""
    enc = task.tokenizer(prompt, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=task.tokenizer.pad_token_id)
    new = out[0] if task.seq2seq else out[0, enc["input_ids"].shape[1]:]
    return task.tokenizer.decode(new, skip_special_tokens=True)


def direct_logprobs(task: HFTask, model, prompt: str, reference: str) -> tuple[torch.Tensor, list[int]]:
    """Log-probabilities [n, V] of the n reference tokens from one unpadded teacher-forced pass."""
    prompt_ids = task.tokenizer(prompt)["input_ids"]
    ref_ids = task.tokenizer(task.answer_prefix + reference, add_special_tokens=False)["input_ids"]
    if task.seq2seq:
        logits = model(input_ids=torch.tensor([prompt_ids]), labels=torch.tensor([ref_ids])).logits[0]
    else:
        logits = model(input_ids=torch.tensor([prompt_ids + ref_ids])).logits[0, len(prompt_ids) - 1:-1]
    return torch.log_softmax(logits.double(), -1), ref_ids


def test_variants_hold_the_compressed_weights(lm):
    task, checkpoints = lm
    base = task.load_model(checkpoints["base"])
    pruned = task.load_model(checkpoints["pruned"])
    int8 = task.load_model(checkpoints["int8"])
    for (name, p), q, r in zip(base.named_parameters(), pruned.parameters(), int8.parameters()):
        assert p.shape == q.shape == r.shape, name
    zeros = lambda m: sum(int((p == 0).sum()) for p in m.parameters())  # noqa: E731
    assert zeros(pruned) > zeros(base) + 1000
    # int8 rounding: each row has at most 255 distinct values, and they differ from the base
    w_base, w_int8 = (dict(m.named_parameters()) for m in (base, int8))
    name = next(n for n, p in w_base.items() if p.ndim == 2 and p.shape[1] >= 32 and "embed" not in n and "wte" not in n
                and "shared" not in n)
    assert not torch.equal(w_base[name], w_int8[name])
    assert max(len(torch.unique(row)) for row in w_int8[name]) <= 255
    assert pruned.get_input_embeddings().weight is pruned.get_output_embeddings().weight or task.seq2seq


def test_generation_equals_transformers_one_prompt_at_a_time(lm):
    task, checkpoints = lm
    prompts, _ = task.eval_data()
    for checkpoint in checkpoints.values():
        model = task.load_model(checkpoint)
        with torch.inference_mode():
            batched = task.generate(model, prompts, MAX_NEW)
            single = [direct_generation(task, model, p) for p in prompts]
        assert batched == single
    assert any(text.strip() for text in batched)


@pytest.mark.parametrize("call", ["reference_logits", "generate_and_reference"])
def test_reference_logits_equal_a_manual_teacher_forced_pass(lm, call):
    """Both ways precompute teacher-forces: a pass of its own, and one that reuses generation's
    cache (causal) or encoder outputs (seq2seq); the latter also generates what `generate` does."""
    task, checkpoints = lm
    prompts, references = task.eval_data()
    first = [r[0] for r in references]
    model = task.load_model(checkpoints["pruned"])
    with torch.inference_mode():
        if call == "reference_logits":
            logits, targets, mask = task.reference_logits(model, prompts, first)
        else:
            texts, (logits, targets, mask) = task.generate_and_reference(model, prompts, first, MAX_NEW)
            assert texts == task.generate(model, prompts, MAX_NEW)
        assert logits.dtype == torch.float32 and targets.dtype == torch.long and mask.dtype == torch.bool
        assert logits.shape[:2] == targets.shape == mask.shape and logits.shape[2] >= len(task.tokenizer)
        got = torch.log_softmax(logits.double(), -1)
        for i, (prompt, ref) in enumerate(zip(prompts, first)):
            expected, ref_ids = direct_logprobs(task, model, prompt, ref)
            n = len(ref_ids)
            assert int(mask[i].sum()) == n and not mask[i, n:].any()
            assert targets[i, :n].tolist() == ref_ids
            torch.testing.assert_close(got[i, :n], expected, atol=1e-4, rtol=1e-4)


def test_task_data_template_and_attributes(lm):
    task, _ = lm
    prompts, references = task.eval_data()
    assert prompts[1] == "Question: what color is the dog on the mat\nAnswer:"
    assert references[0] == ["red cat", "red"]
    assert task.attributes() == {"type": [("short" if i % 2 else "long") for i in range(10)]}  # not 'id'
    assert task.render_instance(1) == {"kind": "text", "text": prompts[1]}
    assert task.kind == "generative" and task.generation == {"max_new_tokens": MAX_NEW, "stop": []}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_generation_matches_cpu(lm):
    task, checkpoints = lm
    prompts, _ = task.eval_data()
    model = task.load_model(checkpoints["base"])
    with torch.inference_mode():
        cpu = task.generate(model, prompts, MAX_NEW)
        gpu = task.generate(model.to("cuda"), prompts, MAX_NEW)
        logits, _, _ = task.reference_logits(model, prompts[:2], ["red", "blue"])
    assert gpu == cpu and logits.device.type == "cuda"


# -- bad input: errors that name the file, the field and the fix

def test_bad_checkpoints_are_refused_clearly(lm, tmp_path):
    task, checkpoints = lm
    pickle_dir = tmp_path / "pickled"
    pickle_dir.mkdir()
    (pickle_dir / "config.json").write_text((task.model_dir / "config.json").read_text())
    torch.save({}, pickle_dir / "pytorch_model.bin")
    with pytest.raises(TaskError, match="no \\*.safetensors weights"):
        task.load_model(str(pickle_dir))
    with pytest.raises(TaskError, match="model directory or an existing .safetensors"):
        task.load_model(str(tmp_path / "missing.safetensors"))
    from safetensors.torch import load_file, save_file
    state = load_file(checkpoints["int8"])
    dropped = next(k for k in sorted(state) if state[k].ndim == 1)  # not a tied embedding
    state.pop(dropped)
    save_file(state, tmp_path / "partial.safetensors")
    with pytest.raises(TaskError, match=f"missing \\['{dropped}'\\]"):
        task.load_model(str(tmp_path / "partial.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TaskError, match="cannot read safetensors"):
        task.load_model(str(tmp_path / "junk.safetensors"))


def test_bad_data_files_are_refused_clearly(lm, tmp_path):
    task, _ = lm
    base = str(task.model_dir)
    no_answer = hf_models.write_jsonl(tmp_path / "a.jsonl", [{"question": "q", "answers": ["x"]}, {"question": "q2"}])
    with pytest.raises(TaskError, match="a.jsonl: instance 1: no reference answer; add a field 'answers'"):
        HFTask(model_dir=base, data=str(no_answer))
    with pytest.raises(TaskError, match="uses \\{source\\} but the instance has no field 'source'"):
        HFTask(model_dir=base, data=str(no_answer), prompt_template="Translate: {source}")
    bad_json = tmp_path / "b.jsonl"
    bad_json.write_text('{"prompt": "x", "answers": ["y"]}\n{"prompt": oops}\n')
    with pytest.raises(TaskError, match="b.jsonl:2: not valid JSON"):
        HFTask(model_dir=base, data=str(bad_json))
    with pytest.raises(TaskError, match="data file not found"):
        HFTask(model_dir=base, data=str(tmp_path / "none.json"))
    with pytest.raises(TaskError, match="model_dir: .* is not a directory"):
        HFTask(model_dir=str(tmp_path / "nowhere"), data=str(no_answer))
    with pytest.raises(TaskError, match="dtype='int3'"):
        HFTask(model_dir=base, data=str(no_answer), dtype="int3")


def test_json_file_with_squad_answers_and_explicit_attributes(lm, tmp_path):
    task, _ = lm
    items = [{"context": "the cat sat on the mat", "question": "where is the cat", "answers": {"text": ["on the mat"]},
              "split": "a", "level": i % 2} for i in range(4)]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"instances": items}))
    t = HFTask(model_dir=str(task.model_dir), data=str(path), attributes=["level"], scorers=["rouge_l"], limit=3)
    prompts, references = t.eval_data()
    assert prompts[0] == "the cat sat on the mat\n\nQuestion: where is the cat\nAnswer:"
    assert references == [["on the mat"]] * 3
    assert t.attributes() == {"level": ["0", "1", "0"]} and t.scorers == {"rouge_l": "rouge_l"}


# -- through the app's precompute, checked against transformers directly

def test_precompute_matches_transformers(lm, tmp_path):
    """Outputs, scores, NLL, KL and top-1 agreement as stored by precompute for a base directory
    and two weight-only variants, against direct transformers computations."""
    from cnc.analysis.text_scores import exact_match, token_f1
    from cnc.analysis.token_divergence import TOPK, coarse_kl, exact_kl, tail_logmass, topk_summary
    from cnc.server.context import AppContext

    task, checkpoints = lm
    options = {"model_dir": str(task.model_dir), "data": str(task.model_dir.parent / "data.jsonl"),
               "max_new_tokens": MAX_NEW}
    cfg, store, report = hf_experiments.precomputed(tmp_path, [
        f"{{id: base, checkpoint: {checkpoints['base']}}}",
        f"{{id: pruned, base: base, checkpoint: {checkpoints['pruned']}}}",
        f"{{id: int8, base: pruned, checkpoint: {checkpoints['int8']}}}"], options)
    assert sorted(report.computed) == ["base", "int8", "pruned"] and not report.failed
    ctx = AppContext(cfg, store)
    prompts, references = task.eval_data()
    assert ctx.task_data()["prompts"] == prompts and ctx.task_data()["attributes"] == task.attributes()

    root = task.load_model(checkpoints["base"])
    with torch.no_grad():
        root_lp = [direct_logprobs(task, root, p, r[0])[0].numpy() for p, r in zip(prompts, references)]
    for mid in ("base", "pruned", "int8"):
        out = ctx.outputs(mid)
        model = task.load_model(checkpoints[mid])
        with torch.no_grad():
            texts = [direct_generation(task, model, p) for p in prompts]
            direct = [direct_logprobs(task, model, p, r[0]) for p, r in zip(prompts, references)]
        assert out["texts"] == texts and out["kl_reference"] == "base"
        assert np.allclose(out["scores"]["exact_match"], [exact_match(t, r) for t, r in zip(texts, references)])
        assert np.allclose(out["scores"]["f1"], [token_f1(t, r) for t, r in zip(texts, references)])
        assert out["ntokens"].tolist() == [len(ids) for _, ids in direct]
        nll = [-lp.numpy()[np.arange(len(ids)), ids].sum() for lp, ids in direct]
        assert np.allclose(out["nll"], nll, rtol=1e-4, atol=1e-4)
        coarse, exact, top1 = [], [], []
        for ref_lp, (lp, _) in zip(root_lp, direct):
            lp = lp.numpy()
            vals, ids, tail = topk_summary(ref_lp, TOPK)
            coarse.append(coarse_kl(vals, tail, np.take_along_axis(lp, ids.astype(np.int64), -1), tail_logmass(lp, ids)))
            exact.append(exact_kl(ref_lp, lp))
            top1.append(lp.argmax(-1) == ref_lp.argmax(-1))
        coarse, exact = np.concatenate(coarse), np.concatenate(exact)
        assert np.allclose(out["kl"].astype(np.float64), coarse, rtol=2e-3, atol=1e-4)
        assert np.all(out["kl"] <= exact * 1.002 + 1e-4)  # top-k + tail is a lower bound
        assert np.array_equal(out["top1"], np.concatenate(top1))
        if mid == "base":
            assert not out["kl"].any()
        else:
            assert exact.mean() > (1e-3 if mid == "pruned" else 0)  # compression really moved the distributions


def test_showing_prompts_never_imports_transformers(lm):
    """The web server builds the task to render an instance: that must not pull in transformers."""
    import subprocess
    import sys

    task, _ = lm
    code = ("import sys; from cnc.evaluation.hf_task import HFTask; "
            f"t = HFTask(model_dir={str(task.model_dir)!r}, data={str(task.model_dir.parent / 'data.jsonl')!r}); "
            "print(t.render_instance(2)['text'].splitlines()[0], sorted(t.attributes()), 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parents[1]))
    assert out.stdout.split() == ["Question:", "what", "color", "is", "the", "bird", "['type']", "False"]
