"""The Dockerfile cannot rot: its install and start steps run in a fresh virtualenv here.

No Docker engine exists on this machine, so we replay the file: its `pip install` steps on a new
venv, its precompute step, then its gunicorn command, and check the health endpoint. Slow
(minutes): runs in CI (CI=true) or with CNC_SLOW_TESTS=1. PyTorch's CPU index cannot be reached
here, so the replay points TORCH_INDEX at a reachable index (CNC_TEST_TORCH_INDEX, default PyPI;
pip's configured find-links still apply); the fast test checks the file names the CPU index.
"""
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
slow = pytest.mark.skipif(not (os.environ.get("CI") or os.environ.get("CNC_SLOW_TESTS")),
                                reason="slow: set CNC_SLOW_TESTS=1 (CI runs it)")


CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(re.findall(r"^ENV (.*?)(?<!\\)$", text, re.M | re.S))))
    runs = [r.strip() for r in re.findall(r"^RUN (.+)$", text, re.M)]
    cmd = re.search(r'^CMD \["sh", "-c", "(.+)"\]$', text, re.M).group(1)
    return text, env, runs, cmd


def test_dockerfile_is_conventional():
    text, env, runs, cmd = dockerfile()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "USER cnc" in text and "HEALTHCHECK" in text and "VOLUME" in text
    assert re.search(rf"^ARG TORCH_INDEX={re.escape(CPU_INDEX)}$", text, re.M)  # CPU torch unless told
    assert runs[0] == """pip install --index-url "${TORCH_INDEX}" "$(grep -E '^torch==' requirements.txt)\""""
    assert runs[1] == "pip install -r requirements.txt"
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("torch==")]
    assert len(pins) == 1  # the torch step installs exactly the pinned version
    assert "gunicorn" in cmd and "0.0.0.0" in cmd and "--precompute-only" in cmd


@slow
def test_dockerfile_steps_in_a_fresh_venv(tmp_path):
    _, env, runs, cmd = dockerfile()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    install_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                   "TORCH_INDEX": os.environ.get("CNC_TEST_TORCH_INDEX", "https://pypi.org/simple")}
    for step in (r for r in runs if r.startswith("pip install")):
        subprocess.run(["sh", "-c", step], cwd=ROOT, env=install_env, check=True, capture_output=True, timeout=1500)
    cuda = subprocess.run([str(bin_dir / "python"), "-c", "import torch; print(torch.version.cuda)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert cuda == "None"  # the CPU build
    port = free_port()
    run_env = {**os.environ, **env, "CNC_PORT": str(port), "CNC_CACHE_DIR": str(tmp_path / "cache"),
               "CNC_CONFIG": str(ROOT / "tests/fixtures/original_model_info.json"),
               "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run_env.pop("PYTHONPATH", None)
    server = subprocess.Popen(["sh", "-c", cmd], cwd=ROOT, env=run_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        body = None
        while time.time() < deadline and body is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            except OSError:
                time.sleep(1)
        assert body is not None, server.stdout.read1().decode() if server.poll() is not None else "no answer"
        assert b'"status":"ok"' in body.replace(b" ", b"")
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        assert b"_dash-renderer" in page or b"dash" in page
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)
