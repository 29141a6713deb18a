"""Fault injection, issue 33's input half: non-finite metrics (finding 5), hostile YAML / JSON
(6), cut and edited Tracker run files (7), writers killed mid-write (8) and malformed requests (9).
Each test reproduces the fault as it was found and checks what happens now."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cnc import Tracker
from cnc.app.cli import load
from cnc.bench.hostile_input import alias_bomb
from cnc.experiment.config import load_config
from cnc.experiment.errors import ExperimentError
from cnc.experiment.mlflow.mapping import RunRecord, experiment_from_runs
from cnc.experiment.tracker import LAST_GOOD_FILE, clean_debris, find_debris

ROOT = Path(__file__).resolve().parent.parent


def run_cli(config: Path, tmp_path: Path, env: dict | None = None) -> tuple[int, str, int]:
    """(exit code, stderr, peak memory in MB above the imported app's) of `cnc --config <config>
    --precompute-only` in a fresh process."""
    code = textwrap.dedent(f"""
        import resource, sys
        from cnc.app.cli import main
        import cnc.experiment.config, cnc.precompute.lock, cnc.precompute.store, cnc.server.context
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rc = main(["--config", {str(config)!r}, "--cache-dir", {str(tmp_path / "cache")!r}, "--precompute-only"])
        print("peak-rss-kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, file=sys.stderr)
        sys.exit(rc)
    """)
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    lines = ran.stderr.strip().splitlines()
    rss = int(lines[-1].split()[1]) // 1024 if lines and lines[-1].startswith("peak-rss-kb") else -1
    return ran.returncode, "\n".join(lines[:-1]), rss


# ---------------------------------------------------------------- finding 5: NaN / inf metrics

@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "'NaN'", "1e999", "'fast'"])
def test_non_finite_metric_in_yaml_is_one_clear_error(tmp_path, value):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"models:\n  - {{id: base, metrics: {{Size: 1.0}}}}\n  - {{id: m1, base: base, operation: prune, "
                   f"metrics: {{Size: {value}}}}}\n")
    rc, err, _ = run_cli(exp, tmp_path)
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("error: ")  # one line
    assert str(exp) in err and "model 'm1'" in err and "metric 'Size'" in err and "Fix:" in err


def test_non_finite_metric_in_model_info_json_is_an_error(tmp_path):
    info = json.loads((ROOT / "tests/fixtures/original_model_info.json").read_text())
    info["models"][1]["metrics"][next(iter(info["models"][1]["metrics"]))] = float("-inf")
    path = tmp_path / "model_info.json"
    path.write_text(json.dumps(info))  # Python writes -Infinity, which json.loads reads back
    with pytest.raises(ExperimentError, match=rf"model '{info['models'][1]['id']}' has metric .*-inf"):
        load_config(path, cache_dir=tmp_path / "cache")


def test_tracker_refuses_non_finite_metrics(tmp_path):
    t = Tracker(tmp_path / "run")
    with pytest.raises(ValueError, match=r"log_model\('m'\): metric 'Loss' = nan"):
        t.log_model("m", metrics={"Loss": float("nan")})
    assert load_config(tmp_path / "run").experiment.models == {}  # nothing half-logged


def test_mlflow_nan_and_inf_are_missing_with_a_notice():
    runs = [RunRecord("r1", "base", metrics={"Accuracy": 0.9, "Loss": float("nan")}),
            RunRecord("r2", "pruned", metrics={"Accuracy": float("inf"), "Loss": 0.4})]
    data, notices = experiment_from_runs(runs)
    assert data["models"][0]["metrics"] == {"Accuracy": 0.9, "Loss": None}
    assert data["models"][1]["metrics"] == {"Accuracy": None, "Loss": 0.4}
    assert any("run 'base': metric 'Loss' was logged as nan" in n for n in notices)
    assert any("run 'pruned': metric 'Accuracy' was logged as inf" in n for n in notices)


def test_mlflow_runs_logged_with_nan_and_inf_open_with_notices(tmp_path):
    pytest.importorskip("mlflow")
    from tests.mlflow_runs import EXPERIMENT, log_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_run(uri, "base", {}, {"Accuracy": 0.9, "Loss": float("nan")})  # MLflow's own client stores these
    log_run(uri, "pruned", {"cnc.base": "base", "cnc.operation": "prune"}, {"Accuracy": float("inf"), "Loss": 0.4})
    ctx = load(f"mlflow:{uri}#{EXPERIMENT}", str(tmp_path / "cache"), precompute=False)
    exp = ctx.experiment
    assert exp.models["base"].metrics == {"Accuracy": 0.9, "Loss": None}
    assert exp.models["pruned"].metrics == {"Accuracy": None, "Loss": 0.4}
    assert exp.metrics["Accuracy"].max == 0.9  # scales never see the inf
    assert "run 'base': metric 'Loss' was logged as nan; shown as missing." in ctx.status_line()


def test_lm_eval_nan_metric_is_missing_with_a_notice_in_the_header(tmp_path):
    for name, acc in (("base", 0.5), ("int8", float("nan"))):
        folder = tmp_path / "out" / name / "org__model"
        folder.mkdir(parents=True)
        results = {"results": {"arc_easy": {"alias": "arc_easy", "acc,none": acc, "acc_stderr,none": 0.01,
                                            "acc_norm,none": 0.6}},
                   "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True}}, "model_name": "org/model"}
        (folder / "results_2024-01-01T00-00-00.json").write_text(json.dumps(results))
    (tmp_path / "exp.yaml").write_text("models:\n  - {id: base, lm_eval: out/base}\n"
                                       "  - {id: int8, base: base, operation: int8, lm_eval: out/int8}\n")
    ctx = load(str(tmp_path / "exp.yaml"), str(tmp_path / "cache"), precompute=False)
    exp = ctx.experiment
    assert exp.models["base"].metrics["arc_easy/acc"] == 0.5
    assert exp.models["int8"].metrics["arc_easy/acc"] is None  # missing, not NaN
    assert all(v is None or math.isfinite(v) for m in exp.models.values() for v in m.metrics.values())
    assert "model 'int8': the harness logged arc_easy/acc = nan; shown as missing." in ctx.status_line()


# ---------------------------------------------------------------- finding 6: hostile YAML and JSON

HOSTILE = {
    "deep.yaml": lambda: "models: " + "[" * 100_000,
    "deep.json": lambda: "[" * 100_000,
    "bomb_in_tag.yaml": lambda: alias_bomb() + "models:\n  - {id: a, tag: *l9}\n",
    "bomb_in_parameters.yaml": lambda: alias_bomb() + "models:\n  - {id: a}\n  - {id: b, base: a, operation: "
                                                        "{name: prune, parameters: {amount: *l9}}}\n",
    "recursive.yaml": lambda: "models: &m [{id: a, tag: *m}]\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_one_error_line_exit_2_bounded_memory(tmp_path, name):
    path = tmp_path / name
    path.write_text(HOSTILE[name]())
    assert path.stat().st_size < 2048 or "deep" in name  # the bombs are about 1 KB
    rc, err, rss = run_cli(path, tmp_path)
    assert rc == 2, err
    assert err.count("\n") == 0 and err.startswith(f"error: {path}: not valid ")
    assert "RecursionError" not in err and "Traceback" not in err
    assert 0 <= rss < 200, f"peak memory {rss} MB above the app's"  # the alias bomb took 3.2 GB before


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.truncate(1 << 30)  # 1 GB (sparse: no disk used)
    rc, err, rss = run_cli(path, tmp_path)
    assert rc == 2 and err.count("\n") == 0
    assert "1,024.0 MB, over the 64 MB limit" in err and "CNC_MAX_FILE_MB" in err
    assert 0 <= rss < 200
    small = tmp_path / "small.yaml"
    small.write_text("models:\n  - {id: a, metrics: {Acc: 0.5}}\n" + "# padding\n" * 20_000)  # 200 KB
    rc, err, _ = run_cli(small, tmp_path, env={"CNC_MAX_FILE_MB": "0.1"})
    assert rc == 2 and "the file is 0.2 MB, over the 0.1 MB limit" in err


def test_deeply_nested_evaluation_data_is_a_task_error(tmp_path):
    from cnc.evaluation.prompt_file import read_instances
    from cnc.experiment.errors import TaskError

    path = tmp_path / "data.jsonl"
    path.write_text('{"question": "q", "answers": ["a"]}\n' + "[" * 100_000 + "\n")
    with pytest.raises(TaskError, match=r"data.jsonl:2: not valid evaluation data \(nesting deeper than 64"):
        read_instances(path)


def test_legitimate_aliases_still_load(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("common: &m {Accuracy: 0.9, Size: 2.0}\nmodels:\n  - {id: a, metrics: *m}\n"
                    "  - {id: b, base: a, operation: prune, metrics: {<<: *m, Size: 1.0}}\n")
    exp = load_config(path).experiment
    assert exp.models["b"].metrics == {"Accuracy": 0.9, "Size": 1.0}


def test_hostile_edit_while_serving_is_a_notice_and_the_last_good_experiment_stays(tmp_path):
    t = Tracker(tmp_path / "run")
    t.log_model("a", metrics={"Acc": 0.9})
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    (tmp_path / "run" / "experiment.yaml").write_text(HOSTILE["bomb_in_tag.yaml"]())
    started = time.monotonic()
    assert not ctx.live.check(force=True)
    assert time.monotonic() - started < 30  # was 77 s (a guard against a hang, not a benchmark)
    assert list(ctx.experiment.models) == ["a"]
    assert "aliases expand to more than" in ctx.status_line()


# ---------------------------------------------------------------- finding 7: cut and edited run files

def _twenty_models(run: Path) -> Tracker:
    t = Tracker(run)
    t.metric("Acc")
    t.log_model("base", metrics={"Acc": 0.9})
    for i in range(1, 20):
        t.log_model(f"m{i}", base="base", operation=("prune", {"amount": i / 20}), metrics={"Acc": 0.9 - i / 100})
    return t


def _cut_at_a_model(path: Path, keep: int) -> None:
    """Cut the file just before the `keep`-th model's entry: still valid YAML, fewer models."""
    text = path.read_text()
    starts = [i for i in range(len(text)) if text.startswith("- id: ", i)]
    path.write_text(text[:starts[keep]])


def test_cut_run_file_loads_with_a_notice_and_the_tracker_refuses_to_write(tmp_path):
    run = tmp_path / "run"
    t = _twenty_models(run)
    _cut_at_a_model(run / "experiment.yaml", 12)

    ctx = load(str(run), str(tmp_path / "cache"), precompute=False)
    assert len(ctx.experiment.models) == 12
    assert "Tracker run file cut short: showing the 12 model(s) it still lists" in ctx.status_line()
    assert any("cut short" in w for w in ctx.experiment.warnings)  # the console too

    with pytest.raises(ExperimentError, match="cut short.*refuses to write over it.*" + LAST_GOOD_FILE):
        t.log_model("m20", base="base", metrics={"Acc": 0.5})
    with pytest.raises(ExperimentError, match="cut short"):
        Tracker(run).log_model("m21", metrics={"Acc": 0.5})  # a new writer too
    assert len(load_config(run).experiment.models) == 12  # nothing was rewritten

    (run / "experiment.yaml").write_bytes((run / LAST_GOOD_FILE).read_bytes())  # the recovery the message names
    t.log_model("m20", base="base", metrics={"Acc": 0.5})
    assert len(load_config(run).experiment.models) == 21


def test_edited_run_file_is_refused_until_accepted(tmp_path):
    run = tmp_path / "run"
    t = _twenty_models(run)
    path = run / "experiment.yaml"
    path.write_text(path.read_text().replace("Acc: 0.9\n", "Acc: 0.95\n", 1))
    with pytest.raises(ExperimentError, match="changed after the Tracker last wrote it \\(with 20 model"):
        t.log_model("late", metrics={"Acc": 0.1})
    t.accept_file()
    t.log_model("late", metrics={"Acc": 0.1})
    exp = load_config(run).experiment
    assert exp.models["base"].metrics["Acc"] == 0.95 and "late" in exp.models


def test_relogging_merges_metrics_unless_replace(tmp_path):
    t = Tracker(tmp_path / "run")
    t.log_model("base", metrics={"Acc": 0.9})
    t.log_model("m", base="base", operation="prune", tag="pruned", metrics={"Acc": 0.8, "Size": 2.0})
    with pytest.warns(UserWarning, match="merging"):
        t.log_model("m", metrics={"Latency": 3.0, "Acc": 0.81})
    m = load_config(tmp_path / "run").experiment.models["m"]
    assert m.metrics == {"Acc": 0.81, "Size": 2.0, "Latency": 3.0}  # Size, logged before, stays
    assert m.base == "base" and m.tag == "pruned" and m.operation.name == "prune"
    with pytest.warns(UserWarning, match="replacing"):
        t.log_model("m", metrics={"Latency": 2.5}, replace=True)
    m = load_config(tmp_path / "run").experiment.models["m"]
    assert m.metrics == {"Latency": 2.5} and m.base is None


def test_run_files_written_before_the_seal_still_load_and_get_sealed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text("metrics: []\noperations: []\nmodels:\n- id: old\n  metrics: {Acc: 0.5}\n")
    Tracker(run).log_model("new", metrics={"Acc": 0.6})
    text = (run / "experiment.yaml").read_text()
    assert text.startswith("# Written by cnc.Tracker") and "# cnc.Tracker sha256=" in text.splitlines()[-1]
    assert list(load_config(run).experiment.models) == ["old", "new"]


# ---------------------------------------------------------------- finding 8: debris of killed writers

def test_killed_writers_leave_debris_that_is_found_and_cleaned(tmp_path):
    run = tmp_path / "run"
    t = Tracker(run)
    t.log_model("kept", metrics={"Acc": 0.9}, model={"w": __import__("torch").zeros(4)})
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from cnc.experiment.files import atomic_write
        def slow(fh):
            fh.write(b"x" * 100_000); fh.flush(); print("writing", flush=True); time.sleep(60)
        atomic_write(Path({str(run / "checkpoints" / "half-written.pt")!r}), slow)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)  # killed mid-write: its temp file stays
    writer.wait(timeout=30)
    orphan = run / "checkpoints" / "orphan-0123456789.pt"  # saved by a writer killed before it logged the model
    orphan.write_bytes(b"y" * 50_000)

    assert find_debris(run).files == []  # young files may be writes in progress
    found = find_debris(run, older_than=0)
    assert [p.name for p in found.unreferenced] == [orphan.name]
    assert len(found.temp_files) == 1 and found.temp_files[0].name.startswith(".half-written.pt.")
    assert found.bytes == 150_000 and found.problem is None
    cleaned = clean_debris(run, older_than=0)
    assert sorted(cleaned.files) == sorted(found.files) and not any(p.exists() for p in found.files)
    assert find_debris(run, older_than=0).files == []
    kept = load_config(run).experiment.models["kept"].checkpoint
    assert Path(kept).is_file()  # what a model references is never debris


def test_debris_of_a_cut_run_file_keeps_every_checkpoint(tmp_path):
    run = tmp_path / "run"
    t = Tracker(run)
    for i in range(3):
        t.log_model(f"m{i}", metrics={"Acc": 0.5}, model={"w": __import__("torch").zeros(2)})
    _cut_at_a_model(run / "experiment.yaml", 1)  # m1 and m2 no longer listed: their checkpoints are not debris
    found = find_debris(run, older_than=0)
    assert found.unreferenced == [] and "cut short" in found.problem
    clean_debris(run, older_than=0)
    assert len(list((run / "checkpoints").glob("*.pt"))) == 3


# ---------------------------------------------------------------- finding 9: malformed requests

def _valid_bodies(app) -> list[dict]:
    """One well-formed body per server callback (values None), the raw material for hostile variants."""
    def multi(component_id: str) -> bool:
        return '["ALL"]' in component_id or '["ALLSMALLER"]' in component_id

    def item(component_id: str, prop: str):
        parsed = json.loads(component_id) if component_id.startswith("{") else component_id
        return [] if multi(component_id) else {"id": parsed, "property": prop, "value": None}

    bodies = []
    for key, spec in app.callback_map.items():
        if "callback" not in spec:
            continue  # clientside
        outs = [part.split("@")[0].rsplit(".", 1) for part in key.strip(".").split("...")]
        outputs = [item(i, p) for i, p in outs]
        bodies.append({"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
                       "inputs": [item(str(s["id"]), s["property"]) for s in spec.get("inputs", [])],
                       "state": [item(str(s["id"]), s["property"]) for s in spec.get("state", [])],
                       "changedPropIds": []})
    return bodies


def _hostile(bodies: list[dict], rng: random.Random, n: int) -> list[str]:
    junk = [None, 0, -1, 1.5, "", "x", [], {}, [None], [[]], {"id": 1}, {"property": "x"}, "a" * 1000, True]
    out = ["{}", "[]", "null", "1", '"x"', "not json", "{", '{"output": "nope.children"}', '{"output": 5}',
           '{"output": ["a"]}']
    while len(out) < n:
        body = json.loads(json.dumps(rng.choice(bodies)))
        how = rng.randrange(5)
        if how == 0:
            body.pop(rng.choice(list(body)))
        elif how == 1:
            body[rng.choice(list(body))] = rng.choice(junk)
        elif how == 2 and body["inputs"]:
            body["inputs"][rng.randrange(len(body["inputs"]))] = rng.choice(junk)
        elif how == 3:
            body["output"] = body["output"] + rng.choice(["x", ".", "..", "...a.b"])
        else:
            body["changedPropIds"] = rng.choice(junk)
        out.append(json.dumps(body))
    return out


def test_hostile_requests_get_4xx_never_500(synthetic_ctx, caplog):
    from cnc.app.webapp import build_app

    app = build_app(synthetic_ctx)
    client = app.server.test_client()
    bodies = _hostile(_valid_bodies(app), random.Random(33), 400)
    paths = ["/_dash-component-suites/dash/../..", "/_dash-component-suites/dash/../../etc/passwd",
             "/_dash-component-suites/nope/x.js", "/_dash-component-suites/dash/%2e%2e/x.js",
             "/_dash-component-suites/dash/deps/nope.js", "/_dash-component-suites/plotly/../../../setup.py"]
    statuses = []
    with caplog.at_level(logging.WARNING):
        for body in bodies:
            r = client.post("/_dash-update-component", data=body, content_type="application/json")
            statuses.append(r.status_code)
            assert b"Traceback" not in r.data and b"File \"" not in r.data
        for path in paths:
            r = client.get(path)
            assert r.status_code == 404, path
            assert b"Traceback" not in r.data and b"registered paths" not in r.data
    assert statuses.count(500) == 0, f"{statuses.count(500)} of {len(bodies)} got 500"
    assert statuses.count(400) >= 100  # most are structurally malformed
    rejected = statuses.count(400) + len(paths)
    warned = [r for r in caplog.records if r.name == "cnc.requests"]
    assert len(warned) == rejected and all(r.levelno == logging.WARNING and not r.exc_info for r in warned)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "cnc.callbacks"]

    for body in _valid_bodies(app):  # well-formed requests of every server callback pass the check
        ok = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
        assert ok.status_code in (200, 204), (body["output"], ok.data[:200])


def test_cnc_doctor_lists_and_cleans_a_run_folders_debris(tmp_path, capsys):
    from cnc.app.doctor import main as doctor

    run, cache = tmp_path / "run", tmp_path / "cache"
    cache.mkdir()
    Tracker(run).log_model("kept", metrics={"Acc": 0.9}, model={"w": __import__("torch").zeros(4)})
    orphan = run / "checkpoints" / "orphan-0123456789.pt"
    orphan.write_bytes(b"y" * 50_000)
    old = time.time() - 7200  # older than the hour a write in progress may take
    os.utime(orphan, (old, old))

    assert doctor(["--cache-dir", str(cache), "--config", str(run)]) == 1  # a Tracker folder as the config
    out = capsys.readouterr().out
    assert "PROBLEM  tracker run folder" in out and orphan.name in out and "--repair" in out
    assert orphan.exists()
    assert doctor(["--cache-dir", str(cache), "--run-dir", str(run), "--repair"]) == 0
    assert "REPAIRED tracker run folder" in capsys.readouterr().out and not orphan.exists()
    assert len(list((run / "checkpoints").glob("*.pt"))) == 1  # the model's own checkpoint stays
    assert doctor(["--cache-dir", str(cache), "--run-dir", str(run)]) == 0
