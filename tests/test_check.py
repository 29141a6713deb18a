"""`cnc check` end to end on real lm-evaluation-harness output (tests/lmeval_harness.py: a tiny
GPT-2, a magnitude-pruned and an int8-rounded copy, evaluated by the real `lm_eval` CLI): a
passing and a failing policy, the exit codes, the JSON report against its schema
(docs/check-report.schema.json), Markdown and JUnit, and the apples-to-oranges warnings."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
import yaml

from cnc.app.cli import main
from tests.test_lm_eval import write_experiment

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "check-report.schema.json").read_text())
GEN = "tiny_sums_gen/exact_match,strict-match"
MC = "tiny_sums_mc/acc"


@pytest.fixture(scope="module")
def lmeval_exp(lmeval_runs, tmp_path_factory) -> Path:
    return write_experiment(tmp_path_factory.mktemp("check-lmeval"), lmeval_runs)


def policy(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def check(exp: Path, pol: Path, out: Path, *extra: str) -> tuple[int, dict | None]:
    code = main(["check", "--config", str(exp), "--policy", str(pol), "--cache-dir", str(exp.parent / "cache"),
                 "--json", str(out / "report.json"), "--markdown", str(out / "report.md"),
                 "--junit", str(out / "junit.xml"), "--app-url", "http://cnc.example:8050", *extra])
    report = out / "report.json"
    return code, json.loads(report.read_text()) if report.exists() else None


def test_failing_policy_fails_the_pruned_model_with_significant_drops(lmeval_exp, tmp_path, capsys):
    pol = policy(tmp_path, "strict", {"metrics": {GEN: {"max_drop": 0.02}, MC: {"min_recovery": 0.95}},
                                      "max_flip_rate": 0.1})
    code, report = check(lmeval_exp, pol, tmp_path)
    assert code == 1
    jsonschema.validate(report, SCHEMA)
    assert report["base"] == "base" and report["failed"] == ["pruned"] and not report["passed"]
    pruned = next(c for c in report["candidates"] if c["id"] == "pruned")
    gen = next(g for g in pruned["gates"] if g["metric"] == GEN)
    assert gen["failed"] and gen["test"] == "mcnemar" and gen["p_adjusted"] < 0.05 and gen["n"] > 50
    assert gen["observed"] == pytest.approx(gen["base_value"] - gen["value"])
    int8 = next(c for c in report["candidates"] if c["id"] == "int8")
    assert int8["passed"]
    assert "compare?models=base,pruned&base=base&tab=behaviors" in gen["links"]["compare"]
    md = (tmp_path / "report.md").read_text()
    assert "❌ fail" in md and gen["links"]["compare"] in md and "int8" in md
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("failures") == str(sum(g["failed"] for c in report["candidates"] for g in c["gates"]))
    assert "cnc check FAILED: pruned" in capsys.readouterr().out


def test_passing_policy_exits_zero(lmeval_exp, tmp_path):
    pol = policy(tmp_path, "loose", {"candidates": ["int8"], "metrics": {GEN: {"max_drop": 0.05}}, "max_flip_rate": 0.2})
    code, report = check(lmeval_exp, pol, tmp_path)
    assert code == 0 and report["passed"] and [c["id"] for c in report["candidates"]] == ["int8"]
    jsonschema.validate(report, SCHEMA)


def test_bad_input_exits_two_and_names_the_fix(lmeval_exp, tmp_path, capsys):
    good = {"metrics": {MC: {"min_recovery": 0.9}}}
    assert check(lmeval_exp, policy(tmp_path, "typo", {"metrics": {"tiny_sums_mc/accuracy": {"max_drop": 0.1}}}),
                 tmp_path)[0] == 2
    assert "not in the experiment; its metrics are" in capsys.readouterr().err
    assert check(lmeval_exp, policy(tmp_path, "good", good), tmp_path, "--base", "nope")[0] == 2
    assert "base 'nope' is not a model" in capsys.readouterr().err
    assert check(lmeval_exp, policy(tmp_path, "bad", {"max_flip_rate": "low"}), tmp_path)[0] == 2
    assert check(lmeval_exp, tmp_path / "missing.yaml", tmp_path)[0] == 2
    assert "file not found" in capsys.readouterr().err


def test_the_cnc_command_exits_with_the_verdict(lmeval_exp, tmp_path):
    """The installed console script, as a CI job runs it."""
    pol = policy(tmp_path, "strict", {"metrics": {MC: {"min_recovery": 0.95}}})
    cmd = [sys.executable, "-c", "from cnc.app.cli import run; run()", "check", "--config", str(lmeval_exp),
           "--policy", str(pol), "--cache-dir", str(lmeval_exp.parent / "cache")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=600)
    assert done.returncode == 1, done.stderr
    assert "pruned" in done.stdout and "FAIL" in done.stdout


def test_runs_evaluated_differently_are_reported(lmeval_runs, tmp_path):
    """A run with another few-shot count and sample limit (its results file edited as if the
    harness had been run with --num_fewshot 5 --limit 40) is compared, but the report says so."""
    runs = dict(lmeval_runs)
    copy = tmp_path / "int8-5shot"
    shutil.copytree(lmeval_runs["int8"], copy)
    (results,) = copy.rglob("results_*.json")
    data = json.loads(results.read_text())
    data["n-shot"]["tiny_sums_mc"] = 5
    data["config"]["limit"] = 40
    results.write_text(json.dumps(data))
    runs["int8"] = copy
    exp = write_experiment(tmp_path / "exp", runs)
    code, report = check(exp, policy(tmp_path, "p", {"metrics": {MC: {"min_recovery": 0.5}}}), tmp_path)
    assert code == 0
    warnings = "\n".join(report["warnings"])
    assert "tiny_sums_mc: few-shot differs: 0 (base, pruned); 5 (int8)" in warnings
    assert "sample limit differs" in warnings
    assert "tiny_sums_gen" not in warnings  # only the gated task's settings
    assert "Not evaluated the same way" in (tmp_path / "report.md").read_text()


def test_a_classifier_experiment_uses_predictions_and_kl(tmp_path):
    """A Tracker run of tests/tiny_task.py's MLP (40 instances): correct-or-not behind Acc, flip
    rate from the predictions, KL(base ‖ model) from the stored probabilities."""
    import torch

    from cnc import Tracker
    from tests.tiny_task import TinyTask, make_model

    task = TinyTask()
    torch.manual_seed(0)
    base = make_model()
    pruned = make_model()
    pruned.load_state_dict(base.state_dict())
    with torch.no_grad():
        pruned[3].weight.mul_(torch.tensor([[0.0], [1.0], [1.0]]))  # one output class silenced
    accuracy = {}
    for name, model in (("base", base), ("pruned", pruned)):
        with torch.no_grad():
            accuracy[name] = float((model.eval()(task.x).argmax(1) == task.y).float().mean())
    run = Tracker(tmp_path / "run", task="tests.tiny_task:TinyTask")
    run.log_model("base", metrics={"Acc": accuracy["base"]}, model=base)
    run.log_model("pruned", base="base", operation="prune", metrics={"Acc": accuracy["pruned"]}, model=pruned)
    pol = policy(tmp_path, "p", {"metrics": {"Acc": {"max_drop": 0.5}}, "max_flip_rate": 1.0, "max_mean_kl": 100.0})
    code = main(["check", "--config", str(tmp_path / "run"), "--policy", str(pol), "--cache-dir", str(tmp_path / "cache"),
                 "--json", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    gates = {g["kind"]: g for g in report["candidates"][0]["gates"]}
    assert code == 0 and gates["max_drop"]["test"] == "mcnemar" and gates["max_drop"]["n"] == 40
    assert gates["max_flip_rate"]["value"] > 0 and gates["max_mean_kl"]["value"] > 0
    assert "bmetric=error" in gates["max_drop"]["links"]["compare"]
