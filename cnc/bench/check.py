"""check.*: `cnc check` on an experiment of 1,000 lm-eval-evaluated models (target ≤ 5 s).

The models' harness output folders are written in lm-eval 0.4.13's file format (cnc/bench/lm_eval.py's
lines: 200 four-choice MMLU-like documents and 50 GSM8K-like generated answers with two filters per
model), precomputed once (`check.precompute_1000`, reading every samples line), then the whole
command is timed on the warm cache: parsing the experiment (1,000 results files), reading every
model's stored outputs, two metric gates with paired tests (McNemar) for 999 candidates, Holm over
1,998 tests, the flip-rate gate, and writing the JSON, Markdown and JUnit reports.
"""
from __future__ import annotations

import contextlib
import io
import json
import random
import tempfile
import time
from pathlib import Path

from cnc.bench import median_ms
from cnc.bench.lm_eval import _gen_lines, _mc_line

DATE = "2026-01-01T00-00-00.000000"


def write_runs(root: Path, n_models: int, n_mc: int = 200, n_gen: int = 50) -> Path:
    ids = ["base"] + [f"v{k}" for k in range(1, n_models)]
    for k, mid in enumerate(ids):
        rng = random.Random(k)
        folder = root / "out" / mid
        folder.mkdir(parents=True, exist_ok=True)
        flip = 0.02 + 0.2 * (k % 7) / 7
        mc = [_mc_line(i, rng, flip) for i in range(n_mc)]
        gen = [line for i in range(n_gen) for line in _gen_lines(i, rng, flip)]
        (folder / f"samples_mmlu_{DATE}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in mc))
        (folder / f"samples_gsm8k_{DATE}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in gen))
        strict = [x for x in gen if x["filter"] == "strict-match"]
        results = {"results": {"mmlu": {"alias": "mmlu", "acc,none": sum(x["acc"] for x in mc) / n_mc},
                               "gsm8k": {"alias": "gsm8k",
                                         "exact_match,strict-match": sum(x["exact_match"] for x in strict) / n_gen}},
                   "configs": {"mmlu": {"output_type": "multiple_choice"}, "gsm8k": {"output_type": "generate_until"}},
                   "higher_is_better": {"mmlu": {"acc": True}, "gsm8k": {"exact_match": True}},
                   "versions": {"mmlu": 1.0, "gsm8k": 3.0}, "n-shot": {"mmlu": 0, "gsm8k": 5},
                   "config": {"limit": None}, "lm_eval_version": "0.4.13", "model_name": f"models/{mid}"}
        (folder / f"results_{DATE}.json").write_text(json.dumps(results))
    lines = ["models:", "  - {id: base, lm_eval: out/base}"]
    lines += [f"  - {{id: {mid}, base: base, operation: compress, lm_eval: out/{mid}}}" for mid in ids[1:]]
    (root / "experiment.yaml").write_text("\n".join(lines) + "\n")
    (root / "policy.yaml").write_text("metrics:\n  mmlu/acc: {min_recovery: 0.95}\n"
                                      "  gsm8k/exact_match,strict-match: {max_drop: 0.05}\nmax_flip_rate: 0.15\n")
    return root / "experiment.yaml"


def scenarios(quick: bool) -> list[dict]:
    from cnc.app.check import main

    n = 20 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_runs(root, n)
        argv = ["--config", str(root / "experiment.yaml"), "--policy", str(root / "policy.yaml"),
                "--cache-dir", str(root / "cache"), "--json", str(root / "r.json"), "--markdown", str(root / "r.md"),
                "--junit", str(root / "r.xml")]
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            codes = [main(argv)]  # fills the cache: every samples line read once
        first_ms = (time.perf_counter() - start) * 1000

        def warm() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                codes.append(main([*argv, "--no-precompute"]))

        ms = median_ms(warm, repeat=3)
        cpu = time.process_time()
        warm()
        cpu_ms = round((time.process_time() - cpu) * 1000)  # on a shared machine wall time mostly waits
        report = json.loads((root / "r.json").read_text())
        size = dict(models=n, documents=250, failed=len(report["failed"]), exit_codes=sorted(set(codes)))
        return [{"scenario": "check.precompute_and_check", **size, "ms": first_ms},
                {"scenario": "check.warm_cache", **size, "cpu_ms": cpu_ms, "ms": ms}]
