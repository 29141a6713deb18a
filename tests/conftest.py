"""Shared fixtures: the demo experiment (built once per session), a live server, headless Chromium."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnc.bench.load import free_port  # noqa: E402  (used by tests through this module)


@pytest.fixture(scope="session")
def demo_cache_dir(tmp_path_factory) -> Path:
    """Cache dir holding the built demo. CNC_TEST_CACHE reuses one across runs (local speed)."""
    keep = os.environ.get("CNC_TEST_CACHE")
    return Path(keep) if keep else tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="session")
def demo_ctx(demo_cache_dir):
    """AppContext of the real demo: trained, compressed and precomputed (minutes, once)."""
    from cnc.cli import load

    return load(str(ROOT / "configs" / "demo.yaml"), str(demo_cache_dir), progress=False)


class LiveServer:
    """Serves a Dash app from a thread on loopback."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app.server, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def serve():
    """serve(ctx) -> base URL of a live app for that context; stopped after the test."""
    from cnc.webapp import build_app

    servers = []

    def start(ctx) -> str:
        srv = LiveServer(build_app(ctx))
        servers.append(srv)
        return srv.url

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def chrome():
    """Headless Debian Chromium via chromedriver; skipped only where CI has not installed it."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(binary) and os.path.exists(driver_path)):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing: .ci/run must install them")
        pytest.skip("chromium not installed")
    profile = tempfile.mkdtemp(prefix="cnc-chrome-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


SCREENSHOTS = ROOT / "tests" / "screenshots"


def screenshot(driver, name: str) -> Path:
    """Save a PNG for humans to look at (tests/screenshots/, git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, css: str, timeout: float = 30, count: int = 1):
    """Wait until at least `count` elements match `css`; return them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= count)
    return driver.find_elements(By.CSS_SELECTOR, css)


@pytest.fixture
def synthetic_ctx(tmp_path):
    """AppContext over a synthetic 60-model experiment without task (metrics only)."""
    from cnc.config import load_config
    from cnc.context import AppContext
    from cnc.store import SummaryStore
    from cnc.synthetic import write_experiment

    config = load_config(write_experiment(60, tmp_path / "exp.json"), cache_dir=tmp_path / "cache")
    return AppContext(config=config, store=SummaryStore(config.cache_dir))
