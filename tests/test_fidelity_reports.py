"""Fidelity reports as model metrics (issue 31): llama.cpp's `llama-perplexity --kl-divergence`
report (the table quoted in llama.cpp's docs here; the real tool's output in
tests/test_fidelity_llama_cpp.py) and llm-compressor's KL tool JSON; bad files get clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnc.experiment.errors import ExperimentError
from cnc.experiment.fidelity_reports import parse_kl_tool_json, parse_llama_report, read_report
from cnc.experiment.forest import parse_experiment

DOCS = Path(__file__).parent / "fixtures" / "llama_cpp_readme_kld.md"


def test_the_report_quoted_in_llama_cpps_docs():
    r = parse_llama_report(DOCS.read_text(encoding="utf-8"))
    v = r.values
    assert v["Mean PPL(Q)"] == 6.227711 and r.errors["Mean PPL(Q)"] == 0.037833
    assert v["Mean PPL(Q)/PPL(base)"] == 1.000404 and v["Mean PPL(base)"] == 6.225194
    assert v["Cor(ln(PPL(Q)), ln(PPL(base)))"] == pytest.approx(0.9999)
    assert v["Mean KLD"] == 0.00002515 and r.errors["Mean KLD"] == 0.00000020
    assert v["Maximum KLD"] == 0.012206 and v["99.9% KLD"] == 0.000799 and v["Median KLD"] == 0.000013
    assert v["Minimum KLD"] == -0.000059 and v["5.0% KLD"] == -0.000008
    assert v["Mean Δp"] == pytest.approx(-0.000000745) and v["Maximum Δp"] == pytest.approx(0.04186)
    assert v["Minimum Δp"] == pytest.approx(-0.04672) and v["RMS Δp"] == pytest.approx(0.0015)
    assert v["Same top p"] == pytest.approx(0.99739) and r.errors["Same top p"] == pytest.approx(0.00013)
    assert set(r.metrics()) == {"Mean PPL(Q)", "Mean PPL(Q)/PPL(base)", "Mean KLD", "Median KLD", "99.0% KLD",
                                "99.9% KLD", "Maximum KLD", "Mean Δp", "RMS Δp", "Same top p"}  # no 90.0% KLD row


def test_printed_lines_with_log_prefixes():
    text = ("0.13.291.205 I Mean PPL(Q)                   :  13.990674 ±   0.250594\n"
            "Mean PPL(Q)/PPL(base)         :   1.003449 ±   0.000664\n"
            "Mean    KLD:   0.002944 ±   0.000022\n 1.0%   Δp: -4.346%\n"
            "Mean    Δp: -0.036 ± 0.025 %\nSame top p: 96.694 ± 0.112 %\n")
    v = parse_llama_report(text).values
    assert v["Mean PPL(Q)"] == 13.990674 and v["Mean KLD"] == 0.002944
    assert v["1.0% Δp"] == pytest.approx(-0.04346) and v["Mean Δp"] == pytest.approx(-0.00036)
    assert v["Same top p"] == pytest.approx(0.96694)


def test_kl_tool_json():
    r = parse_kl_tool_json({"mean_kl": 0.02, "median_kl": 0.01, "max_kl": 0.9, "per_sample_kl": list(range(101))})
    assert r.metrics() == {"mean_kl": 0.02, "median_kl": 0.01, "max_kl": 0.9, "p90_kl": 90.0, "p99_kl": 99.0}
    assert r.per_sample.shape == (101,)
    with pytest.raises(ExperimentError, match="'mean_kl' number"):
        parse_kl_tool_json({"kl": 1})
    with pytest.raises(ExperimentError, match="'max_kl' is 'big'"):
        parse_kl_tool_json({"mean_kl": 1, "max_kl": "big"})
    with pytest.raises(ExperimentError, match="per_sample_kl"):
        parse_kl_tool_json({"mean_kl": 1, "per_sample_kl": [1, None]})


def test_a_model_entry_names_the_file(tmp_path):
    (tmp_path / "kld-q4.log").write_text(DOCS.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "kl.json").write_text(json.dumps({"mean_kl": 0.5, "per_sample_kl": [0.1, 0.9]}))
    exp = parse_experiment({"models": [
        {"id": "base"},
        {"id": "q4", "base": "base", "operation": "quantize", "fidelity": "kld-q4.log", "metrics": {"Same top p": 0.5}},
        {"id": "w4", "base": "base", "operation": "quantize", "fidelity": "kl.json"}]}, "exp.yaml", tmp_path)
    q4 = exp.models["q4"]
    assert q4.metrics["Mean KLD"] == 0.00002515 and q4.stderr["Mean KLD"] == 0.00000020
    assert q4.metrics["Same top p"] == 0.5  # a logged value wins
    assert not exp.metrics["Mean KLD"].higher_is_better and exp.metrics["Same top p"].format == ".2%"
    assert "kld-q4.log" in exp.metrics["Mean KLD"].description
    assert exp.models["w4"].metrics == {"mean_kl": 0.5, "p90_kl": pytest.approx(0.82), "p99_kl": pytest.approx(0.892)}


def test_bad_files_get_errors_naming_the_model_the_file_and_the_fix(tmp_path):
    def entry(name):
        return {"models": [{"id": "base"}, {"id": "q", "base": "base", "operation": "quantize", "fidelity": name}]}
    with pytest.raises(ExperimentError, match=r"model 'q' \(fidelity\): fidelity report .*missing.log not found"):
        parse_experiment(entry("missing.log"), "exp.yaml", tmp_path)
    (tmp_path / "ppl.log").write_text("Final estimate: PPL = 13.9634 +/- 0.25031\n")
    with pytest.raises(ExperimentError, match=r"ppl.log: no 'Mean    KLD:' line.*Fix"):
        parse_experiment(entry("ppl.log"), "exp.yaml", tmp_path)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ExperimentError, match="not valid JSON"):
        read_report(tmp_path / "bad.json", "exp.yaml")
