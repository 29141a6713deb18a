"""Benchmark importers on real result files from the tools' repositories (sources in
tests/fixtures/benchmarks/SOURCES.md): optimum-benchmark (huggingface/optimum-benchmark
benchmark.json @83c4c9f), vLLM `--save-result` JSON lines (nerdalert/vllm-bench-automation
vllm-benchmark-graphs/results.json @13ee6ea), guidellm (neuralmagic/guidellm
tests/unit/entrypoints/assets/benchmarks_stripped.json @16270d2). llama-bench runs for real in
tests/test_benchmarks_llama.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cnc.experiment.benchmarks import optimum_benchmark, read_benchmarks, read_file
from cnc.experiment.errors import ExperimentError
from cnc.experiment.forest import parse_experiment

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def by_metric(measurements):
    return {m.metric: m for m in measurements}


def test_optimum_benchmark_json_forward_latency_and_hardware():
    found = by_metric(read_file(FIXTURES / "optimum-benchmark" / "benchmark.json", None, "t"))
    assert set(found) == {"Forward latency"}  # memory was not tracked in that run (null)
    m = found["Forward latency"]
    assert m.value == pytest.approx(11.329571039485746 * 1000)
    assert m.hardware["cpu"] == "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"
    assert m.hardware["gpu"] is None  # the run was on the CPU although the machine had a T4
    assert m.device == "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz · py-txi cpu"
    assert m.settings == {"batch_size": 64, "sequence_length": 128}


def test_optimum_benchmark_report_alone_takes_hardware_from_the_config_beside_it(tmp_path):
    shutil.copy(FIXTURES / "optimum-benchmark" / "benchmark_report.json", tmp_path)
    alone = read_file(tmp_path / "benchmark_report.json", None, "t")
    assert alone[0].device == "unknown device"
    config = json.loads((FIXTURES / "optimum-benchmark" / "benchmark.json").read_text())["config"]
    (tmp_path / "benchmark_config.json").write_text(json.dumps(config))
    beside = read_file(tmp_path / "benchmark_report.json", None, "t")
    assert beside[0].device.startswith("Intel(R) Xeon(R)") and beside[0].value == alone[0].value
    named = read_benchmarks({"file": str(tmp_path / "benchmark_report.json"), "device": "bench box"}, None, "t")
    assert named[0].device == "bench box"


def test_optimum_benchmark_text_generation_sections():
    """The prefill / decode / per_token mapping, on a report shaped like optimum-benchmark's
    text-generation output (constructed here: no such real file was found to take)."""
    latency = {"unit": "s", "mean": 0.02, "p50": 0.019, "p99": 0.03}
    report = {"prefill": {"latency": latency, "throughput": {"unit": "tokens/s", "value": 800.0},
                          "memory": {"unit": "MB", "max_ram": 900.0}},
              "decode": {"latency": latency, "throughput": {"unit": "tokens/s", "value": 40.0},
                         "memory": {"unit": "MB", "max_ram": 950.0}},
              "per_token": {"latency": {"unit": "s", "mean": 0.025, "p50": 0.024, "p99": 0.05}}}
    found = by_metric(optimum_benchmark.measurements(report, "r"))
    assert found["Prompt tokens/s"].value == 800.0 and found["Generation tokens/s"].value == 40.0
    assert found["TTFT p99"].value == pytest.approx(30.0) and found["ITL mean"].value == pytest.approx(25.0)
    assert found["Peak memory"].value == 950.0


def test_vllm_json_lines_every_result_and_match():
    everything = read_file(FIXTURES / "vllm" / "results.json", None, "t")
    assert len(everything) == 9 * 8  # nine results, eight metrics each
    picked = by_metric(read_benchmarks({"file": str(FIXTURES / "vllm" / "results.json"),
                                        "match": {"deployment": "kvcache", "request_rate": 30}}, None, "t"))
    assert picked["TTFT mean"].value == pytest.approx(72.16499725443909)
    assert picked["TTFT p99"].value == pytest.approx(168.3847288293964)
    assert picked["ITL p50"].value == pytest.approx(21.040741000433627)
    assert picked["Request throughput"].value == pytest.approx(21.99082799328171)
    assert picked["Generation tokens/s"].value == pytest.approx(5806.213880812844)
    m = picked["TTFT mean"]
    assert m.hardware["gpu"] == "4xNVIDIA_L40S" and m.device == "4xNVIDIA_L40S · vllm"
    assert m.settings["request_rate"] == 30.0 and m.settings["input_len"] == "1000"


def test_guidellm_successful_requests():
    found = by_metric(read_file(FIXTURES / "guidellm" / "benchmarks.json", None, "t"))
    assert found["TTFT mean"].value == pytest.approx(16.792535781860348)
    assert found["TTFT p50"].value == pytest.approx(16.38054847717285)
    assert found["TTFT p99"].value == pytest.approx(21.281957626342773)
    assert found["ITL p99"].value == pytest.approx(5.258346167136365)
    assert found["Request throughput"].value == pytest.approx(1.5481806532737452)
    assert found["Generation tokens/s"].value == pytest.approx(198.13346751788123)
    assert found["TTFT mean"].settings == {"strategy": "synchronous", "data": "prompt_tokens=256,output_tokens=128"}
    assert found["TTFT mean"].hardware == {"backend": "openai_http"}


def test_experiment_with_benchmarks_devices_and_folder(tmp_path):
    (tmp_path / "bench" / "int4").mkdir(parents=True)
    shutil.copy(FIXTURES / "vllm" / "results.json", tmp_path / "bench" / "base.json")
    shutil.copy(FIXTURES / "guidellm" / "benchmarks.json", tmp_path / "bench" / "int4" / "report.json")
    data = {"benchmarks": {"folder": "bench"},
            "models": [{"id": "base", "metrics": {"Accuracy": 0.9}},
                       {"id": "int4", "base": "base", "operation": "quantize", "metrics": {"Accuracy": 0.88}},
                       {"id": "fp8", "base": "base", "operation": "quantize",
                        "benchmarks": [{"file": "bench/base.json", "match": {"deployment": "base", "request_rate": 10},
                                        "device": "H100"}]}]}
    exp = parse_experiment(data, "exp.yaml", tmp_path)
    assert exp.devices[0] == "4xNVIDIA_L40S · vllm" and set(exp.devices) == {"4xNVIDIA_L40S · vllm", "openai_http", "H100"}
    assert exp.models["int4"].metrics["TTFT mean"] is None  # measured on another device: missing, not 0
    assert exp.models["base"].metrics["TTFT mean"] == pytest.approx(884.9588357166714)  # the last of nine wins
    assert any("several 'TTFT mean' measurements" in w for w in exp.warnings)
    assert exp.metrics["TTFT mean"].unit == "ms" and not exp.metrics["TTFT mean"].higher_is_better


@pytest.mark.parametrize("entry, message", [
    ("missing.json", "not found"),
    ({"file": "x.json", "format": "tensorrt"}, "format 'tensorrt' is unknown"),
    ({"path": "x.json"}, "is not understood"),
    ({"file": "x.json", "match": [1]}, "`match` must be a mapping"),
])
def test_bad_benchmark_entries_name_the_fix(tmp_path, entry, message):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ExperimentError, match=message):
        parse_experiment({"models": [{"id": "a", "benchmarks": entry}]}, "exp.yaml", tmp_path)


def test_unrecognised_and_broken_files(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"accuracy": 0.9}))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ExperimentError, match="is not a result file of llama-bench"):
        read_benchmarks("other.json", tmp_path, "exp.yaml: model 'a'")
    with pytest.raises(ExperimentError, match="not valid JSON"):
        read_benchmarks("broken.json", tmp_path, "exp.yaml: model 'a'")
    with pytest.raises(ExperimentError, match="does not look like vllm output"):
        read_benchmarks({"file": "other.json", "format": "vllm"}, tmp_path, "exp.yaml: model 'a'")
    with pytest.raises(ExperimentError, match="top-level 'benchmarks'"):
        parse_experiment({"benchmarks": "bench", "models": [{"id": "a"}]}, "exp.yaml", tmp_path)


def test_the_device_of_a_request_comes_from_its_query_or_a_saved_view():
    from cnc.server.device import device_in

    assert device_in("?x=Size&device=AMD%20EPYC%20%C2%B7%20CPU%20%C2%B7%202%20threads") == "AMD EPYC · CPU · 2 threads"
    assert device_in("sel=a,b") is None
    assert device_in("?view=abc", lambda q: "?device=H100&sel=a") == "H100"


def test_selection_details_say_when_numbers_were_measured_differently(tmp_path):
    """Next to the charted numbers: two vLLM results at different request rates are not comparable."""
    from cnc.app.cli import load
    from cnc.ui import selection_details

    vllm = str(FIXTURES / "vllm" / "results.json")
    models = [{"id": "base", "metrics": {"Accuracy": 0.9},
               "benchmarks": [{"file": vllm, "match": {"deployment": "base", "request_rate": 10}}]},
              {"id": "fp8", "base": "base", "operation": "quantize", "metrics": {"Accuracy": 0.89},
               "benchmarks": [{"file": vllm, "match": {"deployment": "kvcache", "request_rate": 30}}]}]
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({"models": models}))
    ctx = load(str(tmp_path / "exp.yaml"), str(tmp_path / "cache"), progress=False)
    content = selection_details.panel_content(ctx, ["base", "fp8"], "TTFT p99")
    notes = " ".join(content.notes)
    assert "Not evaluated the same way" in notes and "request_rate differs" not in notes
    assert "TTFT p99 measured with different request_rate: 10.0 (base); 30.0 (fp8)" in notes
    assert "num_prompts" in notes  # 300 prompts against 900
    same = selection_details.panel_content(ctx, ["base", "fp8"], "Accuracy")
    assert not any("Not evaluated" in n for n in same.notes)
