"""Precompute on a Dask cluster (2 worker processes, 1 thread each) gives exactly the local summaries,
survives a killed worker, records failing models, and checks workers up front."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from cnc.app.cli import main
from cnc.evaluation.summarize import TaskSpec
from cnc.experiment.config import load_config
from cnc.precompute import cluster
from cnc.precompute.run import config_task_hash, precompute
from cnc.precompute.store import SummaryStore
from cnc.server.context import AppContext
from tests.conftest import ROOT
from tests.tiny_task import save_checkpoint

IDS = [f"m{i}" for i in range(6)]


@pytest.fixture(scope="module")
def dask_cluster():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            Client(lc) as client:
        yield lc.scheduler_address, client


def write_experiment(folder, options: str = "{}", extra: str = "", url: bool = False, wide: tuple = ()) -> None:
    lines = ["models:"]
    for i, name in enumerate(IDS):
        if not (folder / f"{name}.pt").exists():
            save_checkpoint(folder / f"{name}.pt", seed=i % 3, prune=0.15 * i, wide=name in wide)
        source = f"'file://{folder / name}.pt'" if url else f"{name}.pt"
        lines.append(f"  - {{id: {name}, checkpoint: {source}" + (", base: m0, operation: {name: prune}}" if i else "}"))
    (folder / "exp.yaml").write_text("\n".join(lines) + "\n")
    (folder / "cfg.yaml").write_text("experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask', "
                                     f"activation_sample: 16, options: {options}}}\n{extra}")


def open_cache(folder, name):
    cfg = load_config(folder / "cfg.yaml", cache_dir=folder / name)
    return cfg, SummaryStore(cfg.cache_dir)


def summaries(folder, name) -> dict:
    cfg, store = open_cache(folder, name)
    th = config_task_hash(cfg, store)
    found = {}
    for m in IDS:
        ch = store.file_hash(folder / f"{m}.pt")
        assert store.is_complete(th, ch, ("outputs", "probs", "params", "activations")), m
        out = store.get("outputs", th, ch)
        found[m] = {"outputs": out, "probs": np.array(store.get_probs(th, ch, out["shape"])),
                    "params": store.get("params", th, ch), "activations": store.get("activations", th, ch)}
    return found


def assert_same(got: dict, want: dict) -> None:
    for m in IDS:
        for key in ("preds", "p_true", "p_pred"):
            assert np.array_equal(got[m]["outputs"][key], want[m]["outputs"][key]), (m, key)
        assert np.array_equal(got[m]["probs"], want[m]["probs"]), m
        for kind in ("params", "activations"):
            assert set(got[m][kind]) == set(want[m][kind])
            for module, s in want[m][kind].items():
                for key in ("edges", "hist", "sample"):
                    assert np.array_equal(got[m][kind][module][key], s[key]), (m, kind, module, key)
                assert got[m][kind][module]["zeros"] == s["zeros"]


def test_cluster_gives_exactly_the_local_summaries(tmp_path, dask_cluster):
    write_experiment(tmp_path)
    cfg, store = open_cache(tmp_path, "local")
    assert precompute(cfg, store, progress=False).computed == IDS
    cfg, store = open_cache(tmp_path, "dask")
    report = precompute(cfg, store, progress=False, scheduler=dask_cluster[0])
    assert sorted(report.computed) == IDS and not report.failed
    assert_same(summaries(tmp_path, "dask"), summaries(tmp_path, "local"))
    again = precompute(cfg, store, progress=False, scheduler=dask_cluster[0])  # resumes: nothing to do
    assert again.computed == [] and sorted(again.skipped) == IDS


def test_a_module_new_in_later_models_gets_one_set_of_bins(tmp_path, dask_cluster):
    """m2..m5 add module "4": tasks that binned it on their own are rerun with the first one's bins."""
    wide = ("m2", "m3", "m4", "m5")
    write_experiment(tmp_path, options="{wide: 'm[2-5]'}", wide=wide)
    cfg, store = open_cache(tmp_path, "dask")
    assert sorted(precompute(cfg, store, progress=False, scheduler=dask_cluster[0]).computed) == IDS
    th = config_task_hash(cfg, store)
    params = {m: store.get("params", th, store.file_hash(tmp_path / f"{m}.pt")) for m in IDS}
    edges = [params[m]["4"]["edges"] for m in wide]
    assert all(np.array_equal(e, edges[0]) for e in edges) and "4" not in params["m1"]
    assert np.array_equal(store.get_edges(th)["params"]["4"], edges[0])
    for m in IDS:
        assert np.array_equal(params[m]["0"]["edges"], params["m0"]["0"]["edges"])


