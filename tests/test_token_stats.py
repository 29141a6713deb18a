"""Compare's token-level statistics panel (issue 31), named as llama.cpp names them, against direct
computations from a real precomputed generative experiment (tests/tiny_lm)."""
from __future__ import annotations

import numpy as np
import pytest

from cnc.analysis import behavior_view
from cnc.analysis.token_divergence import llama_statistics
from cnc.precompute.run import precompute
from cnc.server.context import AppContext
from cnc.ui import behaviors, token_stats
from tests.test_generative_precompute import STOP
from tests.test_generative_precompute import _load as load_lm
from tests.tiny_lm import write_tracker_experiment


def test_llama_statistics_hand_computed():
    kl = np.arange(11, dtype=np.float64)
    got = llama_statistics(kl, np.array([True] * 8 + [False] * 3), np.array([2.0, 4.0]), np.array([1.0, 2.0]),
                           np.array([3, 3]))
    assert got["Mean KLD"] == 5.0 and got["Median KLD"] == 5.0 and got["Maximum KLD"] == 10.0
    assert got["99.0% KLD"] == pytest.approx(9.9) and got["Same top p"] == pytest.approx(8 / 11)
    assert got["Mean PPL(Q)"] == pytest.approx(np.e) and got["Mean PPL(base)"] == pytest.approx(np.exp(0.5))
    assert got["Mean PPL(Q)/PPL(base)"] == pytest.approx(np.exp(0.5))
    assert llama_statistics(None, None, None, None, None) == {}


def test_panel_on_a_real_generative_experiment(tmp_path):
    write_tracker_experiment(tmp_path, STOP)
    cfg, store = load_lm(tmp_path)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    models = ["base", "p30", "p60"]
    stats = token_stats.statistics(ctx, models)
    p60, base = ctx.outputs("p60"), ctx.outputs("base")
    kl = p60["kl"].astype(np.float64)
    assert stats["p60"]["Mean KLD"] == pytest.approx(kl.mean()) and stats["p60"]["99.9% KLD"] == pytest.approx(
        np.percentile(kl, 99.9))
    assert stats["p60"]["Same top p"] == pytest.approx(p60["top1"].mean())
    ratio = np.exp(p60["nll"].sum() / p60["ntokens"].sum()) / np.exp(base["nll"].sum() / base["ntokens"].sum())
    assert stats["p60"]["Mean PPL(Q)/PPL(base)"] == pytest.approx(ratio, rel=1e-6)
    assert stats["base"]["Mean KLD"] == 0.0 and stats["base"]["Mean PPL(Q)/PPL(base)"] == 1.0
    _, status = behaviors.render_table(ctx, models, behavior_view.ViewState(mode="exemplars", metric="sc:f1"), 0)
    panel = [s for s in status if getattr(s, "className", "") == "bh-token-panel"]
    assert panel, "the Behaviors status carries the panel for a generative task"
    text = str(panel[0].to_plotly_json())
    assert "Mean KLD" in text and "Same top p" in text and "Mean PPL(Q)/PPL(base)" in text
    assert format(stats["p60"]["Mean KLD"], ".6f") in text
