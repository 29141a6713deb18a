"""Shared fixtures: the demo experiment (built once per session), a live server, headless Chromium."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import settings  # noqa: E402

from cnc.bench.browser import LiveServer, free_port, wait_for  # noqa: E402,F401  (tests import them from here)
from tests.gguf_session import (  # noqa: E402,F401  (session fixtures of the GGUF tests)
    gguf_folder,
    gguf_variants,
    llama_cpp_python,
)

# Property tests check correctness, not speed: a per-example deadline only fails on a busy machine.
settings.register_profile("cnc", deadline=None)
settings.load_profile("cnc")


def wait_until(predicate, timeout: float = 30):
    """Poll `predicate` until it holds; an exception while the page is still drawing (an element
    not there yet, or redrawn under us) counts as "not yet", and the last one is reported."""
    end, last = time.time() + timeout, None
    while time.time() < end:
        try:
            if predicate():
                return True
        except Exception as exc:  # noqa: BLE001  (selenium, or a predicate reading half-drawn state)
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"condition not met in {timeout:g} s" + (f" (last error: {last!r})" if last else ""))


@pytest.fixture
def one_thread():
    """Tiny evaluations: extra torch threads only add spin-wait overhead on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_cache_dir(tmp_path_factory) -> Path:
    """Cache dir holding the built demo. CNC_TEST_CACHE reuses one across runs (local speed)."""
    keep = os.environ.get("CNC_TEST_CACHE")
    return Path(keep) if keep else tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="session")
def demo_ctx(demo_cache_dir):
    """AppContext of the real demo: trained, compressed and precomputed (minutes, once)."""
    from cnc.app.cli import load

    return load(str(ROOT / "cnc" / "demos" / "digits" / "config.yaml"), str(demo_cache_dir), progress=False)


@pytest.fixture
def serve():
    """serve(ctx) -> base URL of a live app for that context; stopped after the test."""
    from cnc.app.webapp import build_app

    servers = []

    def start(ctx) -> str:
        srv = LiveServer(build_app(ctx).server)
        servers.append(srv)
        return srv.url

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def chrome():
    """Headless Debian Chromium via chromedriver; skipped only where CI has not installed it."""
    pytest.importorskip("selenium.webdriver")
    from cnc.bench.browser import chromium, chromium_paths

    if chromium_paths() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing: .ci/run must install them")
        pytest.skip("chromium not installed")
    with chromium() as driver:
        yield driver


SCREENSHOTS = ROOT / "tests" / "screenshots"


def screenshot(driver, name: str) -> Path:
    """Save a PNG for humans to look at (tests/screenshots/, git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


@pytest.fixture
def synthetic_ctx(tmp_path):
    """AppContext over a synthetic 60-model experiment without task (metrics only)."""
    from cnc.experiment.config import load_config
    from cnc.experiment.synthetic import write_experiment
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(write_experiment(60, tmp_path / "exp.json"), cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))


@pytest.fixture(scope="session")
def lmeval_runs(demo_cache_dir) -> dict:
    """Real lm-evaluation-harness output folders of a tiny GPT-2 and two compressed copies
    ({"base"|"pruned"|"int8": folder}), built once per session (a few minutes: tests/lmeval_harness.py)."""
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        if os.environ.get("CI"):
            pytest.fail("lm-eval missing: .ci/run must install requirements-lmeval.txt")
        pytest.skip("lm-eval not installed (pip install -r requirements-lmeval.txt)")
    from tests.lmeval_harness import build_once

    return build_once(demo_cache_dir / "lmeval")