def test_checkpoints_given_as_fsspec_urls(tmp_path, dask_cluster):
    write_experiment(tmp_path)
    cfg, store = open_cache(tmp_path, "local")
    precompute(cfg, store, progress=False)
    write_experiment(tmp_path, url=True)
    cfg, store = open_cache(tmp_path, "dask")
    assert cfg.experiment.models["m1"].checkpoint == f"file://{tmp_path / 'm1.pt'}"
    assert sorted(precompute(cfg, store, progress=False, scheduler=dask_cluster[0]).computed) == IDS
    assert_same(summaries(tmp_path, "dask"), summaries(tmp_path, "local"))  # same content, same hash


def test_failing_model_is_recorded_and_the_rest_go_on(tmp_path, dask_cluster):
    write_experiment(tmp_path, options="{fail_on: m3}")
    cfg, store = open_cache(tmp_path, "dask")
    report = precompute(cfg, store, progress=False, scheduler=dask_cluster[0])
    assert list(report.failed) == ["m3"] and "boom: user code failed" in report.failed["m3"]
    assert sorted(report.computed) == [m for m in IDS if m != "m3"]
    th = config_task_hash(cfg, store)
    assert "boom" in store.get_error(th, store.file_hash(tmp_path / "m3.pt"))


def test_worker_check_names_what_a_worker_cannot_import_or_read(tmp_path, dask_cluster):
    (tmp_path / "only_here.py").write_text("from tests.tiny_task import TinyTask\n")
    sys.path.insert(0, str(tmp_path))  # importable here, not on the (already running) workers
    try:
        spec = TaskSpec(entry="only_here:TinyTask", options={}, activation_sample=16)
        with pytest.raises(cluster.ClusterError) as err:
            cluster.check_workers(dask_cluster[1], spec, "th", [str(tmp_path / "gone.pt")])
    finally:
        sys.path.remove(str(tmp_path))
    msg = str(err.value)
    assert "could not import or build the task 'only_here:TinyTask'" in msg and "only_here" in msg
    assert f"cannot read 1 checkpoint(s): {tmp_path / 'gone.pt'}" in msg
    assert "same Python environment" in msg


def test_killed_worker_task_is_retried_and_every_model_is_cached(tmp_path, dask_cluster):
    address, client = dask_cluster
    write_experiment(tmp_path, options="{delay: 1.5}")
    cfg, store = open_cache(tmp_path, "local")
    precompute(cfg, store, progress=False)
    reports = []
    cfg, store = open_cache(tmp_path, "dask")
    run = threading.Thread(target=lambda: reports.append(precompute(cfg, store, progress=False, scheduler=address)))
    run.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        if len(store.cache) and len(busy) == 2:  # the fan-out has started on both workers
            killed = busy[0]
            pid = client.run(os.getpid, workers=[killed])[killed]
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    run.join(180)
    assert killed is not None and reports, "the precompute never reached both workers"
    assert sorted(reports[0].computed) == IDS and not reports[0].failed
    assert_same(summaries(tmp_path, "dask"), summaries(tmp_path, "local"))


