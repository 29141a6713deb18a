"""lm-evaluation-harness output folders as models of an experiment: the real harness's files
(tests/lmeval_harness.py: a tiny GPT-2, a 50%-pruned and an int8-rounded copy, two local tasks)
read into the tree, the task metrics and Behaviors, checked against the samples files themselves."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnc.analysis.text_scores import repetition, token_f1
from cnc.experiment.errors import ConfigError, ExperimentError
from tests.lmeval_harness import GEN_TASK, MC_TASK

MODELS = ["base", "pruned", "int8"]


def write_experiment(folder: Path, runs: dict[str, Path], attributes=("subject",)) -> Path:
    """The experiment file of the README section "lm-evaluation-harness"."""
    lines = [f"lm_eval: {{attributes: [{', '.join(attributes)}]}}",
             "operations:", "  - {name: magnitude prune, parameters: [amount]}", "  - {name: int8 rounding}",
             "models:", "  - id: base", f"    lm_eval: {runs['base']}"]
    if "pruned" in runs:
        lines += ["  - id: pruned", "    base: base", "    operation: {name: magnitude prune, parameters: {amount: 0.5}}",
                  f"    lm_eval: {runs['pruned']}"]
    if "int8" in runs:
        lines += ["  - id: int8", "    base: base", "    operation: {name: int8 rounding}", f"    lm_eval: {runs['int8']}"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def samples(folder: Path, task: str) -> list[dict]:
    (path,) = Path(folder).rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def results(folder: Path) -> dict:
    (path,) = Path(folder).rglob("results_*.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def lmeval_ctx(lmeval_runs, tmp_path_factory):
    from cnc.app.cli import load

    folder = tmp_path_factory.mktemp("lmeval-exp")
    return load(str(write_experiment(folder, lmeval_runs)), str(folder / "cache"), progress=False)


def index_of(ctx) -> dict[tuple[str, int], int]:
    return {(t, int(d)): i for i, (t, d) in enumerate(ctx.task_data()["keys"])}


def test_tree_and_task_metrics_come_from_the_results_files(lmeval_ctx, lmeval_runs):
    exp = lmeval_ctx.experiment
    assert exp.roots == ["base"] and exp.children["base"] == ["pruned", "int8"]
    assert exp.models["pruned"].operation.parameters == {"amount": 0.5}
    for mid in MODELS:
        res = results(lmeval_runs[mid])["results"]
        m = exp.models[mid]
        assert m.metrics[f"{GEN_TASK}/exact_match,strict-match"] == res[GEN_TASK]["exact_match,strict-match"]
        assert m.metrics[f"{MC_TASK}/acc"] == res[MC_TASK]["acc,none"]
        assert m.metrics[f"{MC_TASK}/acc_norm"] == res[MC_TASK]["acc_norm,none"]
        assert m.stderr[f"{MC_TASK}/acc"] == res[MC_TASK]["acc_stderr,none"]
        assert lmeval_ctx.status(mid) == "ready"
    logged = [name for name in exp.models["base"].metrics if not name.endswith(" (computed)")]
    assert logged and all(exp.metrics[name].higher_is_better for name in logged)
    assert exp.models["pruned"].metrics["Flip rate vs root (computed)"] > 0  # derived from the samples (issue 31)
    from cnc.analysis.encoding import tooltip

    acc, err = exp.models["pruned"].metrics[f"{MC_TASK}/acc"], exp.models["pruned"].stderr[f"{MC_TASK}/acc"]
    assert f"{MC_TASK}/acc: {acc:.1%} ± {err:.1%}" in tooltip(exp, "pruned")  # the hover card
    assert not exp.warnings and not lmeval_ctx.status_line()  # same documents everywhere: no notice


def test_outputs_scores_and_instances_match_the_samples_files(lmeval_ctx, lmeval_runs):
    task, where = lmeval_ctx.task_data(), index_of(lmeval_ctx)
    assert task["kind"] == "generative" and set(task["attributes"]) == {"task", "subject"}
    for mid in MODELS:
        out = lmeval_ctx.outputs(mid)
        assert out["kind"] == "generative" and out["present"].all()
        for line in samples(lmeval_runs[mid], GEN_TASK):
            i = where[(GEN_TASK, line["doc_id"])]
            assert out["texts"][i] == line["filtered_resps"][0]
            assert out["scores"]["exact_match,strict-match"][i] == line["exact_match"]
            assert out["scores"]["exact_match"][i] == line["exact_match"]
            assert out["scores"]["f1"][i] == token_f1(line["filtered_resps"][0], [line["target"]])  # the app's own
            assert out["repetition"][i] == repetition(line["filtered_resps"][0])
            assert task["prompts"][i] == line["arguments"]["gen_args_0"]["arg_0"]
            assert task["references"][i] == [line["target"]]
            assert task["attributes"]["subject"][i] == line["doc"]["subject"]
            assert task["attributes"]["task"][i] == GEN_TASK
            assert lmeval_ctx.instance(i) == {"kind": "text", "text": line["doc"]["question"]}
        for line in samples(lmeval_runs[mid], MC_TASK):
            i = where[(MC_TASK, line["doc_id"])]
            lls = [float(r[0]) for r in line["filtered_resps"]]
            chosen = int(np.argmax(lls))
            assert out["choice"][i] == chosen and out["texts"][i] == line["doc"]["choices"][chosen]
            assert out["scores"]["acc"][i] == line["acc"] == out["scores"]["exact_match"][i]
            probs = np.exp(lls) / np.exp(lls).sum()
            assert math.isclose(out["confidence"][i], probs[chosen], rel_tol=1e-5)
            assert math.isclose(out["nll"][i], -lls[line["doc"]["label"]], rel_tol=1e-5)
            assert task["references"][i] == [line["doc"]["choices"][line["doc"]["label"]]]
            assert task["choices"][i] == line["doc"]["choices"]
            assert np.isnan(out["scores"]["f1"][i]) and np.isnan(out["repetition"][i])  # a choice, not a text


def test_behaviors_show_per_document_changes_of_the_samples_files(lmeval_ctx, lmeval_runs):
    from cnc.analysis.behavior_view import ViewState
    from cnc.ui.behaviors_data import table_for, view_for

    table = table_for(lmeval_ctx, MODELS)
    where = index_of(lmeval_ctx)
    assert table.models == MODELS
    r2w_by_task = {}
    for task in (GEN_TASK, MC_TASK):
        base = {s["doc_id"]: s for s in samples(lmeval_runs["base"], task)}
        for k, mid in enumerate(MODELS[1:], 1):
            metric = "exact_match" if task == GEN_TASK else "acc"
            r2w = 0
            for line in samples(lmeval_runs[mid], task):
                i, b = where[(task, line["doc_id"])], base[line["doc_id"]]
                if task == GEN_TASK:
                    changed = line["filtered_resps"][0] != b["filtered_resps"][0]
                else:  # "changed its choice": the arg-max log-likelihood moved
                    changed = np.argmax([float(r[0]) for r in line["filtered_resps"]]) != \
                        np.argmax([float(r[0]) for r in b["filtered_resps"]])
                assert table.changed[k, i] == changed
                r2w += b[metric] == 1 and line[metric] == 0
            r2w_by_task[(task, mid)] = r2w
    assert r2w_by_task[(GEN_TASK, "pruned")] + r2w_by_task[(MC_TASK, "pruned")] > 0  # pruning broke answers
    # right -> wrong per task, as the Behaviors task rows show it
    view = view_for(lmeval_ctx, table, ViewState(mode="tasks", metric="r2w"))
    assert sorted(view.names) == sorted([GEN_TASK, MC_TASK])
    for row, task in enumerate(view.names):
        assert view.shown[1, row] * view.counts[row] == pytest.approx(r2w_by_task[(task, "pruned")])
        assert view.shown[2, row] * view.counts[row] == pytest.approx(r2w_by_task[(task, "int8")])


def test_a_model_lacking_documents_is_handled_and_said_so(lmeval_runs, tmp_path):
    from cnc.app.cli import load
    from cnc.ui.behaviors_data import table_for

    short = tmp_path / "pruned-limited"
    shutil.copytree(lmeval_runs["pruned"], short)
    (path,) = short.rglob(f"samples_{GEN_TASK}_*.jsonl")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-10]) + "\n")  # as `lm_eval --limit` leaves the last documents out
    ctx = load(str(write_experiment(tmp_path, {"base": lmeval_runs["base"], "pruned": short})),
               str(tmp_path / "cache"), progress=False)
    out, where = ctx.outputs("pruned"), index_of(ctx)
    dropped = [where[(GEN_TASK, json.loads(line)["doc_id"])] for line in lines[-10:]]
    assert not out["present"][dropped].any() and out["present"].sum() == len(out["texts"]) - 10
    assert all(out["texts"][i] == "" for i in dropped) and np.isnan(out["scores"]["exact_match"][dropped]).all()
    notice = ctx.status_line()
    assert "model 'pruned' lacks documents" in notice and f"10 of {len(lines)} in {GEN_TASK}" in notice
    table = table_for(ctx, ["base", "pruned"])
    assert np.isnan(table.scores["exact_match"][1, dropped]).all()


def test_bad_lm_eval_entries_name_file_field_and_fix(lmeval_runs, tmp_path):
    from cnc.experiment.config import load_config

    bad = write_experiment(tmp_path / "a", {"base": tmp_path / "nowhere"})
    with pytest.raises(ExperimentError, match=r"model 'base' \(lm_eval\).*matches no harness results file.*Fix"):
        load_config(bad)
    both = tmp_path / "both"
    for mid in ("base", "pruned"):
        shutil.copytree(lmeval_runs[mid], both / mid)
    with pytest.raises(ExperimentError, match=r"results of 2 models.*Fix: point each model at its own subfolder"):
        load_config(write_experiment(tmp_path / "b", {"base": both}))
    exp = tmp_path / "c" / "experiment.yaml"
    write_experiment(tmp_path / "c", {"base": lmeval_runs["base"]})
    exp.write_text(exp.read_text().replace("lm_eval: {attributes: [subject]}", "lm_eval: [subject]"))
    with pytest.raises(ExperimentError, match=r"top-level 'lm_eval'.*Fix: write lm_eval: \{attributes"):
        load_config(exp)
    config = tmp_path / "d" / "config.yaml"
    write_experiment(tmp_path / "d", {"base": lmeval_runs["base"]})
    config.write_text("experiment: experiment.yaml\ntask: {entry: 'tests.tiny_task:TinyTask'}\n")
    with pytest.raises(ConfigError, match=r"model\(s\) base take their outputs from lm_eval folders.*Fix"):
        load_config(config)


def test_a_broken_samples_file_fails_that_model_only(lmeval_runs, tmp_path):
    from cnc.app.cli import load

    broken = tmp_path / "int8-broken"
    shutil.copytree(lmeval_runs["int8"], broken)
    (path,) = broken.rglob(f"samples_{MC_TASK}_*.jsonl")
    path.write_text(path.read_text() + "{not json\n")
    ctx = load(str(write_experiment(tmp_path, {"base": lmeval_runs["base"], "int8": broken})),
               str(tmp_path / "cache"), progress=False)
    assert ctx.status("base") == "ready"
    status = ctx.status("int8")
    assert status.startswith("failed:") and path.name in status and "line" in status and "Fix" in status


def test_a_new_harness_run_in_a_watched_folder_reloads_and_is_read(lmeval_runs, tmp_path, monkeypatch):
    import time

    from cnc.app.cli import load

    pruned = tmp_path / "pruned"
    shutil.copytree(lmeval_runs["pruned"], pruned)
    ctx = load(str(write_experiment(tmp_path, {"base": lmeval_runs["base"], "pruned": pruned})),
               str(tmp_path / "cache"), progress=False, background=True)
    assert ctx.experiment.models["pruned"].metrics[f"{MC_TASK}/acc"] < 1
    # the pruned model evaluated again (here: the base's files under a later date) into the same folder
    (target,) = {p.parent for p in pruned.rglob("results_*.json")}
    for path in Path(lmeval_runs["base"]).rglob("*_20*.json*"):
        date = path.stem[path.stem.rfind("_") + 1:]
        shutil.copy(path, target / path.name.replace(date, "2099-01-01T00-00-00.000000"))
    monkeypatch.setattr("cnc.server.live.CHECK_EVERY", 0)
    assert ctx.live.check()
    assert ctx.experiment.models["pruned"].metrics[f"{MC_TASK}/acc"] == 1.0
    deadline = time.time() + 60
    while ctx.status("pruned") != "ready" and time.time() < deadline:
        time.sleep(0.2)
    assert ctx.outputs("pruned")["texts"] == ctx.outputs("base")["texts"]


def test_behaviors_csv_exports_task_rows_and_every_documents_outputs(lmeval_ctx, lmeval_runs):
    import csv
    import io

    from cnc.ui import behaviors as ui
    from cnc.ui import behaviors_export

    selection = {"models": MODELS, "base": "base"}
    state, _ = ui.state_from_query(lmeval_ctx, {"brows": "tasks", "bmetric": "r2w"}, [], MODELS)
    rows = list(csv.reader(io.StringIO(behaviors_export.csv_for(lmeval_ctx, selection, ui.state_to_dict(state, None)))))
    assert {r[0] for r in rows[1:]} == {GEN_TASK, MC_TASK}
    state, _ = ui.state_from_query(lmeval_ctx, {"brows": "instances"}, [], MODELS)
    rows = list(csv.reader(io.StringIO(behaviors_export.csv_for(lmeval_ctx, selection, ui.state_to_dict(state, None)))))
    where = index_of(lmeval_ctx)
    assert len(rows) == 1 + len(where)
    line = samples(lmeval_runs["base"], GEN_TASK)[5]
    row = rows[1 + where[(GEN_TASK, line["doc_id"])]]
    assert row[1] == line["target"] and row[2] == line["filtered_resps"][0]
