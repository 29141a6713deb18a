"""load.*: concurrent simulated users against a production server (gunicorn) on loopback, and
experiment parsing at scale.

Each simulated user opens the app like a browser does (page, layout, dependencies) and then asks
the router callback to render the Overview and the Compare page, as a pasted link would.
Requests are bounded in count and time; only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from cnc.bench import median_ms
from cnc.experiment import load_experiment
from cnc.synthetic import write_experiment

ROOT = Path(__file__).resolve().parent.parent.parent


def write_synthetic(n: int, folder: Path) -> Path:
    return write_experiment(n, folder / f"exp{n}.json")


def _route_payload(pathname: str, search: str) -> bytes:
    return json.dumps({
        "output": "..page.children...rendered-path.data..",
        "outputs": [{"id": "page", "property": "children"}, {"id": "rendered-path", "property": "data"}],
        "inputs": [{"id": "url", "property": "pathname", "value": pathname},
                   {"id": "url", "property": "search", "value": search}],
        "state": [{"id": "rendered-path", "property": "data", "value": None}, []],
        "changedPropIds": ["url.pathname"],
    }).encode()


def user_session(url: str, model_ids: list[str]) -> list[tuple[float, bool]]:
    """One simulated visit; returns (ms, ok) per request."""
    compare = "?models=" + ",".join(model_ids[:3])
    requests = [
        ("GET", "/", None), ("GET", "/_dash-layout", None), ("GET", "/_dash-dependencies", None),
        ("POST", "/_dash-update-component", _route_payload("/", "")),
        ("POST", "/_dash-update-component", _route_payload("/compare", compare)),
        ("GET", "/health", None),
    ]
    results = []
    for method, path, body in requests:
        req = urllib.request.Request(url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body else {})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
                ok = resp.status == 200
        except Exception:
            ok = False
        results.append(((time.perf_counter() - t0) * 1000, ok))
    return results


def drive(url: str, users: int, sessions_per_user: int, model_ids: list[str], max_seconds: float = 120) -> dict:
    """`users` concurrent threads, each running `sessions_per_user` visits (bounded by time)."""
    samples: list[tuple[float, bool]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def user() -> None:
        for _ in range(sessions_per_user):
            if time.monotonic() > deadline:
                return
            got = user_session(url, model_ids)
            with lock:
                samples.extend(got)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user) for _ in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    times = sorted(ms for ms, _ in samples)
    return {
        "users": users, "requests": len(samples), "errors": sum(1 for _, ok in samples if not ok),
        "rps": round(len(samples) / elapsed, 1),
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1) if times else None,
    }


def start_gunicorn(config: Path, cache_dir: Path, port: int, workers: int = 2, threads: int = 4) -> subprocess.Popen:
    """gunicorn serving cnc.wsgi on a loopback port, as the Dockerfile does; waits for health."""
    env = {**os.environ, "CNC_CONFIG": str(config), "CNC_CACHE_DIR": str(cache_dir)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    log = open(cache_dir / "gunicorn.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), "--timeout", "120", "cnc.wsgi:server"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {(cache_dir / 'gunicorn.log').read_text()[-2000:]}")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("gunicorn did not become healthy within 60 s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_scenario(n_models: int, users: int, sessions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_synthetic(n_models, Path(tmp))
        port = free_port()
        proc = start_gunicorn(config, Path(tmp) / "cache", port)
        try:
            ids = list(load_experiment(config).models)
            stats = drive(f"http://127.0.0.1:{port}", users, sessions, ids)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(10)
    return {"scenario": "load.users", "models": n_models, "ms": stats["p50_ms"], **stats}


def scenarios(quick: bool) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100, 1000) if quick else (100, 1000, 5000):
            path = write_synthetic(n, Path(tmp))
            out.append({"scenario": "load.parse_experiment", "models": n,
                        "ms": median_ms(lambda: load_experiment(path)), "bytes": path.stat().st_size})
    out.append(load_scenario(200, users=20, sessions=2 if quick else 5))
    return out
