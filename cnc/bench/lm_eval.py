"""lm_eval.*: opening lm-evaluation-harness runs at benchmark size (no harness needed).

Three models' output folders are written in the harness's file format (results_<date>.json and
samples_<task>_<date>.jsonl lines with doc, target, arguments, resps, filtered_resps, filter and
per-document metrics, as lm-eval 0.4.13 writes them) at the size of MMLU (14,042 four-choice
documents, `subject` field) and GSM8K (1,319 generated answers, two filters); then timed: parsing the
experiment (results files only), precompute (every samples line read, aligned and stored) and the
Behaviors table of the three models (read from the disk cache).
"""
from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from cnc.bench import median_ms

MODELS = ("base", "pruned", "int8")
SUBJECTS = ("anatomy", "astronomy", "college_physics", "econometrics", "virology", "world_religions")


def _mc_line(i: int, rng: random.Random, flip: float) -> dict:
    lls = [-rng.uniform(0.5, 6.0) for _ in range(4)]
    gold = i % 4
    if rng.random() > flip:
        lls[gold] = max(lls) + 0.5
    chosen = lls.index(max(lls))
    doc = {"question": f"Question {i}: which option is right?", "subject": SUBJECTS[i % len(SUBJECTS)],
           "choices": [f"option {c} of {i}" for c in "ABCD"], "answer": gold}
    return {"doc_id": i, "doc": doc, "target": gold,
            "arguments": {f"gen_args_{c}": {"arg_0": f"{doc['question']}\nAnswer:", "arg_1": f" {'ABCD'[c]}"}
                          for c in range(4)},
            "resps": [[[str(ll), "False"]] for ll in lls], "filtered_resps": [[str(ll), "False"] for ll in lls],
            "filter": "none", "metrics": ["acc"], "doc_hash": "", "prompt_hash": "", "target_hash": "",
            "acc": float(chosen == gold)}


def _gen_lines(i: int, rng: random.Random, flip: float) -> list[dict]:
    answer = str(i * 7 % 1000)
    said = answer if rng.random() > flip else str(int(answer) + 1)
    text = f"Let's think. {i} apples and more... The answer is {said}."
    out = []
    for filt, value in (("strict-match", said), ("flexible-extract", said)):
        out.append({"doc_id": i, "doc": {"question": f"Problem {i}", "answer": f"#### {answer}"}, "target": answer,
                    "arguments": {"gen_args_0": {"arg_0": f"Question: Problem {i}\nAnswer:",
                                                 "arg_1": {"until": ["Question:"], "do_sample": False}}},
                    "resps": [[text]], "filtered_resps": [value], "filter": filt, "metrics": ["exact_match"],
                    "doc_hash": "", "prompt_hash": "", "target_hash": "", "exact_match": float(value == answer)})
    return out


def write_runs(root: Path, n_mc: int, n_gen: int) -> Path:
    """An experiment file over three harness output folders of this size."""
    date = "2026-01-01T00-00-00.000000"
    for k, mid in enumerate(MODELS):
        rng = random.Random(k)
        folder = root / "out" / mid / f"__models__{mid}"
        folder.mkdir(parents=True, exist_ok=True)
        flip = 0.02 + 0.1 * k
        with open(folder / f"samples_mmlu_{date}.jsonl", "w") as fh:
            for i in range(n_mc):
                fh.write(json.dumps(_mc_line(i, rng, flip)) + "\n")
        with open(folder / f"samples_gsm8k_{date}.jsonl", "w") as fh:
            for i in range(n_gen):
                fh.writelines(json.dumps(line) + "\n" for line in _gen_lines(i, rng, flip))
        results = {"results": {"mmlu": {"alias": "mmlu", "acc,none": 0.6 - 0.05 * k, "acc_stderr,none": 0.004},
                               "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.4 - 0.05 * k,
                                         "exact_match_stderr,strict-match": 0.013,
                                         "exact_match,flexible-extract": 0.42 - 0.05 * k}},
                   "configs": {"mmlu": {"output_type": "multiple_choice"}, "gsm8k": {"output_type": "generate_until"}},
                   "higher_is_better": {"mmlu": {"acc": True}, "gsm8k": {"exact_match": True}},
                   "model_name": f"models/{mid}"}
        (folder / f"results_{date}.json").write_text(json.dumps(results))
    lines = ["lm_eval: {attributes: [subject]}", "models:", "  - {id: base, lm_eval: out/base}",
             "  - {id: pruned, base: base, operation: prune, lm_eval: out/pruned}",
             "  - {id: int8, base: base, operation: quantize, lm_eval: out/int8}"]
    (root / "experiment.yaml").write_text("\n".join(lines) + "\n")
    return root / "experiment.yaml"


def scenarios(quick: bool) -> list[dict]:
    from cnc.analysis.generative_behaviors import build_generative_table
    from cnc.experiment.config import load_config
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    n_mc, n_gen = (2000, 200) if quick else (14042, 1319)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = write_runs(root, n_mc, n_gen)
        size = dict(models=len(MODELS), documents=n_mc + n_gen,
                    mb=round(sum(p.stat().st_size for p in root.rglob("*.jsonl")) / 1e6, 1))
        records.append({"scenario": "lm_eval.parse_experiment", **size,
                        "ms": median_ms(lambda: load_config(path, root / "unused"), repeat=5)})
        runs = iter(range(1000))

        def cold_precompute():  # a fresh cache each time: every samples line is read
            cache = root / f"cache{next(runs)}"
            precompute(load_config(path, cache), SummaryStore(cache), progress=False)

        records.append({"scenario": "lm_eval.precompute", **size, "ms": median_ms(cold_precompute, repeat=3)})
        config = load_config(path, root / "cache0")

        def table():  # a fresh context: the stored dicts are read from the disk cache
            ctx = AppContext(config, SummaryStore(config.cache_dir))
            return build_generative_table(ctx.task_data(), list(MODELS), ctx.outputs, ctx.status)

        records.append({"scenario": "lm_eval.behaviors_table", **size, "ms": median_ms(table, repeat=3)})
    return records
