"""Every precompute writer takes one file lock: two writers never summarize one task at once
(each would create its own bin edges), and a writer that waited skips what the other did."""
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from cnc.experiment.config import load_config
from cnc.precompute.lock import precompute_locked, writer_lock
from cnc.precompute.store import SummaryStore
from cnc.server.live import LiveExperiment
from tests.conftest import ROOT
from tests.tiny_task import save_checkpoint

IDS = ["a", "b", "c", "d"]


@pytest.fixture
def tiny(tmp_path):
    lines = ["models:"]
    for i, name in enumerate(IDS):
        save_checkpoint(tmp_path / f"{name}.pt", seed=i, prune=0.2 * i)
        base = "" if i == 0 else ", base: a, operation: {name: prune}"
        lines.append(f"  - {{id: {name}, checkpoint: {name}.pt{base}}}")
    (tmp_path / "exp.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "cfg.yaml").write_text(
        "experiment: exp.yaml\ntask: {entry: 'tests.tiny_task:TinyTask', activation_sample: 16, "
        "options: {delay: 0.2}}\n")
    return tmp_path


def open_store(folder):
    cfg = load_config(folder / "cfg.yaml", cache_dir=folder / "cache")
    return cfg, SummaryStore(cfg.cache_dir)


def done_count(folder) -> int:
    cfg, store = open_store(folder)
    from cnc.precompute.run import pending_models

    return len(IDS) - len(pending_models(cfg, store))


def test_concurrent_writers_take_turns_and_share_bin_edges(tiny):
    reports = []

    def writer():
        cfg, store = open_store(tiny)
        reports.append(precompute_locked(cfg, store, progress=False))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    computed = [m for r in reports for m in r.computed]
    assert sorted(computed) == IDS, [r.computed for r in reports]  # each model summarized exactly once
    cfg, store = open_store(tiny)
    from cnc.precompute.run import config_task_hash

    th = config_task_hash(cfg, store)
    params = [store.get("params", th, store.file_hash(tiny / f"{m}.pt")) for m in IDS]
    for module in params[0]:
        assert all(np.array_equal(p[module]["edges"], params[0][module]["edges"]) for p in params), module


def test_precompute_only_waits_for_the_lock(tiny):
    """A second process (the Dockerfile's first command) waits while another writer works."""
    lock = writer_lock(tiny / "cache")
    (tiny / "cache").mkdir()
    lock.acquire()
    proc = subprocess.Popen([sys.executable, "app.py", "--config", str(tiny / "cfg.yaml"), "--cache-dir",
                             str(tiny / "cache"), "--precompute-only"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        deadline = time.time() + 90
        while "waiting for another precompute" not in seen and time.time() < deadline:
            seen += proc.stderr.readline()
        assert "waiting for another precompute" in seen, seen
        time.sleep(0.5)
        assert proc.poll() is None and done_count(tiny) == 0
    finally:
        lock.release()
    assert proc.wait(120) == 0
    assert done_count(tiny) == len(IDS)


def test_background_thread_leaves_the_work_to_the_lock_holder(tiny):
    cfg, store = open_store(tiny)
    live = LiveExperiment(cfg, store, background=True)
    lock = writer_lock(tiny / "cache")
    with lock:
        live._run()
    assert done_count(tiny) == 0 and not live.progress.errors
    live._run()
    assert done_count(tiny) == len(IDS)
