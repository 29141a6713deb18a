"""Real llama-bench results on the tiny Llama's GGUF variants, with 1 and 2 threads as two "devices".

`bench_experiment(folder)` takes the variants (tests/gguf_models.py, cached per machine), runs
the real `llama-bench` (tests/llama_cpp_tools.py) once per thread count, JSON for one thread and
CSV for two, short runs (`-p 16 -n 16 -r 1`), and writes an experiment naming the result files.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.gguf_models import shared_variants
from tests.llama_cpp_tools import ensure_built

VARIANTS = ("f16", "q8_0", "q4_k_m", "q2_k")


def run_llama_bench(gguf: Path, threads: int, fmt: str, out: Path) -> Path:
    if not out.exists():
        tool = ensure_built().tool("llama-bench")
        result = subprocess.run([str(tool), "-m", str(gguf), "-p", "16", "-n", "16", "-r", "1", "-t", str(threads),
                                 "-o", fmt], check=True, capture_output=True, text=True)
        out.write_text(result.stdout)
    return out


def bench_experiment(folder: Path, two_devices_for: tuple[str, ...] = VARIANTS) -> Path:
    """An experiment of the GGUF variants (f16 the base) with their llama-bench results; only the
    variants in `two_devices_for` are measured with 2 threads too."""
    folder = Path(folder)
    variants = shared_variants()
    models = []
    for key in VARIANTS:
        files = [run_llama_bench(variants[key], 1, "json", folder / f"{key}-t1.json").name]
        if key in two_devices_for:
            files.append(run_llama_bench(variants[key], 2, "csv", folder / f"{key}-t2.csv").name)
        entry = {"id": key, "benchmarks": files}
        if key != "f16":
            entry.update(base="f16", operation={"name": "llama-quantize", "parameters": {"type": key.upper()}})
        models.append(entry)
    path = folder / f"experiment-{len(two_devices_for)}.yaml"
    path.write_text(yaml.safe_dump({"operations": [{"name": "llama-quantize", "parameters": ["type"]}],
                                    "models": models}, sort_keys=False))
    return path
