"""The text demo: data, tokenizer, the generative task protocol on a briefly trained model, and a
reduced build end to end (the full build trains for minutes; its figures are in the README)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cnc.analysis.text_scores import exact_match, token_f1
from cnc.demos.text import build as text_build
from cnc.demos.text.data import ANSWER_LENGTHS, QUESTION_TYPES, load_examples, tokenizer, training_tensors
from cnc.demos.text.model import build_model
from cnc.demos.text.task import TextQATask
from cnc.experiment.config import load_experiment
from cnc.toolkit import lm_compress as lc

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task() -> TextQATask:
    return TextQATask(seed=0)


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    """The demo architecture after a few dozen steps: enough to emit varied tokens."""
    torch.manual_seed(0)
    data = training_tensors(load_examples("train")[:512])
    return lc.train_lm(build_model(len(tokenizer())), data, steps=40, lr=5e-3, batch_size=32)


def test_examples_are_deterministic_and_answers_are_spans() -> None:
    test = load_examples("test")
    assert len(test) == 500 and test == load_examples("test")
    assert load_examples("train")[0] != test[0]
    for ex in test:
        paragraph = ex.prompt.split(" Question: ")[0]
        assert f" {ex.answer}." in f" {paragraph}", ex
        assert ex.prompt.endswith("Answer:")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_examples("dev")


def test_tokenizer_round_trip() -> None:
    tok = tokenizer()
    ex = load_examples("test")[3]
    ids = tok.encode(ex.prompt)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == ex.prompt
    assert tok.decode(tok.encode(ex.answer) + [tok.eos_id] + tok.encode("Oslo")) == ex.answer
    assert tok.encode("Zanzibar") == [tok.unk_id]
    assert tok.decode([tok.pad_id, tok.pad_id, tok.eos_id, 5]) == "<pad> <pad>"


def test_training_tensors_target_only_the_answer() -> None:
    tok = tokenizer()
    ex = load_examples("test")[0]
    x, y = training_tensors([ex])
    prompt, answer = tok.encode(ex.prompt), tok.encode(ex.answer) + [tok.eos_id]
    assert x[0].tolist() == (prompt + answer)[:-1]
    assert y[0, :len(prompt) - 1].tolist() == [-100] * (len(prompt) - 1)
    assert y[0, len(prompt) - 1:].tolist() == answer


def test_task_data_and_attributes(task: TextQATask) -> None:
    prompts, refs = task.eval_data()
    assert len(prompts) == len(refs) == 500
    assert all(isinstance(p, str) for p in prompts) and all(len(r) == 1 for r in refs)
    attrs = task.attributes()
    assert set(attrs) == {"question type", "answer length", "people"}
    assert set(attrs["question type"]) == set(QUESTION_TYPES)
    assert set(attrs["answer length"]) == set(ANSWER_LENGTHS)
    assert all(len(v) == 500 for v in attrs.values())
    assert task.render_instance(7) == {"kind": "text", "text": prompts[7]}
    assert task.kind == "generative" and task.generation["max_new_tokens"] >= 3


def test_generate_batched_equals_one_by_one(task: TextQATask, trained) -> None:
    prompts, _ = task.eval_data()
    prompts = prompts[:6]
    with torch.inference_mode():
        batched = task.generate(trained, prompts, max_new_tokens=4)
        alone = [task.generate(trained, [p], max_new_tokens=4)[0] for p in prompts]
        assert task.generate(trained, prompts[:2], max_new_tokens=0) == ["", ""]
    assert batched == alone
    assert all(isinstance(t, str) and len(t.split()) <= 4 for t in batched)


def test_reference_logits_are_the_teacher_forced_pass(task: TextQATask, trained) -> None:
    prompts, refs = task.eval_data()
    prompts, firsts = prompts[:5], [r[0] for r in refs[:5]]
    tok = tokenizer()
    with torch.inference_mode():
        logits, targets, mask = task.reference_logits(trained, prompts, firsts)
        assert logits.shape[:2] == targets.shape == mask.shape
        assert logits.shape[2] == len(tok) and logits.dtype == torch.float32
        for i, (p, r) in enumerate(zip(prompts, firsts)):
            expected = tok.encode(r) + [tok.eos_id]
            assert targets[i][mask[i]].tolist() == expected
            assert int(mask[i].sum()) == len(expected)
            seq = torch.tensor([tok.encode(p) + expected])
            full = trained(seq)[0, len(tok.encode(p)) - 1:-1]
            assert torch.allclose(logits[i, :len(expected)], full, atol=1e-4)
    # the NLL of the references is the training loss on the same instances
    x, y = training_tensors(load_examples("test")[:5])
    nll = F.cross_entropy(logits[mask], targets[mask])
    with torch.inference_mode():
        assert float(nll) == pytest.approx(float(lc.lm_loss(trained, x, y)), rel=1e-4)


def test_task_loads_pruned_and_int4_checkpoints(task: TextQATask, trained, tmp_path: Path) -> None:
    pruned = lc.global_magnitude_prune(trained, 0.3)
    int4 = lc.quantize_weights(pruned, bits=4, group_size=32)
    prompts = task.eval_data()[0][:4]
    for name, model in (("pruned", pruned), ("int4", int4)):
        loaded = task.load_model(str(lc.save_checkpoint(model, tmp_path / f"{name}.pt")))
        assert not loaded.training
        with torch.inference_mode():
            assert task.generate(loaded, prompts, 3) == task.generate(model, prompts, 3), name


def test_reduced_build_writes_a_loadable_measured_experiment(tmp_path: Path, monkeypatch) -> None:
    """The build pipeline on a short recipe: experiment file, checkpoints, measured scores."""
    monkeypatch.setattr(text_build, "BASE_STEPS", 30)
    monkeypatch.setattr(text_build, "FT_STEPS", 5)
    monkeypatch.setattr(text_build, "LATENCY_RUNS", 3)
    recipe = [step for step in text_build.demo_recipe()
              if step.id in ("global30", "global30-norms", "layer30", "2of4", "2of4-ft", "int4")]
    monkeypatch.setattr(text_build, "demo_recipe", lambda: recipe)
    path = text_build.build_demo(tmp_path / "demo" / "experiment.yaml", progress=False)
    exp = load_experiment(path)
    assert not exp.warnings and exp.roots == ["base"]
    assert set(exp.models) == {"base", *(s.id for s in recipe)}
    assert exp.models["global30-norms"].base == "global30"
    assert {"Exact match", "F1", "Size", "Latency", "Sparsity", "Params"} <= set(exp.metrics)
    task = TextQATask(seed=0)
    prompts, refs = task.eval_data()
    for mid in ("base", "global30", "int4"):
        model = exp.models[mid]
        loaded = task.load_model(model.checkpoint)
        with torch.inference_mode():
            answers = []
            for start in range(0, len(prompts), 250):
                answers += task.generate(loaded, prompts[start:start + 250], task.generation["max_new_tokens"])
        em = sum(exact_match(a, r) for a, r in zip(answers, refs)) / len(refs)
        f1 = sum(token_f1(a, r) for a, r in zip(answers, refs)) / len(refs)
        assert model.metrics["Exact match"] == pytest.approx(em, abs=1e-6), mid
        assert model.metrics["F1"] == pytest.approx(f1, abs=1e-6), mid
        assert model.metrics["Latency"] > 0
    base, int4 = exp.models["base"].metrics, exp.models["int4"].metrics
    assert int4["Size"] < 0.3 * base["Size"]
    assert exp.models["2of4"].metrics["Sparsity"] > 0.35
    assert exp.models["global30"].metrics["Sparsity"] == pytest.approx(0.3 * _weight_share(task, exp), abs=0.01)


def _weight_share(task: TextQATask, exp) -> float:
    """Share of all parameters that global pruning ranks (weights, not biases)."""
    model = task.load_model(exp.models["base"].checkpoint)
    return sum(p.numel() for p in lc.lm_weights(model).values()) / sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- the built demo (minutes, once)

@pytest.fixture(scope="session")
def text_demo_path(demo_cache_dir: Path) -> Path:
    """The full text demo built into the shared test cache (kept across runs with CNC_TEST_CACHE)."""
    path = demo_cache_dir / "demo-text" / "experiment.yaml"
    return path if path.exists() else text_build.build_demo(path, progress=False)


def _scores(exp, mid: str) -> tuple[float, float]:
    return exp.models[mid].metrics["Exact match"], exp.models[mid].metrics["F1"]


def test_case_study_holds_in_the_built_demo(text_demo_path: Path) -> None:
    """Global pruning breaks generation, layer-wise at the same amount does not, the norms were
    zeroed hardest, and restoring them recovers the score: measured, not written down."""
    exp = load_experiment(text_demo_path)
    assert not exp.warnings and exp.roots == ["base"]
    assert {s.id for s in text_build.demo_recipe()} | {"base"} == set(exp.models)
    base_em, base_f1 = _scores(exp, "base")
    assert base_em >= 0.85
    for pct in (10, 30):
        assert _scores(exp, f"global{pct}")[1] < 0.2 * base_f1, pct
        assert _scores(exp, f"layer{pct}")[1] > base_f1 - 0.05, pct
        assert _scores(exp, f"global{pct}-norms")[1] > 0.9 * base_f1, pct
    task = TextQATask(seed=0)
    base = task.load_model(exp.models["base"].checkpoint)
    pruned = task.load_model(exp.models["global10"].checkpoint)
    norms = {n for n, m in base.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    before = {n.removesuffix(".weight"): p.detach() for n, p in base.named_parameters() if n.endswith("weight")}
    change = {n.removesuffix(".weight"): float((before[n.removesuffix(".weight")] - p.detach()).norm()
                                               / before[n.removesuffix(".weight")].norm())
              for n, p in pruned.named_parameters() if n.endswith("weight")}
    hit = {n for n, c in change.items() if c > 0.5}
    assert len(hit) >= 4 and hit <= norms, change  # Layers sorted by change: norms first, (nearly) all zeros
    assert min(change[n] for n in hit) > 3 * max(c for n, c in change.items() if n not in norms), change
    prompts = task.eval_data()[0][:50]
    with torch.inference_mode():
        broken = task.generate(pruned, prompts, task.generation["max_new_tokens"])
    from cnc.analysis.text_scores import repetition
    assert sum(repetition(t) > 0 for t in broken) >= 25, broken  # "LII LII LII": loops, not answers


def test_built_demo_scores_are_reproducible(text_demo_path: Path) -> None:
    exp = load_experiment(text_demo_path)
    task = TextQATask(seed=0)
    for mid in ("global10", "int4", "2of4-ft"):
        model = exp.models[mid]
        em, f1, _ = text_build.answer_scores(task.load_model(model.checkpoint))
        assert (model.metrics["Exact match"], model.metrics["F1"]) == pytest.approx((em, f1), abs=1e-6), mid
    assert exp.models["int4"].metrics["Size"] < 0.25 * exp.models["base"].metrics["Size"]
    assert exp.models["2of4"].metrics["Sparsity"] > 0.4
