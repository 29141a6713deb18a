"""The fidelity-report parser on REAL `llama-perplexity --kl-divergence` output (issue 31): a tiny
Llama converted to GGUF F16 and quantized to Q4_K_M by llama.cpp's own tools (tests/gguf_models.py,
tests/llama_cpp_tools.py), the F16 logits saved with --kl-divergence-base, then each GGUF scored
against them; the logs become model metrics through a model entry's `fidelity:`."""
from __future__ import annotations

import re
import subprocess

import pytest

from cnc.experiment.fidelity_reports import parse_llama_report
from cnc.experiment.forest import parse_experiment


@pytest.fixture(scope="module")
def kld_logs(tmp_path_factory) -> dict:
    pytest.importorskip("sentencepiece")
    pytest.importorskip("transformers")
    from tests.gguf_models import corpus, shared_variants
    from tests.llama_cpp_tools import ensure_built

    folder = tmp_path_factory.mktemp("gguf")
    tools = ensure_built()
    variants = shared_variants()
    text = folder / "text.txt"  # one line: the tiny SentencePiece vocabulary has no newline token
    text.write_text(" ".join(" ".join(corpus()).split()) * 4)
    perplexity = str(tools.tool("llama-perplexity"))
    common = ["-c", "128", "-b", "128", "-t", "1"]
    subprocess.run([perplexity, "-m", str(variants["f16"]), "-f", str(text), "--kl-divergence-base",
                    str(folder / "base.kld"), *common], check=True, capture_output=True, text=True)
    logs = {}
    for name in ("f16", "q4_k_m"):
        for _attempt in range(2):  # once (of ~50 full runs) its log came without the closing statistics: run it again
            run = subprocess.run([perplexity, "-m", str(variants[name]), "--kl-divergence-base", str(folder / "base.kld"),
                                  "--kl-divergence", *common], check=True, capture_output=True, text=True)
            if re.search(r"Mean\s*KLD", run.stdout + run.stderr):
                break
        logs[name] = folder / f"kld-{name}.log"
        logs[name].write_text(run.stdout + run.stderr)  # as a user saves it: llama-perplexity ... > log 2>&1
    return logs


def test_real_reports_parse_into_consistent_statistics(kld_logs):
    same = parse_llama_report(kld_logs["f16"].read_text()).values
    q4 = parse_llama_report(kld_logs["q4_k_m"].read_text())
    v = q4.values
    assert abs(same["Mean KLD"]) < 1e-4 and same["Same top p"] == pytest.approx(1.0)  # F16 against itself
    assert same["Mean PPL(Q)/PPL(base)"] == pytest.approx(same["Mean PPL(Q)"] / same["Mean PPL(base)"], rel=0.05)
    assert v["Mean KLD"] > 100 * max(abs(same["Mean KLD"]), 1e-6) and 0 < v["Same top p"] < 1
    assert v["Minimum KLD"] <= v["Median KLD"] <= v["90.0% KLD"] <= v["99.0% KLD"] <= v["99.9% KLD"] <= v["Maximum KLD"]
    assert v["Mean PPL(Q)/PPL(base)"] == pytest.approx(v["Mean PPL(Q)"] / v["Mean PPL(base)"], rel=0.05)
    assert v["Minimum Δp"] <= v["Median Δp"] <= v["Maximum Δp"] and 0 < v["RMS Δp"] < 1
    assert q4.errors["Mean KLD"] > 0 and q4.errors["Same top p"] > 0
    assert set(q4.metrics()) == {"Mean PPL(Q)", "Mean PPL(Q)/PPL(base)", "Mean KLD", "Median KLD", "90.0% KLD",
                                 "99.0% KLD", "99.9% KLD", "Maximum KLD", "Mean Δp", "RMS Δp", "Same top p"}


def test_model_entries_name_the_real_logs(kld_logs):
    folder = kld_logs["f16"].parent
    exp = parse_experiment({"models": [
        {"id": "f16", "fidelity": kld_logs["f16"].name, "metrics": {"Size": 2.5}},
        {"id": "q4_k_m", "base": "f16", "operation": {"name": "quantize", "parameters": {"type": "Q4_K_M"}},
         "fidelity": kld_logs["q4_k_m"].name, "metrics": {"Size": 1.1}}]}, "exp.yaml", folder)
    q4 = exp.models["q4_k_m"].metrics
    assert q4["Mean KLD"] == parse_llama_report(kld_logs["q4_k_m"].read_text()).values["Mean KLD"]
    assert q4["Mean KLD"] > exp.models["f16"].metrics["Mean KLD"]
    assert exp.models["q4_k_m"].stderr["Same top p"] > 0 and not exp.metrics["Mean KLD"].higher_is_better