def test_config_key_runs_precompute_only_on_the_cluster(tmp_path, dask_cluster, capsys):
    write_experiment(tmp_path, extra=f"precompute: {{scheduler: '{dask_cluster[0]}'}}\n")
    assert main(["--config", str(tmp_path / "cfg.yaml"), "--cache-dir", str(tmp_path / "c"), "--precompute-only"]) == 0
    assert f"precompute on Dask cluster {dask_cluster[0]}" in capsys.readouterr().err
    cfg, store = open_cache(tmp_path, "c")
    assert sorted(m for m in IDS if store.is_complete(config_task_hash(cfg, store), store.file_hash(tmp_path / f"{m}.pt"),
                                                      ("outputs",))) == IDS


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    write_experiment(tmp_path)
    monkeypatch.setenv("CNC_SCHEDULER", "tcp://127.0.0.1:9")
    assert main(["--config", str(tmp_path / "cfg.yaml"), "--cache-dir", str(tmp_path / "c"), "--precompute-only"]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


def test_without_a_scheduler_dask_is_never_imported(tmp_path):
    write_experiment(tmp_path)
    code = ("import sys; from cnc.app.cli import load; import cnc.app.webapp; "
            f"load({str(tmp_path / 'cfg.yaml')!r}, {str(tmp_path / 'c')!r}, progress=False); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_conflicting_bins_are_detected():
    edges = {"params": {"a": np.arange(3.0)}, "activations": {}}
    assert not cluster._conflicts(edges, {"params": {"a": np.arange(3.0), "b": np.ones(3)}, "activations": {}})
    assert cluster._conflicts(edges, {"params": {"a": np.arange(3.0) + 1}, "activations": {}})


def test_background_precompute_of_logged_models_uses_the_cluster(tmp_path, dask_cluster, monkeypatch):
    from cnc import Tracker
    from cnc.app.cli import load
    from tests.tiny_task import make_model

    ran = []
    run_on_cluster = cluster.run_on_cluster
    monkeypatch.setattr(cluster, "run_on_cluster", lambda opts, spec, results, todo, edges, refs=None: (
        ran.append([m.id for m, _ in todo]), run_on_cluster(opts, spec, results, todo, edges, refs)))
    t = Tracker(tmp_path / "run", task="tests.tiny_task:TinyTask")
    t.log_model("base", model=make_model())
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True,
               scheduler=dask_cluster[0])
    t.log_model("late", base="base", operation="prune", model=make_model())
    assert ctx.live.check(force=True)
    deadline = time.time() + 90
    while ctx.status("late") != "ready" and time.time() < deadline:
        time.sleep(0.2)
    assert ctx.status("late") == "ready" and ran == [["base"], ["late"]]


def test_interrupted_cluster_run_resumes_without_recomputing(tmp_path, dask_cluster):
    from cnc.precompute.run import pending_models

    write_experiment(tmp_path, options="{delay: 1.0}")
    proc = subprocess.Popen([sys.executable, "app.py", "--config", str(tmp_path / "cfg.yaml"), "--cache-dir",
                             str(tmp_path / "c"), "--precompute-only", "--scheduler", dask_cluster[0]],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    cfg = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (tmp_path / "c").exists():
            cfg, store = open_cache(tmp_path, "c")
            if config_task_hash(cfg, store) and len(pending_models(cfg, store)) <= len(IDS) - 2:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again to resume" in err, err[-2000:]
    cfg, store = open_cache(tmp_path, "c")
    left = pending_models(cfg, store)
    assert 0 < len(left) < len(IDS) - 1
    report = precompute(cfg, store, progress=False, scheduler=dask_cluster[0])
    assert sorted(report.computed) == sorted(left) and len(report.skipped) == len(IDS) - len(left)


def test_generative_models_on_the_cluster_match_local(tmp_path, dask_cluster):
    """Roots go first, so every later model ships with its root's top-k; results equal local ones."""
    from tests.tiny_lm import write_tracker_experiment

    write_tracker_experiment(tmp_path, ["3"])
    cfg = load_config(tmp_path / "exp", cache_dir=tmp_path / "local")
    local, remote = SummaryStore(tmp_path / "local"), SummaryStore(tmp_path / "remote")
    assert precompute(cfg, local, progress=False).computed == ["base", "p30", "p60"]
    report = precompute(cfg, remote, progress=False, scheduler=dask_cluster[0])
    assert sorted(report.computed) == ["base", "p30", "p60"] and not report.failed
    for mid in ("base", "p30", "p60"):
        a, b = AppContext(cfg, local).outputs(mid), AppContext(cfg, remote).outputs(mid)
        assert a["texts"] == b["texts"] and b["kl_reference"] == "base"
        assert np.allclose(a["nll"], b["nll"], rtol=1e-5) and np.allclose(a["kl"], b["kl"], rtol=1e-3, atol=1e-4)
