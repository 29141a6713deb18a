"""mlflow_scale.*: opening an MLflow experiment of 100 / 1,000 / 5,000 runs, beside MLflow's own UI.

The store is real: a sqlite tracking database and a local artifact root written with MLflow's
client, one run per model of a synthetic forest (cnc.experiment.synthetic: `cnc.base` and
`cnc.operation` tags, the operation's params, four metrics, a real `torch.save` checkpoint per
run). Stores are built once per size under the cache directory (`bench-mlflow/`) and reused.

Records:
- `mlflow_scale.read`: `load_config('mlflow:...')` in this process on a fresh cache, MLflow
  already imported, with the client calls it made (`search_runs`, `list_artifacts`,
  `download_artifacts`, `get_run`).
- `mlflow_scale.start`: `python app.py --config mlflow:...` (fresh cache) from launch to the
  first answer of `/_dash-layout` (the experiment is read before the server answers).
- `mlflow_scale.mlflow_ui_start`: `mlflow server` on the same store from launch to the first
  page of runs (`runs/search`, 100 rows, as its UI asks) over HTTP; `ratio` = ours / MLflow's.
--quick (a smoke run): 20 runs, no MLflow UI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from cnc.bench.browser import free_port
from cnc.experiment.synthetic import make_experiment

ROOT = Path(__file__).resolve().parent.parent.parent
EXPERIMENT = "bench-compress"
SIZES, QUICK_SIZES = (100, 1000, 5000), (20,)
COUNTED = ("search_runs", "list_artifacts", "download_artifacts", "get_run")


def build_store(folder: Path, n: int) -> str:
    """A sqlite MLflow store of `n` finished runs (built once; `done` marks a complete store)."""
    import mlflow
    import torch
    from mlflow.entities import Metric, Param

    folder = folder.resolve()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    if (folder / "done").exists():
        return uri
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    checkpoint = folder / "checkpoint.pt"
    torch.save({"weight": torch.randn(16, 16), "bias": torch.zeros(16)}, checkpoint)
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    now = int(time.time() * 1000)
    for k, m in enumerate(make_experiment(n).models.values()):
        tags = {"cnc.base": m.base} if m.base else {}
        if m.operation:
            tags["cnc.operation"] = m.operation.name
        run = client.create_run(exp_id, start_time=now + k, tags=tags, run_name=m.id)
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric(name, value, now + k, 0) for name, value in m.metrics.items()
                                       if value is not None],
                         params=[Param(name, str(v)) for name, v in (m.operation.parameters if m.operation else {}
                                                                     ).items()])
        client.log_artifact(rid, str(checkpoint))
        client.set_terminated(rid)
    (folder / "done").write_text(str(n))
    return uri


class CallCounter:
    """Counts MlflowClient calls by name while installed (the client's class is patched)."""

    def __init__(self):
        self.calls: Counter = Counter()
        self._saved: dict = {}

    def __enter__(self) -> Counter:
        from mlflow.tracking import MlflowClient

        for name in COUNTED:
            original = getattr(MlflowClient, name)
            self._saved[name] = original

            def counted(*args, _name=name, _original=original, **kwargs):
                self.calls[_name] += 1
                return _original(*args, **kwargs)

            setattr(MlflowClient, name, counted)
        return self.calls

    def __exit__(self, *exc) -> None:
        from mlflow.tracking import MlflowClient

        for name, original in self._saved.items():
            setattr(MlflowClient, name, original)


def read_record(uri: str, n: int) -> dict:
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (imported: the start record pays for it)

    from cnc.experiment.config import load_config
    from cnc.experiment.mlflow import source

    with tempfile.TemporaryDirectory() as cache, CallCounter() as calls:
        source._SOURCES.clear()  # a fresh source: nothing read or resolved yet
        t0 = time.perf_counter()
        config = load_config(f"mlflow:{uri}#{EXPERIMENT}", cache_dir=cache)
        ms = (time.perf_counter() - t0) * 1000
        source._SOURCES.clear()
    assert len(config.experiment.models) == n, (len(config.experiment.models), n)
    return {"scenario": "mlflow_scale.read", "models": n, "ms": round(ms, 1),
            **{f"calls_{k}": calls[k] for k in COUNTED}}


def _first_answer(proc: subprocess.Popen, url: str, body: bytes | None, timeout: float = 300) -> float | None:
    """Seconds until `url` answers 200 (None when the process died or time ran out)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            return None
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                resp.read()
                if resp.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    return None


def _timed_server(cmd: list[str], url: str, body: bytes | None, log: Path) -> float | None:
    """Seconds from launching `cmd` to the first 200 answer of `url`; the server is then stopped."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            waited = _first_answer(proc, url, body)
            return None if waited is None else time.perf_counter() - t0
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)


def start_record(uri: str, n: int, work: Path) -> dict:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--config", f"mlflow:{uri}#{EXPERIMENT}", "--port", str(port),
           "--cache-dir", str(work / f"cache-{n}")]
    seconds = _timed_server(cmd, f"http://127.0.0.1:{port}/_dash-layout", None, work / f"cnc-{n}.log")
    return {"scenario": "mlflow_scale.start", "models": n, "ms": None if seconds is None else round(seconds * 1000)}


def mlflow_ui_record(uri: str, n: int, work: Path) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", uri]
    from mlflow import MlflowClient

    exp_id = MlflowClient(uri).get_experiment_by_name(EXPERIMENT).experiment_id
    body = json.dumps({"experiment_ids": [exp_id], "max_results": 100, "order_by": ["attributes.start_time DESC"],
                       "run_view_type": "ACTIVE_ONLY"}).encode()
    seconds = _timed_server(cmd, f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/runs/search", body,
                            work / f"mlflow-{n}.log")
    return {"scenario": "mlflow_scale.mlflow_ui_start", "models": n,
            "ms": None if seconds is None else round(seconds * 1000)}


def scenarios(quick: bool) -> list[dict]:
    cache = Path(os.environ.get("CNC_CACHE_DIR") or ROOT / ".cnc-cache")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in QUICK_SIZES if quick else SIZES:
            uri = build_store((work if quick else cache / "bench-mlflow") / f"runs-{n}", n)
            out.append(read_record(uri, n))
            ours = start_record(uri, n, work)
            out.append(ours)
            if not quick:
                theirs = mlflow_ui_record(uri, n, work)
                if ours["ms"] and theirs["ms"]:
                    theirs["ratio_ours"] = round(ours["ms"] / theirs["ms"], 2)
                out.append(theirs)
    return out
