"""Faults: a precompute process killed mid-way resumes cleanly; hostile text stays text."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cnc.app.cli import load
from tests.conftest import wait_for
from tests.tiny_task import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def test_killed_precompute_resumes_without_corrupt_entries(tmp_path):
    models = [{"id": "m0", "checkpoint": "m0.pt"}] + [
        {"id": f"m{i}", "base": "m0", "operation": {"name": "prune"}, "checkpoint": f"m{i}.pt"} for i in range(1, 12)]
    for m in models:
        save_checkpoint(tmp_path / m["checkpoint"], seed=int(m["id"][1:]))
    (tmp_path / "exp.json").write_text(json.dumps({"models": models}))
    (tmp_path / "cfg.yaml").write_text("experiment: exp.json\n"
                                       "task: {entry: 'tests.tiny_task:TinyTask', options: {delay: 0.4}}\n")
    cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "cfg.yaml"),
           "--cache-dir", str(tmp_path / "cache"), "--precompute-only"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline:  # kill as soon as some (not all) models are done
        time.sleep(0.3)
        probe = load(str(tmp_path / "cfg.yaml"), str(tmp_path / "cache"), precompute=False)
        if any(probe.status(m) == "ready" for m in probe.experiment.models):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    ctx = load(str(tmp_path / "cfg.yaml"), str(tmp_path / "cache"), precompute=False)
    done = [m for m in ctx.experiment.models if ctx.status(m) == "ready"]
    assert 0 < len(done) < 12, "the kill should land mid-way"
    assert all(ctx.outputs(m)["probs"].shape == (40, 3) for m in done)  # what is done is whole
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    ctx = load(str(tmp_path / "cfg.yaml"), str(tmp_path / "cache"), precompute=False)
    assert all(ctx.status(m) == "ready" for m in ctx.experiment.models)


def test_user_text_is_rendered_as_text(tmp_path, serve, chrome):
    evil = '<img src=x onerror="window.pwned=1">'
    (tmp_path / "exp.json").write_text(json.dumps({
        "metrics": [{"name": "Accuracy", "format": ".1%"}],
        "models": [{"id": "a", "tag": evil, "metrics": {"Accuracy": 0.9}},
                   {"id": "b<script>", "base": "a", "operation": {"name": "<b>op</b>"}, "metrics": {"Accuracy": 0.8}}]}))
    ctx = load(str(tmp_path / "exp.json"), str(tmp_path / "cache"), precompute=False)
    chrome.get(serve(ctx) + "/?sel=a,b%3Cscript%3E")
    wait_for(chrome, ".cnc-model-map canvas")
    time.sleep(2)
    assert chrome.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
    assert chrome.execute_script("return window.pwned === undefined")
    assert evil in chrome.find_element("css selector", "body").text  # shown literally (selection table)
