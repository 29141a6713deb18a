"""Fault injection on the cache and on model outputs (issue 33, findings 1-4 and 10): each test
reproduces one fault that passed silently or stopped the app, and checks what happens now."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cnc.app.cli import load, main
from cnc.precompute.cache_db import DB_NAME
from cnc.precompute.checked_disk import DamagedEntry
from cnc.precompute.run import precompute
from cnc.precompute.store import SummaryStore
from tests.tiny_task import TinyTask, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
N_MODELS = 8


def _experiment(folder: Path, delay: float = 0.0, metrics: dict | None = None) -> Path:
    """A root and 7 pruned / reseeded children of the tiny task (real checkpoints, real precompute)."""
    models = [{"id": "m0", "checkpoint": "m0.pt"}] + [
        {"id": f"m{i}", "base": "m0" if i < 5 else "m1", "operation": {"name": "prune"}, "checkpoint": f"m{i}.pt"}
        for i in range(1, N_MODELS)]
    for i, m in enumerate(models):
        save_checkpoint(folder / m["checkpoint"], seed=i % 3, prune=0.1 * i)
        if metrics and m["id"] in metrics:
            m["metrics"] = metrics[m["id"]]
    (folder / "exp.json").write_text(json.dumps({"models": models}))
    options = f", options: {{delay: {delay}}}" if delay else ""
    (folder / "cfg.yaml").write_text(f"experiment: exp.json\n"
                                     f"task: {{entry: 'tests.tiny_task:TinyTask', activation_sample: 16{options}}}\n")
    return folder / "cfg.yaml"


def _ctx(cfg: Path, cache: Path, precompute: bool = False):
    return load(str(cfg), str(cache), precompute=precompute, progress=False)


def _snapshot(ctx) -> dict:
    """Every model's summaries and its stored divergence against its root, as plain arrays."""
    out = {}
    for mid in ctx.experiment.models:
        root = ctx.experiment.path_to_root(mid)[0]
        outputs = ctx.outputs(mid)
        out[mid] = {"outputs": {k: v for k, v in outputs.items() if k != "probs"},
                    "probs": np.array(outputs["probs"]), "params": ctx.params(mid),
                    "activations": ctx.activations(mid),
                    "divergence": None if root == mid else ctx.get_divergence(root, mid)}
    return out


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f")
    return a == b


def _done(cache: Path) -> int:
    store = SummaryStore(cache)
    try:
        return sum(1 for k in store.cache.iterkeys() if k[0] == "done")
    finally:
        store.cache.close()


# -- finding 1: a kill loses at most the model in flight; a resumed run fills what is missing

def test_kill9_at_several_points_then_resume_equals_a_clean_run(tmp_path):
    clean_dir, killed_dir = tmp_path / "clean", tmp_path / "killed"
    clean_dir.mkdir()
    cfg = _experiment(clean_dir)
    clean = _snapshot(_ctx(cfg, clean_dir / "cache", precompute=True))
    assert all(clean[m]["divergence"] is not None for m in clean if m != "m0")

    shutil.copytree(clean_dir, killed_dir, ignore=shutil.ignore_patterns("cache"))
    cfg = _experiment(killed_dir, delay=0.5)  # same checkpoints; half a second per model load
    cache = killed_dir / "cache"
    cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(cfg), "--cache-dir", str(cache), "--precompute-only"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = []
    for at_least in (1, 3, 6):  # kill -9 after 1, 3 and 6 models are done (each run resumes the last)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and _done(cache) < at_least and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills.append(_done(cache))
    assert kills[0] < N_MODELS and kills[-1] < N_MODELS, f"the kills should land mid-way: {kills}"
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    resumed = _snapshot(_ctx(cfg, cache))
    for mid in clean:
        assert _equal(resumed[mid], clean[mid]), f"model {mid} differs from the clean run after kills at {kills}"


def test_a_kill_after_the_last_model_still_gets_its_divergences(tmp_path):
    cfg = _experiment(tmp_path)
    ctx = _ctx(cfg, tmp_path / "cache", precompute=True)
    th, root = ctx.task_hash, ctx._model_hash("m0")
    for mid in ("m2", "m3"):  # as a run killed between a model's `done` and its divergence left them
        ctx.store.cache.delete(("divergence", th, root, ctx._model_hash(mid)))
    assert ctx.get_divergence("m0", "m2") is None
    report = precompute(ctx.config, ctx.store, progress=False)
    assert not report.computed and ctx.get_divergence("m0", "m2") is not None
    assert ctx.get_divergence("m0", "m3").shape == (2, 40)


