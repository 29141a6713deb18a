"""`cnc check` end to end on the text demo (a reduced build: the demo's recipe on fewer training
steps and six variants; the full build takes minutes): generative scores behind the demo's
"Exact match" and "F1" metrics, flip rate on the generated answers, per-token KL from the base."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from cnc.app.cli import main
from cnc.demos.text import build as text_build

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "check-report.schema.json").read_text())


@pytest.fixture(scope="module")
def text_config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("check-text")
    mp = pytest.MonkeyPatch()
    mp.setattr(text_build, "BASE_STEPS", 300)
    mp.setattr(text_build, "FT_STEPS", 5)
    mp.setattr(text_build, "LATENCY_RUNS", 1)
    recipe = [s for s in text_build.demo_recipe() if s.id in ("global30", "layer30", "int8")]
    mp.setattr(text_build, "demo_recipe", lambda: recipe)
    try:
        exp = text_build.build_demo(folder / "demo" / "experiment.yaml", progress=False)
    finally:
        mp.undo()
    config = yaml.safe_load((ROOT / "cnc" / "demos" / "text" / "config.yaml").read_text())
    config.pop("build")
    config["experiment"] = str(exp)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(config: Path, data: dict, out: Path) -> tuple[int, dict]:
    pol = out / "policy.yaml"
    pol.write_text(yaml.safe_dump(data))
    code = main(["check", "--config", str(config), "--policy", str(pol), "--cache-dir", str(config.parent / "cache"),
                 "--json", str(out / "r.json")])
    return code, json.loads((out / "r.json").read_text())


def test_global_pruning_fails_and_layerwise_passes(text_config, tmp_path):
    code, report = run(text_config, {"metrics": {"Exact match": {"min_recovery": 0.9}, "F1": {"max_drop": 0.05}},
                                     "max_flip_rate": 0.5, "max_mean_kl": 1.0}, tmp_path)
    jsonschema.validate(report, SCHEMA)
    assert code == 1 and "global30" in report["failed"]
    by = {c["id"]: {g["kind"] + (g["metric"] or ""): g for g in c["gates"]} for c in report["candidates"]}
    em = by["global30"]["min_recoveryExact match"]
    assert em["failed"] and em["test"] == "mcnemar" and em["n"] == 500 and em["p_adjusted"] < 1e-6
    f1 = by["global30"]["max_dropF1"]
    assert f1["failed"] and f1["test"] in ("mcnemar", "bootstrap") and f1["p_adjusted"] < 1e-6
    assert by["global30"]["max_flip_rate"]["value"] > 0.5
    assert by["global30"]["max_mean_kl"]["value"] > 1.0
    assert "bmetric=sc:exact_match" in em["links"]["compare"]
    assert by["int8"]["max_mean_kl"]["value"] < by["global30"]["max_mean_kl"]["value"]


def test_a_policy_the_good_variants_meet_passes(text_config, tmp_path):
    code, report = run(text_config, {"candidates": ["layer30", "int8"], "metrics": {"Exact match": {"min_recovery": 0.8}},
                                     "max_flip_rate": 0.5}, tmp_path)
    assert code == 0 and report["passed"], report


def test_kl_against_a_base_that_is_not_the_root_fails_and_says_how_to_fix(text_config, tmp_path):
    """Per-token KL is stored against the tree's root only: gating it against another model must
    fail visibly (never pass on a missing value) and name the root to gate against."""
    code, report = run(text_config, {"base": "int8", "candidates": ["global30"], "max_mean_kl": 100.0}, tmp_path)
    [gate] = report["candidates"][0]["gates"]
    assert code == 1 and gate["failed"] and gate["value"] is None
    assert "measured against the tree's root 'base'" in gate["reason"] and "`base: base`" in gate["reason"]
