"""Precompute of a generative task end to end, against values computed directly from the models:
outputs, scores, NLL, KL / top-1 vs the root of the tree, a model logged later, outputs-only models."""
import json

import numpy as np
import pytest
import torch
import yaml

from cnc.analysis.text_scores import exact_match, repetition, token_f1
from cnc.analysis.token_divergence import (
    TOPK,
    coarse_kl,
    exact_kl,
    log_softmax,
    same_top,
    tail_logmass,
    topk_summary,
)
from cnc.experiment.config import load_config
from cnc.experiment.errors import ConfigError
from cnc.experiment.tracker import Tracker
from cnc.precompute.run import pending_models, precompute
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from tests.tiny_lm import (
    PROMPTS,
    REFERENCES,
    VOCAB,
    TinyLMTask,
    decode,
    encode,
    save_checkpoint,
    write_tracker_experiment,
)

STOP = ["3"]  # cuts the base model's outputs (e.g. "Gkk?3E" -> "Gkk?")


def _model(path):
    return TinyLMTask().load_model(str(path))


def _greedy(model, prompt, steps):
    """Unbatched greedy decoding, rerunning the whole sequence each step (no cached state)."""
    ids = encode(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids]))[0][0, -1].argmax()))
    return decode(ids[len(encode(prompt)):])


def _reference_logprobs(model, prompt, reference):
    p, r = encode(prompt), encode(reference)
    with torch.no_grad():
        logits = model(torch.tensor([p + r]))[0][0]
    return log_softmax(logits[len(p) - 1:len(p) + len(r) - 1].double().numpy()), np.array(r)


@pytest.fixture
def lm_dir(tmp_path):
    write_tracker_experiment(tmp_path, STOP)
    return tmp_path


def _load(folder):
    cfg = load_config(folder / "exp", cache_dir=folder / "cache")
    return cfg, SummaryStore(cfg.cache_dir)


def precomputed(folder):
    """(config, store) of the tiny language-model experiment written to `folder` and precomputed."""
    write_tracker_experiment(folder, STOP)
    cfg, store = _load(folder)
    precompute(cfg, store, progress=False)
    return cfg, store


def _check_against_direct(out, model, root):
    """Every stored field of `out` against a direct computation with `model` (and `root`)."""
    texts = []
    for prompt in PROMPTS:
        texts.append(_greedy(model, prompt, 6).split(STOP[0])[0])
    assert out["texts"] == texts
    assert np.array_equal(out["scores"]["exact_match"], [exact_match(t, r) for t, r in zip(texts, REFERENCES)])
    assert np.allclose(out["scores"]["f1"], [token_f1(t, r) for t, r in zip(texts, REFERENCES)])
    assert np.array_equal(out["scores"]["length"], [len(t) for t in texts])
    assert np.allclose(out["repetition"], [repetition(t) for t in texts])
    kl, coarse, top1, nll = [], [], [], []
    for prompt, refs in zip(PROMPTS, REFERENCES):
        lp, targets = _reference_logprobs(model, prompt, refs[0])
        ref_lp, _ = _reference_logprobs(root, prompt, refs[0])
        nll.append(-lp[np.arange(len(targets)), targets].sum())
        vals, ids, tail = topk_summary(ref_lp, TOPK)
        coarse.append(coarse_kl(vals, tail, np.take_along_axis(lp, ids.astype(np.int64), -1), tail_logmass(lp, ids)))
        kl.append(exact_kl(ref_lp, lp))
        top1.append(same_top(ref_lp, lp))
    assert np.array_equal(out["ntokens"], [len(encode(r[0])) for r in REFERENCES])
    assert np.allclose(out["nll"], nll, rtol=1e-4)
    coarse, kl = np.concatenate(coarse), np.concatenate(kl)
    assert out["kl"].dtype == np.float16 and np.allclose(out["kl"], coarse, rtol=2e-3, atol=1e-4)
    assert np.all(out["kl"] <= kl * 1.002 + 1e-4)  # a lower bound on the exact KL
    assert np.array_equal(out["top1"], np.concatenate(top1))
    return kl