# -- finding 2: a damaged database is detected at start, moved aside, rebuilt; nothing stops

def _damage(db: Path, how: str) -> None:
    import sqlite3

    con = sqlite3.connect(str(db))  # every page into cache.db, as when the last process has exited
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        if how == "truncate":
            fh.truncate(size // 2)
        else:  # garble 4 KB inside the file, past its header
            fh.seek(min(4096, size - 4096))
            fh.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_a_damaged_database_is_moved_aside_and_rebuilt(tmp_path, capsys, how):
    cfg = _experiment(tmp_path)
    cache = tmp_path / "cache"
    ctx = _ctx(cfg, cache, precompute=True)
    ctx.store.cache.close()
    db = cache / "summaries" / DB_NAME
    _damage(db, how)
    capsys.readouterr()

    assert main(["--config", str(cfg), "--cache-dir", str(cache), "--precompute-only"]) == 0  # precompute starts
    err = capsys.readouterr().err
    assert "cache database" in err and "damaged" in err and "moved aside" in err
    moved = list(cache.glob("summaries.damaged-*"))
    assert len(moved) == 1 and (moved[0] / DB_NAME).exists()  # kept for inspection, not deleted
    ctx = _ctx(cfg, cache)
    assert all(ctx.status(m) == "ready" for m in ctx.experiment.models)  # rebuilt

    ctx.store.cache.close()
    _damage(db, how)  # the server starts too, and says so in its header
    from cnc.app.webapp import build_app

    ctx = _ctx(cfg, cache)
    assert ctx.store.moved_aside is not None and "moved aside" in ctx.status_line()
    assert build_app(ctx).server.test_client().get("/health").status_code == 200


def test_a_damaged_saved_view_database_does_not_stop_the_server(tmp_path):
    from cnc.server.urlstate import open_views

    views = open_views(tmp_path)
    link = views.shorten("sel=" + ",".join(f"model-{i}" for i in range(600)))
    views.backend.close()
    _damage(tmp_path / "views" / DB_NAME, "truncate")
    views = open_views(tmp_path)  # would raise "database disk image is malformed"
    assert "no longer available" in views.expand(link)[1][0]  # the views are gone, and the page says so
    assert len(list(tmp_path.glob("views.damaged-*"))) == 1


# -- findings 3 and 4: garbled values of the same size are detected, dropped, reported, recomputed

def test_garbled_summary_values_are_dropped_reported_and_recomputed(tmp_path):
    cfg = _experiment(tmp_path)
    cache = tmp_path / "cache"
    ctx = _ctx(cfg, cache, precompute=True)
    before = _snapshot(ctx)
    th, ch = ctx.task_hash, ctx._model_hash("m3")
    store = ctx.store
    (rowid, blob), = store.cache._sql("SELECT rowid, value FROM Cache WHERE key = ?",
                                      store.cache._disk.put(("params", th, ch))[:1]).fetchall() or [(None, None)]
    if blob is None:  # stored in a file beside the database: garble it there
        (name,) = store.cache._sql("SELECT filename FROM Cache WHERE key = ?",
                                   store.cache._disk.put(("params", th, ch))[:1]).fetchone()
        path = cache / "summaries" / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2:len(data) // 2 + 8] = b"\x00\xff" * 4
        path.write_bytes(bytes(data))
    else:
        garbled = bytearray(blob)
        garbled[len(garbled) // 2:len(garbled) // 2 + 8] = b"\x00\xff" * 4  # same size, other bytes
        store.cache._sql("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(garbled), rowid))

    fresh = _ctx(cfg, cache)  # a server process reading it
    assert fresh.params("m3") is None  # never shown
    assert fresh.status("m3") == "pending"  # its `done` went with it: the next precompute redoes it
    assert "1 summary was damaged and will be recomputed by the next precompute" in fresh.status_line()
    report = precompute(fresh.config, fresh.store, progress=False)
    assert report.computed == ["m3"]
    assert "damaged" not in fresh.status_line()
    assert _equal(_snapshot(_ctx(cfg, cache))["m3"], before["m3"])


def test_garbled_probabilities_never_show_as_790000_percent(tmp_path):
    from cnc.ui.behaviors_detail import detail_panel

    cfg = _experiment(tmp_path)
    cache = tmp_path / "cache"
    ctx = _ctx(cfg, cache, precompute=True)
    before = {m: np.array(ctx.outputs(m)["probs"]) for m in ("m2", "m3")}
    store = ctx.store
    for m in ("m2", "m3"):
        key = ("probs", ctx.task_hash, ctx._model_hash(m))
        (name,) = store.cache._sql("SELECT filename FROM Cache WHERE key = ?", store.cache._disk.put(key)[:1]).fetchone()
        path = cache / "summaries" / name
        data = bytearray(path.read_bytes())
        data[10:16] = np.array([7900.0, 5000.0, 3.0], np.float16).tobytes()  # same size: a probability of 790000%
        path.write_bytes(bytes(data))

    fresh = _ctx(cfg, cache)
    panel = str(detail_panel(fresh, ["m0", "m2"], 0))  # the instance panel reads row 0 of each model
    assert "damaged" in panel and "7900" not in panel and "790000" not in panel
    rows = fresh.outputs("m3")["probs"]  # memory-mapped: nothing read yet
    assert rows.shape == (40, 3)
    with pytest.raises(DamagedEntry):  # a read touching the garbled rows raises: garbage is never returned
        rows[1]
    for m in ("m2", "m3"):
        assert fresh.outputs(m) is None and fresh.status(m) == "pending"  # dropped, to be recomputed
    assert "2 summaries were damaged" in fresh.status_line()
    assert precompute(fresh.config, fresh.store, progress=False).computed == ["m2", "m3"]
    assert all(np.array_equal(_ctx(cfg, cache).outputs(m)["probs"], before[m]) for m in before)


def test_rerunning_precompute_repairs_garbled_probabilities_nobody_read(tmp_path):
    cfg = _experiment(tmp_path)
    cache = tmp_path / "cache"
    ctx = _ctx(cfg, cache, precompute=True)
    before = np.array(ctx.outputs("m6")["probs"])
    key = ("probs", ctx.task_hash, ctx._model_hash("m6"))
    (name,) = ctx.store.cache._sql("SELECT filename FROM Cache WHERE key = ?", ctx.store.cache._disk.put(key)[:1]).fetchone()
    path = cache / "summaries" / name
    path.write_bytes(np.array([7900.0], np.float16).tobytes() + path.read_bytes()[2:])
    assert main(["--config", str(cfg), "--cache-dir", str(cache), "--precompute-only"]) == 0
    again = _ctx(cfg, cache)
    assert again.status("m6") == "ready" and np.array_equal(again.outputs("m6")["probs"], before)
    assert precompute(again.config, again.store, progress=False).computed == []  # sound files are not redone


def test_a_kl_view_over_garbled_rows_shows_a_notice_not_numbers(tmp_path):
    from cnc.analysis.behavior_view import ViewState
    from cnc.ui.behaviors import render_table

    cfg = _experiment(tmp_path)
    cache = tmp_path / "cache"
    ctx = _ctx(cfg, cache, precompute=True)
    key = ("probs", ctx.task_hash, ctx._model_hash("m5"))
    (name,) = ctx.store.cache._sql("SELECT filename FROM Cache WHERE key = ?", ctx.store.cache._disk.put(key)[:1]).fetchone()
    path = cache / "summaries" / name
    path.write_bytes(path.read_bytes()[:-2] + np.array([7900.0], np.float16).tobytes())
    fresh = _ctx(cfg, cache)
    state = ViewState(mode="instances", metric="kl")  # m5 against m1: not stored, computed from both matrices
    grid, status = render_table(fresh, ["m1", "m5"], state, 0)
    assert grid == [] and "was damaged" in str(status)
    grid, status = render_table(fresh, ["m1", "m5"], state, 1)  # the next view leaves it out, says why
    assert "m5 is left out" in str(status) and "pending" in str(status)


# -- finding 3: a garbled checkpoint (same size) is flagged, not shown as a KL of 16

def _garble_checkpoint(path: Path) -> None:
    """0xFF over the first weight tensor's bytes inside the checkpoint's zip (NaN as float32)."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 64)
    with open(path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(fh.read(2), "little") for _ in range(2))
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        fh.write(b"\xff" * 64)


def test_a_garbled_checkpoint_gives_a_suspect_model_with_notices(tmp_path):
    from cnc.pages import compare, overview

    cfg = _experiment(tmp_path)
    size = (tmp_path / "m4.pt").stat().st_size
    _garble_checkpoint(tmp_path / "m4.pt")
    assert (tmp_path / "m4.pt").stat().st_size == size
    torch.load(tmp_path / "m4.pt", weights_only=True)  # still loads: nothing but its outputs can tell
    ctx = _ctx(cfg, tmp_path / "cache", precompute=True)
    status = ctx.status("m4")
    assert status.startswith("suspect: non-finite outputs (40 of 40 instances"), status
    assert ctx.status("m3") == "ready"
    assert "1 model(s) have suspect outputs (m4)" in ctx.status_line()
    page = str(overview.layout(ctx, {}, []).to_plotly_json())
    assert "m4 (m4) is suspect: non-finite outputs" in page
    page = str(compare.layout(ctx, {"models": "m0,m4"}, []).to_plotly_json())
    assert "m4 (m4) is suspect: non-finite outputs" in page


def test_an_evaluated_accuracy_far_from_the_file_is_suspect(tmp_path):
    task = TinyTask()
    x, y = task.eval_data()
    acc = {}
    for i in (0, 2):
        save_checkpoint(tmp_path / "probe.pt", seed=i % 3, prune=0.1 * i)
        acc[i] = float((task.load_model(str(tmp_path / "probe.pt"))(x).argmax(1).numpy() == y).mean())
    # the root's file agrees with its evaluation; m2's file claims 50 points more than it scores
    cfg = _experiment(tmp_path, metrics={"m0": {"Accuracy": acc[0]}, "m2": {"Accuracy": min(1.0, acc[2] + 0.5)},
                                         "m3": {"Accuracy": 0.5}})
    ctx = _ctx(cfg, tmp_path / "cache", precompute=True)
    assert ctx.status("m2").startswith(f"suspect: evaluated accuracy {acc[2]:.1%} disagrees with the file's Accuracy")
    assert ctx.status("m0") == "ready"


# -- finding 10: a truncated harness samples file, and two runs with the same model name

def test_a_truncated_harness_samples_file_names_the_model_and_shows_no_other_run(lmeval_runs, tmp_path, capsys):
    from cnc.pages import compare
    from tests.test_lm_eval import write_experiment

    copy = tmp_path / "int8-copy"
    shutil.copytree(lmeval_runs["int8"], copy)  # same model name, same results file name and content
    (path,) = copy.rglob("samples_tiny_sums_gen_*.jsonl")
    text = path.read_text()
    path.write_text(text[:len(text) // 2])  # cut mid-line, as a full disk or a kill leaves it
    exp = write_experiment(tmp_path, {"base": lmeval_runs["base"], "pruned": lmeval_runs["int8"], "int8": copy})
    capsys.readouterr()
    ctx = load(str(exp), str(tmp_path / "cache"), progress=False)
    err = capsys.readouterr().err
    assert "1 model(s) could not be summarized" in err and "int8:" in err and "is not a harness sample" in err
    assert ctx.outputs("pruned") is not None  # the intact run with the same files is there...
    assert ctx.outputs("int8") is None  # ...and the cut copy shows none of its answers
    assert ctx.status("int8").startswith("failed: ") and "line" in ctx.status("int8")
    assert "failed to summarize (int8)" in ctx.status_line()
    page = str(compare.layout(ctx, {"models": "base,int8"}, []).to_plotly_json())
    assert "int8 (int8) failed to summarize" in page

    served = load(str(exp), str(tmp_path / "cache"), precompute=False)  # a server started later says so too
    assert "failed to summarize (int8)" in served.status_line()


def test_two_harness_runs_with_the_same_name_each_show_their_own_answers(lmeval_runs, tmp_path):
    from tests.test_lm_eval import write_experiment

    copy = tmp_path / "int8-copy"
    shutil.copytree(lmeval_runs["int8"], copy)
    (path,) = copy.rglob("samples_tiny_sums_gen_*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["filtered_resps"] = ["only in the copy"]
    lines[0]["resps"] = [["only in the copy"]]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    exp = write_experiment(tmp_path, {"base": lmeval_runs["base"], "pruned": lmeval_runs["int8"], "int8": copy})
    ctx = load(str(exp), str(tmp_path / "cache"), progress=False)
    where = {(t, int(d)): i for i, (t, d) in enumerate(ctx.task_data()["keys"])}
    i = where[("tiny_sums_gen", int(lines[0]["doc_id"]))]
    assert ctx.outputs("int8")["texts"][i] == "only in the copy"
    assert ctx.outputs("pruned")["texts"][i] != "only in the copy"


# -- cnc doctor

def test_doctor_reports_damage_and_repairs_it(tmp_path, capsys):
    cfg = _experiment(tmp_path)
    cache = tmp_path / "cache"
    ctx = _ctx(cfg, cache, precompute=True)
    assert main(["doctor", "--cache-dir", str(cache)]) == 0
    assert "Everything is sound" in capsys.readouterr().out

    store = ctx.store
    key = ("outputs", ctx.task_hash, ctx._model_hash("m1"))
    (rowid, blob), = store.cache._sql("SELECT rowid, value FROM Cache WHERE key = ?", store.cache._disk.put(key)[:1])
    store.cache._sql("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(blob[:-4]) + b"oops", rowid))
    (cache / "summaries" / "ab" / "cd").mkdir(parents=True, exist_ok=True)
    (cache / "summaries" / "ab" / "cd" / "0123456789.val").write_bytes(b"left by a killed write")
    store.cache.close()

    assert main(["doctor", "--cache-dir", str(cache)]) == 1  # reported, nothing changed
    out = capsys.readouterr().out
    assert f"PROBLEM  cache entries: entry (outputs, {key[1]}, {key[2]}) is damaged: checksum mismatch" in out
    assert "1 value file(s)" in out and "belong to no entry" in out
    assert main(["doctor", "--cache-dir", str(cache), "--repair"]) == 0
    assert "REPAIRED" in capsys.readouterr().out
    assert main(["doctor", "--cache-dir", str(cache)]) == 0
    assert _ctx(cfg, cache).status("m1") == "pending"  # dropped, for the next precompute
    assert main(["--config", str(cfg), "--cache-dir", str(cache), "--precompute-only"]) == 0
    assert _ctx(cfg, cache).status("m1") == "ready"

    ctx.store.cache.close()
    _damage(cache / "summaries" / DB_NAME, "truncate")
    assert main(["doctor", "--cache-dir", str(cache)]) == 1
    assert "PROBLEM  cache database" in capsys.readouterr().out
    assert main(["doctor", "--cache-dir", str(cache), "--repair"]) == 0
    assert len(list(cache.glob("summaries.damaged-*"))) == 1


def test_output_checks_pure():
    from cnc.analysis.output_checks import accuracy_offset, accuracy_problem, probability_problem, stated_accuracy

    rng = np.random.default_rng(0)
    p = rng.random((300, 5)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    assert probability_problem(p.astype(np.float16)) is None and probability_problem(p) is None
    bad = p.copy()
    bad[3, 1], bad[7, 0], bad[9, 2] = np.nan, -np.inf, 7900.0
    for probs in (bad, bad.astype(np.float16)):  # the float16 bit path and the float path agree
        assert probability_problem(probs).startswith("non-finite outputs (2 of 300 instances")
        assert probability_problem(np.nan_to_num(probs, nan=0.5, neginf=0.5)).startswith(
            "impossible outputs (1 of 300 instances")
    assert stated_accuracy({"Latency": 3.0, "Top-1 Accuracy": 98.3}) == ("Top-1 Accuracy", 0.983)
    assert stated_accuracy({"acc": None, "Size": 0.5}) is None
    root_ok, root_off = accuracy_offset(0.9, {"Accuracy": 0.91}), accuracy_offset(0.5, {"Accuracy": 0.91})
    garbled = accuracy_offset(0.1, {"Accuracy": 0.983})
    assert "10.0% disagrees with the file's Accuracy 98.3%" in accuracy_problem(garbled, root_ok)
    assert accuracy_problem(garbled, root_off) is None  # the file's metric was measured on other data
    assert accuracy_problem(accuracy_offset(0.8, {"Accuracy": 0.9}), root_ok) is None  # within 25 points
