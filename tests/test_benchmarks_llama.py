"""llama-bench results from the real binary (built from the llama-cpp-python sdist) on real GGUF
files: JSON and CSV read the same, two thread counts become two devices, a model not measured on
a device is missing there, never zero."""
from __future__ import annotations

import csv
import json

import pytest

from cnc.experiment.benchmarks import read_file
from cnc.experiment.benchmarks.devices import on_device
from cnc.experiment.config import load_config
from tests.llama_bench_runs import bench_experiment


@pytest.fixture(scope="session")
def llama_bench_dir(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "llama-bench"
    folder.mkdir(exist_ok=True)
    bench_experiment(folder, two_devices_for=("f16", "q8_0", "q4_k_m"))
    return folder


def test_json_records_map_to_prompt_and_generation_tokens_per_second(llama_bench_dir):
    path = llama_bench_dir / "q4_k_m-t1.json"
    raw = json.loads(path.read_text())
    found = {m.metric: m for m in read_file(path, None, "test")}
    pp = next(r for r in raw if r["n_prompt"] == 16 and r["n_gen"] == 0)
    tg = next(r for r in raw if r["n_gen"] == 16 and r["n_prompt"] == 0)
    assert found["Prompt tokens/s"].value == pytest.approx(pp["avg_ts"])
    assert found["Generation tokens/s"].value == pytest.approx(tg["avg_ts"])
    assert found["Model file size"].value == pytest.approx(pp["model_size"] / 1e6)
    m = found["Prompt tokens/s"]
    assert m.hardware["threads"] == 1 and m.hardware["cpu"] == pp["cpu_info"] and m.hardware["backend"] == "CPU"
    assert m.settings["n_prompt"] == 16 and m.settings["n_batch"] == pp["n_batch"]
    assert m.device.endswith("· 1 thread")


def test_csv_reads_like_json(llama_bench_dir):
    path = llama_bench_dir / "q4_k_m-t2.csv"
    rows = list(csv.DictReader(path.open()))
    found = {m.metric: m for m in read_file(path, None, "test")}
    assert set(found) == {"Prompt tokens/s", "Generation tokens/s", "Model file size"}
    tg = next(r for r in rows if r["n_gen"] == "16")
    assert found["Generation tokens/s"].value == pytest.approx(float(tg["avg_ts"]))
    assert found["Generation tokens/s"].device.endswith("· 2 threads")


def test_two_thread_counts_are_two_devices_and_unmeasured_is_missing(llama_bench_dir):
    exp = load_config(str(llama_bench_dir / "experiment-3.yaml")).experiment
    assert len(exp.devices) == 2 and exp.device == exp.devices[0]
    one, two = exp.devices
    assert one.endswith("1 thread") and two.endswith("2 threads")
    on_two = on_device(exp, two)
    assert on_two.device == two and on_two is on_device(exp, two)  # memoized
    assert on_two.models["q2_k"].metrics["Generation tokens/s"] is None  # measured with 1 thread only
    assert exp.models["q2_k"].metrics["Generation tokens/s"] > 0
    # the file's size does not depend on the device
    assert on_two.models["q2_k"].metrics["Model file size"] == exp.models["q2_k"].metrics["Model file size"]
    assert exp.models["q2_k"].metrics["Model file size"] < exp.models["f16"].metrics["Model file size"]
    for mid in ("f16", "q8_0", "q4_k_m"):
        t2 = {m.metric: m.value for m in exp.models[mid].measurements if m.device == two}
        assert on_two.models[mid].metrics["Prompt tokens/s"] == t2["Prompt tokens/s"]
    spec = exp.metrics["Generation tokens/s"]
    assert spec.higher_is_better and spec.unit == "tokens/s" and "llama-bench" in spec.description
    assert not exp.metrics["Model file size"].higher_is_better
    values = [m.metrics["Prompt tokens/s"] for m in on_two.models.values() if m.metrics["Prompt tokens/s"]]
    assert on_two.metrics["Prompt tokens/s"].max == max(values)
