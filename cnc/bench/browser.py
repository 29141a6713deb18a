"""Headless Chromium and an in-process server, shared by the browser tests and the load
benchmark's recorder (which needs selenium and Debian's chromium + chromedriver)."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Iterator

CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """Serves a WSGI app (a Dash app's `.server`) from a thread on loopback."""

    def __init__(self, wsgi_app):
        import logging

        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in bench output
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, wsgi_app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) when Debian's chromium and chromedriver are installed."""
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return (binary, driver) if os.path.exists(binary) and os.path.exists(driver) else None


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium WebDriver with a throwaway profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("chromium/chromedriver not found: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="cnc-chrome-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = paths[0]
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(paths[1]), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, css: str, timeout: float = 30, count: int = 1):
    """Wait until at least `count` elements match `css`; return them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= count)
    return driver.find_elements(By.CSS_SELECTOR, css)


def choose(driver, index: int, text: str) -> None:
    """Pick `text` in the index-th Behaviors control's dropdown (hidden controls count)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    control = driver.find_elements("css selector", ".bh-controls .bh-control")[index]
    driver.execute_script("arguments[0].querySelector('button, [role=combobox], input').click()", control)
    option = next(o for o in wait_for(driver, "[role='option']") if o.text == text)
    driver.execute_script("arguments[0].click()", option)
    if any(o.is_displayed() for o in driver.find_elements("css selector", "[role='option']")):
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    time.sleep(0.3)
