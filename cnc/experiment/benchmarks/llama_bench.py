"""llama.cpp's `llama-bench -o json` (a list of test records) and `-o csv` (one row per test).

A record with `n_prompt > 0, n_gen = 0` is a prompt-processing test (`pp512`), `n_gen > 0,
n_prompt = 0` a generation test (`tg128`); `avg_ts` is its mean tokens/s. Combined `pg` tests
(both > 0) are skipped: their tokens/s mixes the two phases. docs/benchmarks/llama-bench.md.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from cnc.experiment.benchmarks.measurement import Measurement, number

SETTINGS = ("n_prompt", "n_gen", "n_depth", "n_batch", "n_ubatch", "n_threads", "type_k", "type_v",
            "n_gpu_layers", "flash_attn")


def records_of_csv(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def looks_like(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and all(isinstance(r, dict) and "avg_ts" in r for r in data)


def _int(value: Any) -> int:
    n = number(value)
    return int(n) if n is not None else 0


def _backend(record: dict[str, Any]) -> str:
    backends = str(record.get("backends") or "").strip()
    return backends if _int(record.get("n_gpu_layers")) > 0 or not backends else backends.split(",")[0]


def measurements(records: list[dict[str, Any]], source: str) -> list[Measurement]:
    out: list[Measurement] = []
    for i, record in enumerate(records):
        n_prompt, n_gen = _int(record.get("n_prompt")), _int(record.get("n_gen"))
        if (n_prompt > 0) == (n_gen > 0):
            continue
        gpu = str(record.get("gpu_info") or "").strip()
        offloaded = _int(record.get("n_gpu_layers")) > 0 and gpu
        hardware = {"cpu": str(record.get("cpu_info") or "").strip() or None, "gpu": gpu if offloaded else None,
                    "backend": _backend(record), "threads": _int(record.get("n_threads")) or None,
                    "batch": _int(record.get("n_batch")) or None}
        settings = {k: record[k] for k in SETTINGS if k in record and k != "n_threads"}
        where = f"{source} (record {i + 1}: {'pp' if n_prompt else 'tg'}{n_prompt or n_gen})"
        scalars = {k: v for k, v in record.items() if not isinstance(v, (list, dict))}
        tokens_s = number(record.get("avg_ts"))
        if tokens_s is not None:
            metric = "Prompt tokens/s" if n_prompt else "Generation tokens/s"
            out.append(Measurement(metric, tokens_s, hardware, settings, where, "llama-bench", scalars))
        size = number(record.get("model_size"))
        if size is not None and not any(m.metric == "Model file size" for m in out):
            out.append(Measurement("Model file size", size / 1e6, hardware, {}, where, "llama-bench", scalars))
    return out