def test_generative_precompute_end_to_end(lm_dir):
    cfg, store = _load(lm_dir)
    report = precompute(cfg, store, progress=False)
    assert report.computed == ["base", "p30", "p60"] and not report.failed
    ctx = AppContext(cfg, store)
    task = ctx.task_data()
    assert task["kind"] == "generative" and task["prompts"] == PROMPTS and task["references"] == REFERENCES
    assert task["score_names"] == ["exact_match", "f1", "length"]
    assert task["generation"] == {"max_new_tokens": 6, "stop": STOP}  # the config overrides the task's 8
    assert task["attributes"]["question"][0] == "yes" and ctx.instance(1) == {"kind": "text", "text": PROMPTS[1]}

    base = ctx.outputs("base")
    assert base["kl_reference"] == "base" and not base["kl"].any() and base["top1"].all()  # no ties in its top
    assert any(len(t) < 6 for t in base["texts"])  # the stop string cut some outputs
    root = _model(lm_dir / "base.pt")
    _check_against_direct(base, root, root)
    for mid in ("p30", "p60"):
        out = ctx.outputs(mid)
        assert out["kl_reference"] == "base"  # the root of the tree, not the parent
        exact = _check_against_direct(out, _model(lm_dir / f"{mid}.pt"), root)
        assert exact.mean() > 0.01  # pruning really changed the distributions
    assert ctx.activations("p30")["norm"]["type"] == "LayerNorm" and "head" in ctx.params("p60")
    th = ctx.task_hash
    assert store.get("topk", th, store.file_hash(lm_dir / "base.pt"))["values"].shape[1] == TOPK
    assert store.get("topk", th, store.file_hash(lm_dir / "p30.pt")) is None  # never per compressed model
    assert ctx.status("p60") == "ready" and pending_models(cfg, store) == []

    # a model logged later gets its KL against the cached top-k of the root, which is not recomputed
    save_checkpoint(lm_dir / "late.pt", seed=0, prune=0.45)
    Tracker(lm_dir / "exp").log_model("late", base="p60", model=str(lm_dir / "late.pt"))
    cfg, store = _load(lm_dir)
    assert pending_models(cfg, store) == ["late"]
    again = precompute(cfg, store, progress=False)
    assert again.computed == ["late"]
    late = AppContext(cfg, store).outputs("late")
    assert late["kl_reference"] == "base"
    _check_against_direct(late, _model(lm_dir / "late.pt"), root)


def test_a_model_whose_logits_are_all_equal_never_agrees_on_the_top_token(lm_dir):
    """The held-back case of issue 31: zeroed norms (and no output bias) make every logit equal; such a
    model has no top token, so "same top token" reads 0%, never 100%, while its KL is large."""
    state = torch.load(lm_dir / "base.pt", weights_only=True)
    state["head.weight"] += 0.05 * torch.randn(state["head.weight"].shape, generator=torch.Generator().manual_seed(1))
    torch.save(state, lm_dir / "noisy.pt")  # a healthy variant: keeps most of the base's top tokens
    for name in ("norm.weight", "norm.bias", "head.bias"):
        state[name].zero_()
    torch.save(state, lm_dir / "flat.pt")
    for mid in ("noisy", "flat"):
        Tracker(lm_dir / "exp").log_model(mid, base="base", model=str(lm_dir / f"{mid}.pt"))
    cfg, store = _load(lm_dir)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    flat, healthy = ctx.outputs("flat"), ctx.outputs("noisy")
    assert flat["kl_reference"] == "base" and flat["top1"].size == flat["ntokens"].sum() > 0
    assert flat["top1"].mean() == 0.0 and healthy["top1"].mean() > 0.3
    assert float(flat["kl"].astype(np.float64).mean()) > float(healthy["kl"].astype(np.float64).mean())


def test_root_is_computed_on_demand(lm_dir):
    cfg, store = _load(lm_dir)
    report = precompute(cfg, store, progress=False, only=["p60"])
    assert sorted(report.computed) == ["base", "p60"]
    assert AppContext(cfg, store).outputs("p60")["kl_reference"] == "base"


def test_outputs_only_model_is_scored_from_its_texts(lm_dir):
    texts = ["Denver Broncos", "Paris", "blue blue blue", "4 5 6", "", "four"]
    (lm_dir / "texts.json").write_text(json.dumps({"texts": texts}))
    Tracker(lm_dir / "exp").log_model("api", base="base", outputs=str(lm_dir / "texts.json"))
    Tracker(lm_dir / "exp").log_model("logged", base="base", outputs=texts[::-1])  # texts given to the Tracker
    cfg, store = _load(lm_dir)
    assert {"api", "logged"} <= set(precompute(cfg, store, progress=False).computed)
    ctx = AppContext(cfg, store)
    out = ctx.outputs("api")
    assert out["scores"]["exact_match"].tolist() == [1, 0, 0, 1, 0, 1]
    assert out["scores"]["length"].tolist() == [len(t) for t in texts]
    assert out["repetition"][2] == pytest.approx(0.5) and out["kl"] is None and out["nll"] is None
    assert ctx.outputs("logged")["texts"] == texts[::-1]

    (lm_dir / "texts.json").write_text(json.dumps({"texts": texts[:2]}))
    cfg, store = _load(lm_dir)
    report = precompute(cfg, store, progress=False, only=["api"])
    assert "texts.json" in report.failed["api"] and "6 strings" in report.failed["api"]


def test_generation_config_is_validated(lm_dir):
    path = lm_dir / "exp" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["task"]["generation"] = {"max_new_tokens": 0, "stop": [""], "temperature": 1}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "task.generation.max_new_tokens" in msg and "task.generation.stop.0" in msg
    assert "task.generation.temperature" in msg
    assert VOCAB > TOPK  # the tiny model's vocabulary really has a tail beyond the top-k
