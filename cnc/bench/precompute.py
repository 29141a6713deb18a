"""Precompute in this process vs on a local Dask cluster of 2 worker processes (1 thread each).

Two experiments in one run: the demo (39 small CNNs on 1,797 digits; built first when missing)
and the larger synthetic one of `scale` (8 MLPs into 1,000 classes, 20,000 instances), each
precomputed from scratch into fresh caches, first locally, then on the cluster.
`ms` is the cluster's wall time, `local_ms` the local one (torch's default threads), `ratio`
cluster / local; `local_1thread_ms` / `ratio_1thread` compare with a local run on one torch thread,
as each worker runs (on a busy shared machine torch's multi-thread pool can be far slower than one
thread, which flatters the cluster). The cluster's start (`startup_ms`, once per run) is timed apart;
`ms` includes each worker's first import of torch and build of the task, which `warm_ms` (the same
precompute again into another fresh cache, on the now warm workers of a long-lived cluster) does not. On a 2-core machine expect little gain:
the figures show that it works and what the per-model overhead (shipping the probabilities back,
each worker building the task once) costs. --quick (a smoke run) precomputes only the synthetic
experiment's 3 models with 1,000 instances.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from cnc.app.cli import demo_config
from cnc.bench.scale import QUICK_MODELS, build

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2


def _timed_precompute(cfg, cache: Path, **cluster) -> tuple[float, int]:
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore

    t0 = time.perf_counter()
    report = precompute(cfg, SummaryStore(cache), progress=False, **cluster)
    ms = (time.perf_counter() - t0) * 1000
    assert not report.failed, report.failed
    return ms, len(report.computed)


def scenarios(quick: bool) -> list[dict]:
    from dask.distributed import Client, LocalCluster

    from cnc.experiment.config import load_config

    demo_cache = Path(os.environ.get("CNC_CACHE_DIR") or ROOT / ".cnc-cache")
    records = []
    with tempfile.TemporaryDirectory(prefix="cnc-cluster-") as tmp:
        folder = Path(tmp)
        n = 1_000 if quick else 20_000
        experiments = {} if quick else {"demo": load_config(demo_config("digits"), cache_dir=demo_cache)}
        experiments[f"synthetic {n} x 1000 classes"] = load_config(build(folder, n, QUICK_MODELS if quick else None),
                                                                   cache_dir=folder / "unused")
        t0 = time.perf_counter()
        with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
                Client(lc) as client:
            client.wait_for_workers(WORKERS)
            startup = (time.perf_counter() - t0) * 1000
            for i, (name, cfg) in enumerate(experiments.items()):
                local_ms, models = _timed_precompute(cfg, folder / f"local{i}")
                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # as each worker runs: one thread
                try:
                    local1_ms, _ = _timed_precompute(cfg, folder / f"local1-{i}")
                finally:
                    torch.set_num_threads(threads)
                ms, _ = _timed_precompute(cfg, folder / f"dask{i}", scheduler=lc.scheduler_address)
                warm_ms, _ = _timed_precompute(cfg, folder / f"dask-warm{i}", scheduler=lc.scheduler_address)
                records.append({"scenario": "precompute.cluster", "ms": round(ms, 1), "experiment": name,
                                "models": models, "workers": WORKERS, "local_ms": round(local_ms, 1),
                                "ratio": round(ms / local_ms, 2), "local_1thread_ms": round(local1_ms, 1),
                                "ratio_1thread": round(ms / local1_ms, 2), "warm_ms": round(warm_ms, 1),
                                "startup_ms": round(startup, 1)})
    return records
