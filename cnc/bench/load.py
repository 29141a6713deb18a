"""load.*: simulated users replaying recorded browser traffic against gunicorn on loopback, and
experiment parsing at scale.

The traffic is recorded once per run from headless Chromium driving the demo (with its task):
Overview, Selection Details, Compare with Behaviors (switch rows, sort, page) and Layers (open,
switch mode, expand); see cnc.bench.traffic. Each simulated user replays those steps against a
gunicorn server (2 workers x 4 threads, as in Docker) with a think time between steps, sending
each step's requests one after another. Timings (p50/p95) are of callback requests
(/_dash-update-component) only; page documents, layout and dependency requests are replayed but
not timed; static files are not replayed (a browser caches them). Only 127.0.0.1 is contacted;
request loops are bounded in count and time.
"""
from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from cnc.app.cli import demo_config
from cnc.bench import median_ms
from cnc.bench.browser import free_port
from cnc.bench.traffic import Step, is_callback, record_demo_session
from cnc.experiment.config import load_experiment
from cnc.experiment.synthetic import write_experiment

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_CONFIG = demo_config("digits")
COMPARED = ["base", "mag50", "mag90", "layer90", "mag50-ft"]
EXPLAINED = ["mag10", "mag30", "mag50", "mag70", "mag90", "mag10-ft", "mag30-ft", "mag50-ft"]
THINK = 1.0  # mean seconds a user pauses between steps


def send(url: str, method: str, path: str, body: bytes | None) -> tuple[float, bool]:
    req = urllib.request.Request(url + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
            ok = resp.status in (200, 204)  # 204: a callback with nothing to update
    except (urllib.error.URLError, OSError):
        ok = False
    return (time.perf_counter() - t0) * 1000, ok


def drive(url: str, steps: list[Step], users: int, sessions: int, think: float = THINK,
          max_seconds: float = 300, seed: int = 0) -> dict:
    """`users` concurrent threads, each replaying the recorded session `sessions` times."""
    callback_ms: list[float] = []
    counts = {"requests": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def user(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        time.sleep(rng.uniform(0, think))  # users arrive spread out
        for _ in range(sessions):
            for step in steps:
                if time.monotonic() > deadline:
                    return
                for method, path, body in step.requests:
                    ms, ok = send(url, method, path, body)
                    with lock:
                        counts["requests"] += 1
                        counts["errors"] += not ok
                        if is_callback(path):
                            callback_ms.append(ms)
                time.sleep(rng.uniform(0.5, 1.5) * think)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    times = sorted(callback_ms)
    return {
        "users": users, **counts, "callbacks": len(times), "rps": round(counts["requests"] / elapsed, 1),
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1) if times else None,
        "seconds": round(elapsed, 1),
    }


def start_gunicorn(config: Path, cache_dir: Path, port: int, workers: int = 2, threads: int = 4) -> subprocess.Popen:
    """gunicorn serving cnc.app.wsgi on a loopback port, as the Dockerfile does; waits for health."""
    env = {**os.environ, "CNC_CONFIG": str(config), "CNC_CACHE_DIR": str(cache_dir)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    log = open(cache_dir / "gunicorn.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), "--timeout", "120", "cnc.app.wsgi:server"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {(cache_dir / 'gunicorn.log').read_text()[-2000:]}")
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError("gunicorn did not become healthy within 90 s")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(20)


def record_demo(cache_dir: Path) -> list[Step]:
    """Build (first time) and precompute the demo in `cache_dir`, then record a browser session."""
    from cnc.app.cli import load
    from cnc.app.webapp import build_app

    ctx = load(str(DEMO_CONFIG), str(cache_dir), progress=False)
    return record_demo_session(build_app(ctx), COMPARED, EXPLAINED)


def demo_load(cache_dir: Path, users: list[int], sessions: int, steps: list[Step] | None = None) -> list[dict]:
    """`load.users` records for the demo: one gunicorn, each user count in turn."""
    steps = steps if steps is not None else record_demo(cache_dir)
    proc = start_gunicorn(DEMO_CONFIG, cache_dir, free_port())
    try:
        port = proc.args[proc.args.index("--bind") + 1].rsplit(":", 1)[1]
        drive(f"http://127.0.0.1:{port}", steps, users=1, sessions=1, think=0)  # warm both workers' memos
        out = []
        for n in users:
            stats = drive(f"http://127.0.0.1:{port}", steps, users=n, sessions=sessions)
            out.append({"scenario": "load.users", "models": "demo", "ms": stats["p95_ms"],
                        "steps": len(steps), **stats})
    finally:
        stop(proc)
    return out


def scenarios(quick: bool) -> list[dict]:
    """--quick (a smoke run): one experiment size only; the recorded demo session and its replay
    (`demo_load`, the same code) are exercised by tests/test_load.py with 20 users."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100,) if quick else (100, 1000, 5000):
            path = write_experiment(n, Path(tmp) / f"exp{n}.json")
            out.append({"scenario": "load.parse_experiment", "models": n,
                        "ms": median_ms(lambda: load_experiment(path)), "bytes": path.stat().st_size})
    if quick:
        return out
    cache = Path(os.environ.get("CNC_CACHE_DIR") or ROOT / ".cnc-cache")
    out += demo_load(cache, users=[20, 50], sessions=2)
    return out
