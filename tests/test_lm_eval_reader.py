"""Reading harness files without the harness: two filters per document (GSM8K-style), the older
list form of `arguments`, several runs in one folder, and the benchmark's files end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnc.bench.lm_eval import write_runs
from cnc.experiment.lm_eval import TaskRun, read_run, read_samples


def test_two_filters_merge_into_one_instance_and_metrics_keep_their_filter(tmp_path):
    from cnc.app.cli import load

    ctx = load(str(write_runs(tmp_path, n_mc=40, n_gen=12)), str(tmp_path / "cache"), progress=False)
    m = ctx.experiment.models["pruned"]
    assert {"mmlu/acc", "gsm8k/exact_match,strict-match", "gsm8k/exact_match,flexible-extract"} <= set(m.metrics)
    assert m.stderr["gsm8k/exact_match,strict-match"] == 0.013
    task, out = ctx.task_data(), ctx.outputs("pruned")
    assert len(task["prompts"]) == 52 and task["keys"][0] == ["mmlu", 0] and task["keys"][40] == ["gsm8k", 0]
    assert task["correctness"] == {"mmlu": "acc", "gsm8k": "exact_match,strict-match"}
    gen = slice(40, 52)
    assert np.isfinite(out["scores"]["exact_match,flexible-extract"][gen]).all()
    assert (out["scores"]["exact_match"][gen] == out["scores"]["exact_match,strict-match"][gen]).all()
    assert np.isnan(out["scores"]["acc"][gen]).all() and np.isnan(out["confidence"][gen]).all()
    assert set(task["attributes"]["subject"][:40]) > {"anatomy"} and task["attributes"]["subject"][40] == "(missing)"
    assert (out["choice"][:40] >= 0).all() and (out["choice"][gen] == -1).all()


def test_older_list_arguments_and_string_loglikelihoods(tmp_path):
    line = {"doc_id": 3, "doc": {"q": "2+2"}, "target": 1, "arguments": [["2+2 =", " 3"], ["2+2 =", " 4"]],
            "resps": [[[-2.0, False]], [[-0.1, True]]], "filtered_resps": [["-2.0", "False"], ["-0.1", "True"]],
            "filter": "none", "metrics": ["acc", "bleu"], "acc": 1.0, "bleu": [["4"], ["4"]]}
    path = tmp_path / "samples_t_2026.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (sample,) = read_samples(TaskRun("t", "multiple_choice", path, tmp_path / "results_2026.json", "2026"), "here")
    assert sample.prompt == "2+2 =" and sample.choices == ["3", "4"] and sample.output == "4"
    assert sample.loglikelihoods == [-2.0, -0.1]
    assert sample.scores == {"acc": 1.0}  # a per-document (reference, prediction) pair is no score


def test_several_runs_in_one_folder_merge_newest_task_wins(tmp_path):
    folder = tmp_path / "out" / "model"
    folder.mkdir(parents=True)
    for date, value in (("2026-01-01T00-00-00.0", 0.5), ("2026-02-01T00-00-00.0", 0.7)):
        (folder / f"results_{date}.json").write_text(json.dumps(
            {"results": {"a": {"acc,none": value, "acc_stderr,none": "N/A", "alias": "a"},
                         **({"b": {"acc,none": 0.1}} if value == 0.5 else {})},
             "groups": {"g": {"acc,none": 0.3, "alias": "g"}},
             "higher_is_better": {"a": {"acc": True}}}))
    run = read_run("out", tmp_path, "exp.yaml: model 'm' (lm_eval)")
    assert run.metrics == {"a/acc": 0.7, "b/acc": 0.1, "g/acc": 0.3} and not run.stderr
    assert run.tasks["g"].samples is None  # a group: metrics only
    assert [p.name for p in run.results] == ["results_2026-01-01T00-00-00.0.json", "results_2026-02-01T00-00-00.0.json"]
    assert run.tasks["a"].date == "2026-02-01T00-00-00.0"
    assert run.higher_is_better == {"a/acc": True}
    single = read_run(str(folder / "results_2026-01-01T00-00-00.0.json"), None, "x")
    assert single.metrics["a/acc"] == 0.5
    assert Path(single.results[0]).name.startswith("results_2026-01")


def test_several_gold_answers_written_as_text_become_references():
    from cnc.evaluation.lm_eval_outputs import _references
    from cnc.experiment.lm_eval import Sample

    mc = Sample(0, {}, "p", "[0, 2]", "", "", {}, choices=["a", "b", "c"])
    assert _references(mc) == ["a", "c"]
    gen = Sample(0, {}, "p", "['Paris', 'paris']", "", "", {})
    assert _references(gen) == ["Paris", "paris"]
    assert _references(Sample(0, {}, "p", "[not a list", "", "", {})) == ["[not a list"]


def test_group_members_are_left_out_of_the_metrics_unless_patterns_name_them(tmp_path):
    from cnc.experiment.config import load_experiment

    folder = tmp_path / "out" / "m"
    folder.mkdir(parents=True)
    (folder / "results_2026-01-01T00-00-00.0.json").write_text(json.dumps({"results": {
        "mmlu": {"acc,none": 0.5}, "mmlu_stem": {"acc,none": 0.4}, "mmlu_physics": {"acc,none": 0.3},
        "gsm8k": {"exact_match,strict-match": 0.2}},
        "group_subtasks": {"mmlu": ["mmlu_stem"], "mmlu_stem": ["mmlu_physics"], "gsm8k": []}}))
    (tmp_path / "a.yaml").write_text("models: [{id: m, lm_eval: out/m}]\n")
    assert load_experiment(tmp_path / "a.yaml").models["m"].metrics == \
        {"mmlu/acc": 0.5, "gsm8k/exact_match,strict-match": 0.2}  # MMLU's 57 subjects stay Behaviors rows
    (tmp_path / "b.yaml").write_text("lm_eval: {metrics: ['mmlu*/acc']}\nmodels: [{id: m, lm_eval: out/m}]\n")
    assert set(load_experiment(tmp_path / "b.yaml").models["m"].metrics) == \
        {"mmlu/acc", "mmlu_stem/acc", "mmlu_physics/acc"}
