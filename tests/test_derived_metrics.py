"""Derived Overview metrics (issue 31): each precomputed model's own evaluated scores and its
fidelity to the root of its tree, against direct computations from the stored outputs, on a real
classifier (tests/tiny_task) and a real generative model (tests/tiny_lm)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cnc.analysis import derived_metrics as D
from cnc.analysis.divergence import divergences
from cnc.experiment.tracker import Tracker
from cnc.precompute.run import precompute
from cnc.server.context import AppContext
from tests.test_generative_precompute import STOP
from tests.test_generative_precompute import _load as load_lm
from tests.test_precompute import load
from tests.test_precompute import tiny as tiny  # noqa: F401 (the fixture)
from tests.tiny_lm import write_tracker_experiment

C = D.SUFFIX


def test_classifier_fidelity_hand_computed():
    labels = np.array([0, 1, 2, 2])
    root = {"preds": np.array([0, 1, 2, 0])}
    out = {"preds": np.array([0, 2, 2, 1])}
    got = D.classifier_fidelity(out, root, labels, np.array([0.0, 1.0, 0.5, 0.5]))
    assert got == {"Accuracy" + C: 0.5, "Flip rate vs root" + C: 0.5, "Mean KL vs root" + C: 0.5,
                   "Accuracy change vs root" + C: pytest.approx(-0.25)}
    assert D.classifier_fidelity(out, None, labels, None) == {"Accuracy" + C: 0.5}  # root not computed yet


def test_generative_fidelity_hand_computed():
    root = {"texts": ["a", "b", "c"], "scores": {"exact_match": np.array([1, 1, 0.0]), "f1": np.array([1, 1, 0.5])}}
    out = {"texts": ["a", "x", "c"], "scores": {"exact_match": np.array([1, 0, 0.0]), "f1": np.array([1, 0.2, np.nan])},
           "kl": np.array([0.0, 0.5, 1.0], np.float16), "top1": np.array([True, False, False]), "kl_reference": "r"}
    got = D.generative_fidelity(out, root, "r")
    assert got["Exact match" + C] == pytest.approx(1 / 3, rel=1e-4) and got["F1" + C] == pytest.approx(0.6, rel=1e-4)
    assert got["Flip rate vs root" + C] == pytest.approx(1 / 3, rel=1e-4) and got["Mean KL vs root" + C] == pytest.approx(0.5, rel=1e-4)
    assert got["Same top token vs root" + C] == pytest.approx(1 / 3, rel=1e-4)
    assert got["F1 change vs root" + C] == pytest.approx(0.6 - 2.5 / 3, rel=1e-4)
    assert "Mean KL vs root" + C not in D.generative_fidelity(out, root, "other")  # KL against another model
    assert D.rounded({"x": 0.123456789, "y": None}) == {"x": 0.12346}  # 5 significant digits are shipped


def test_classifier_models_get_accuracy_flips_and_kl_against_their_root(tiny):  # noqa: F811
    cfg, store = load(tiny)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    exp = ctx.experiment
    for name in ("Accuracy", "Flip rate vs root", "Mean KL vs root", "Accuracy change vs root"):
        metric = exp.metrics[name + C]
        assert "Derived" in metric.description and "not logged" in metric.description
    assert exp.metrics["Acc"].description == "" and "Acc" in exp.models["a"].metrics  # logged ones untouched
    labels = ctx.task_data()["labels"]
    root = ctx.outputs("a")
    for mid in ("a", "b", "c"):
        out = ctx.outputs(mid)
        m = exp.models[mid].metrics
        assert m["Accuracy" + C] == pytest.approx(np.mean(out["preds"] == labels), rel=1e-4)
        assert m["Flip rate vs root" + C] == pytest.approx(np.mean(out["preds"] != root["preds"]), rel=1e-4)
        kl = divergences(np.asarray(root["probs"], np.float32), [np.asarray(out["probs"], np.float32)])[1, 0]
        assert m["Mean KL vs root" + C] == pytest.approx(kl.mean(), rel=1e-4, abs=1e-6)
    assert exp.models["a"].metrics["Mean KL vs root" + C] == 0.0 and exp.models["c"].metrics["Mean KL vs root" + C] > 0
    assert "Accuracy" + C not in exp.models["d"].metrics  # no checkpoint: nothing derived
    assert ctx.experiment is exp  # one merged experiment while nothing new is stored
    assert ctx.config.experiment.metrics.get("Accuracy" + C) is None  # the loaded experiment is not changed


def test_generative_models_get_scores_kl_and_same_top_token(tmp_path):
    write_tracker_experiment(tmp_path, STOP)
    state = torch.load(tmp_path / "base.pt", weights_only=True)
    for name in ("norm.weight", "norm.bias", "head.bias"):
        state[name].zero_()  # every logit equal: no top token
    torch.save(state, tmp_path / "flat.pt")
    Tracker(tmp_path / "exp").log_model("flat", base="base", model=str(tmp_path / "flat.pt"))
    cfg, store = load_lm(tmp_path)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    exp = ctx.experiment
    base, flat = ctx.outputs("base"), ctx.outputs("flat")
    got = exp.models["flat"].metrics
    assert got["Exact match" + C] == pytest.approx(np.mean(flat["scores"]["exact_match"]), rel=1e-4)
    assert got["F1" + C] == pytest.approx(np.mean(flat["scores"]["f1"]), rel=1e-4)
    assert got["Mean KL vs root" + C] == pytest.approx(np.mean(flat["kl"].astype(np.float64)), rel=1e-3)
    assert got["Same top token vs root" + C] == 0.0  # never 100% for a model without a top token
    assert exp.models["base"].metrics["Same top token vs root" + C] == 1.0
    assert exp.models["base"].metrics["Mean KL vs root" + C] == 0.0
    flips = np.mean([a != b for a, b in zip(flat["texts"], base["texts"])])
    assert got["Flip rate vs root" + C] == pytest.approx(flips, rel=1e-4)
    assert got["F1 change vs root" + C] == pytest.approx(np.mean(flat["scores"]["f1"]) - np.mean(base["scores"]["f1"]), rel=1e-4)
