"""llama.cpp's Δp statistics (issue 31): the pure statistics, the per-token log-probabilities precompute
stores, Δp against a direct computation from two real torch models' logits, and a cache from before
the change ("Δp: re-run precompute", never a 0, then redone by precompute)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cnc.analysis.token_divergence import log_softmax
from cnc.analysis.token_probability import NAMES, delta_p, delta_p_statistics, outdated_outputs
from cnc.precompute.run import pending_models, precompute
from cnc.server.context import AppContext
from cnc.ui import token_stats
from tests.test_generative_precompute import precomputed
from tests.tiny_lm import PROMPTS, REFERENCES, TinyLMTask, encode


def test_names_are_llama_cpps():
    assert NAMES == ("Mean Δp", "Maximum Δp", "99.9% Δp", "99.0% Δp", "95.0% Δp", "90.0% Δp", "75.0% Δp",
                     "Median Δp", "25.0% Δp", "10.0% Δp", "5.0% Δp", "1.0% Δp", "0.1% Δp", "Minimum Δp", "RMS Δp")


def test_statistics_hand_computed():
    p_model = np.array([0.5, 0.2, 0.9, 0.4])
    p_ref = np.array([0.4, 0.5, 0.9, 0.1])  # Δp = 0.1, -0.3, 0, 0.3
    got = delta_p_statistics(np.log(p_model), np.log(p_ref))
    assert got["Mean Δp"] == pytest.approx(0.025) and got["Maximum Δp"] == pytest.approx(0.3)
    assert got["Minimum Δp"] == pytest.approx(-0.3)
    assert got["Median Δp"] == pytest.approx(0.05)  # even count: the mean of the two middle values, as llama.cpp
    assert got["RMS Δp"] == pytest.approx(np.sqrt((0.01 + 0.09 + 0.09) / 4))
    # llama.cpp's percentile: p = fraction * (n - 1), linear between the two sorted values around it
    assert got["75.0% Δp"] == pytest.approx(0.1 + 0.25 * 0.2) and got["25.0% Δp"] == pytest.approx(-0.3 * 0.25)
    assert got["Mean Δp err"] == 0.0  # llama.cpp gives no uncertainty for 10 values or fewer
    assert set(NAMES) <= set(got)
    assert delta_p_statistics(np.zeros(0), np.zeros(0)) == {}
    assert delta_p_statistics(np.array([np.nan]), np.array([0.0])) == {}
    with pytest.raises(ValueError, match="3 log-probabilities for the model, 2"):
        delta_p(np.zeros(3), np.zeros(2))


def test_mean_error_as_llama_cpp():
    rng = np.random.default_rng(0)
    a, b = np.log(rng.uniform(0.01, 1, 500)), np.log(rng.uniform(0.01, 1, 500))
    d = np.exp(a) - np.exp(b)
    got = delta_p_statistics(a, b)
    assert got["Mean Δp err"] == pytest.approx(np.sqrt(((d * d).mean() - d.mean() ** 2) / (d.size - 1)))
    assert got["99.9% Δp"] == pytest.approx(np.percentile(d, 99.9)) and got["Median Δp"] == pytest.approx(np.median(d))


def _direct_logprobs(checkpoint) -> np.ndarray:
    """Each reference token's log-probability, instance by instance, from the model's own logits."""
    model = TinyLMTask().load_model(str(checkpoint))
    out = []
    for prompt, refs in zip(PROMPTS, REFERENCES):
        p, r = encode(prompt), encode(refs[0])
        with torch.no_grad():
            logits = model(torch.tensor([p + r]))[0][0]
        lp = log_softmax(logits[len(p) - 1:len(p) + len(r) - 1].double().numpy())
        out.append(lp[np.arange(len(r)), r])
    return np.concatenate(out)


@pytest.fixture
def lm(tmp_path):
    return (tmp_path, *precomputed(tmp_path))


def test_delta_p_against_two_torch_models(lm):
    folder, cfg, store = lm
    ctx = AppContext(cfg, store)
    base_lp = _direct_logprobs(folder / "base.pt")
    for mid in ("base", "p30", "p60"):
        out = ctx.outputs(mid)
        assert out["target_logprob"].dtype == np.float32 and not outdated_outputs(out)
        assert np.allclose(out["target_logprob"], _direct_logprobs(folder / f"{mid}.pt"), atol=1e-5)
    stats = token_stats.statistics(ctx, ["base", "p30", "p60"])
    d = np.exp(_direct_logprobs(folder / "p60.pt")) - np.exp(base_lp)  # p60's KL reference is the root, base
    assert abs(d).max() > 0.01  # pruning really moved the reference tokens' probabilities
    assert stats["p60"]["Mean Δp"] == pytest.approx(d.mean(), abs=1e-6)
    assert stats["p60"]["RMS Δp"] == pytest.approx(np.sqrt((d * d).mean()), abs=1e-6)
    for name, q in (("Maximum Δp", 100), ("99.0% Δp", 99), ("Median Δp", 50), ("5.0% Δp", 5), ("Minimum Δp", 0)):
        assert stats["p60"][name] == pytest.approx(np.percentile(d, q), abs=1e-6)
    assert stats["base"]["Mean Δp"] == 0.0 and stats["base"]["RMS Δp"] == 0.0  # the root against itself
    text = str(token_stats.panel(ctx, ["base", "p30", "p60"]).to_plotly_json())
    assert "RMS Δp" in text and format(stats["p60"]["Mean Δp"], ".3%") in text and token_stats.STALE not in text


def test_a_cache_from_before_says_rerun_and_precompute_redoes_it(lm):
    folder, cfg, store = lm
    ctx = AppContext(cfg, store)
    th = ctx.task_hash
    for mid in ("base", "p30"):  # as precomputed before per-token log-probabilities were stored
        ch = store.file_hash(folder / f"{mid}.pt")
        old = store.get("outputs", th, ch)
        store.put("outputs", th, ch, {k: v for k, v in old.items() if k != "target_logprob"})
    ctx = AppContext(cfg, store)
    models = ["base", "p30", "p60"]
    assert ctx.status("p30") == "ready" and token_stats.stale(ctx, models) == models  # p60's root is old
    stats = token_stats.statistics(ctx, models)
    assert not any(name in stats[m] for m in models for name in NAMES)  # never a wrong 0
    assert "Mean KLD" in stats["p60"]  # what the old cache has is still shown
    text = str(token_stats.panel(ctx, models).to_plotly_json())
    assert text.count(token_stats.STALE) == 3 and "RMS Δp" in text
    assert pending_models(cfg, store) == ["base", "p30"]

    again = precompute(cfg, store, progress=False)
    assert sorted(again.computed) == ["base", "p30"] and pending_models(cfg, store) == []
    assert token_stats.stale(ctx, models) == []  # the same server context sees the redone summaries
    stats = token_stats.statistics(ctx, models)
    assert all("Mean Δp" in stats[m] for m in models)
    assert token_stats.STALE not in str(token_stats.panel(ctx, models).to_plotly_json())
